"""Budget filling: NASNet's recipe of choosing a cell, then scaling the network to the budget.

`fill_budget` sets the macro choices of an architecture (cells per stack ``N``, filters ``F``) to
the admitted combination of most MACs; `Filled` wraps any ask/tell strategy so that every
architecture it asks is filled that way. Pure data: no JAX.

References:
  Zoph et al., "Learning Transferable Architectures for Scalable Image Recognition", CVPR 2018
  (a cell is searched on CIFAR-10, then stacked and widened to fit a budget).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nasx.budget import Budget
from nasx.errors import InfeasibleBudgetError
from nasx.space import Arch, SearchSpace

__all__ = ["fill_budget", "Filled"]


def fill_budget(
    space: SearchSpace, arch: Arch, budget: Budget, names: Sequence[str], resolution: int | None = None
) -> Arch:
    """`arch` with the choices `names` set to the admitted combination of most MACs (then params).

    Exhaustive over the options of `names`, so exact.

    Raises:
      InfeasibleBudgetError: no combination of `names` admits `arch` within `budget`.
    """
    choices = [c for c in space.choices if c.name in names]
    best: tuple[tuple[int, int], Arch] | None = None
    for combo in itertools.product(*(c.options for c in choices)):
        candidate = arch.replace({c.name: v for c, v in zip(choices, combo, strict=True)})
        costs = space.costs(candidate, resolution)
        if budget.admits(costs) and (best is None or (costs.macs, costs.params) > best[0]):
            best = ((costs.macs, costs.params), candidate)
    if best is None:
        raise InfeasibleBudgetError(
            f"no choice of {', '.join(names)} fits this cell into the budget {budget}; raise the budget"
        )
    return best[1]


@dataclass(frozen=True)
class Filled:
    """A strategy whose asked architectures get the choices `names` scaled to fill the budget.

    Architectures that become equal once filled are asked once. The state is ``(inner state,
    fingerprints asked so far)``.

    Attributes:
      inner: the ask/tell strategy choosing the rest (the cell).
      space: the searched space.
      budget: the budget to fill.
      names: the macro choices to scale (a family's ``macro_choices``, e.g. ``("N", "F")``).
      resolution: px at which costs apply (default: the space's).
    """

    inner: Any
    space: SearchSpace
    budget: Budget
    names: tuple[str, ...]
    resolution: int | None = None

    def init(self, seed: int) -> tuple[Any, tuple[str, ...]]:
        return (self.inner.init(seed), ())

    def ask(
        self, state: tuple[Any, tuple[str, ...]], n: int = 1
    ) -> tuple[list[Arch], tuple[Any, tuple[str, ...]]]:
        inner, seen = state
        archs, inner = self.inner.ask(inner, n)
        out, taken = [], set(seen)
        for a in archs:
            filled = fill_budget(self.space, a, self.budget, self.names, self.resolution)
            if filled.fingerprint not in taken:
                taken.add(filled.fingerprint)
                out.append(filled)
        return out, (inner, tuple(taken))

    def tell(
        self, state: tuple[Any, tuple[str, ...]], archs: Sequence[Arch], objectives: Sequence[Any]
    ) -> tuple[Any, tuple[str, ...]]:
        inner, seen = state
        return (self.inner.tell(inner, archs, objectives), seen)
