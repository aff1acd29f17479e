"""DeepMAD's solved architecture as an ask/tell strategy, so the search loop can log and report it.

The MP solver (`solvers.mp.solve`) returns one architecture; `Solved` asks it once and then has
nothing more to ask, so a ``nasx search --strategy mp`` run writes the same run folder (run log,
front, best, summary) as every other strategy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nasx.space import Arch
from solvers.mp.result import MPResult

__all__ = ["Solved"]


@dataclass(frozen=True)
class Solved:
    """An ask/tell strategy over one solved architecture: asked once, then the run is over.

    The state is whether it was asked. The seed and what it is told change nothing.
    """

    result: MPResult

    def init(self, seed: int) -> bool:
        return False

    def ask(self, state: bool, n: int = 1) -> tuple[list[Arch], bool]:
        if n < 0:
            raise ValueError(f"ask: n must be >= 0, got {n}")
        if state or n == 0:
            return [], state
        return [self.result.arch], True

    def tell(self, state: bool, archs: Sequence[Arch], objectives: Sequence[Any]) -> bool:
        return state
