"""The ask/tell strategy protocol every nasx search strategy follows (DESIGN.md, decision 5).

A strategy holds configuration only; everything a run learns lives in a state value it returns::

    state = strategy.init(seed)
    archs, state = strategy.ask(state, n)
    state = strategy.tell(state, archs, objectives)

The same seed and the same told objectives give the same asked architectures, so a run resumes by
replaying its log. Implementations: `solvers.random.RandomSearch`, `solvers.evolution.AgingEvolution`
and `solvers.evolution.NSGA2`; drivers: `nasx.search.search`, `nasx.bench.nb201.simulate_search`.
This module imports no JAX.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from nasx.space import Arch

__all__ = ["ObjectiveValue", "Told", "Strategy"]

ObjectiveValue = float | None
"""One objective value; None marks a failed evaluation (NaN, inf), ranked worst by every strategy."""

Told = ObjectiveValue | Sequence[ObjectiveValue]
"""What is told for one architecture: its objective value, or its vector of objective values."""


class Strategy(Protocol):
    """A pure ask/tell search strategy (module docstring)."""

    def init(self, seed: int) -> Any:
        """A fresh run's state, seeded with `seed` (a non-negative int)."""
        ...

    def ask(self, state: Any, n: int = 1) -> tuple[list[Arch], Any]:
        """`n` architectures to evaluate next, and the state after asking them."""
        ...

    def tell(self, state: Any, archs: Sequence[Arch], objectives: Sequence[Told]) -> Any:
        """The state after learning the objectives of `archs` (in the same order)."""
        ...
