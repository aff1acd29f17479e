"""Budget-constrained random search: the baseline every other strategy has to beat.

Like every nasx strategy it is a pure ask/tell object (DESIGN.md, decision 5)::

    strategy = RandomSearch(space, parse_budget("60M-flops"))
    state = strategy.init(seed=0)
    archs, state = strategy.ask(state, 8)
    state = strategy.tell(state, archs, objectives)

The strategy holds only configuration; everything that changes lives in a `SearchState` of plain
data (`to_json` / `from_json`). Randomness is derived from ``(seed, step)`` where ``step`` counts
the calls to `ask`, so a run is reproducible from its seed and resumes from its state.

The state and the seeded randomness are shared with the other strategies (`solvers._state`), and
so is `sample_unseen` (admitted, not-yet-seen samples with a bounded effort).

References:
  Li & Talwalkar, "Random Search and Reproducibility for Neural Architecture Search", UAI 2019.
  Bergstra & Bengio, "Random Search for Hyper-Parameter Optimization", JMLR 2012.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import final

import numpy as np

from nasx.budget import Budget, sample_admitted
from nasx.space import Arch, SearchSpace
from solvers._state import SearchState, check_count, check_seed, extend_seen, make_records, step_rng
from solvers.strategy import Told

__all__ = ["RandomSearch", "sample_unseen"]


def sample_unseen(
    space: SearchSpace,
    budget: Budget,
    rng: np.random.Generator,
    n: int,
    seen: Collection[str] = (),
    *,
    resolution: int | None = None,
    tries_per_arch: int = 200,
) -> list[Arch]:
    """Exactly `n` architectures within `budget`, distinct and not in `seen` whenever possible.

    Uniform samples are kept when admitted and new (rejection sampling, so the result is uniform
    over the admitted, unseen architectures). If `n * tries_per_arch` samples do not give `n` of
    them, `nasx.budget.sample_admitted` repairs near-misses; only if that too gives no new ones
    are repeats returned (the admitted part of the space is exhausted or nearly so). The effort is
    bounded either way.

    Raises:
      InfeasibleBudgetError: no architecture within the budget was found at all.
    """
    found: dict[str, Arch] = {}
    for _ in range(n * tries_per_arch):
        if len(found) >= n:
            break
        arch = space.sample(rng)
        fp = arch.fingerprint
        if fp not in found and fp not in seen and budget.admits(space.costs(arch, resolution)):
            found[fp] = arch
    if len(found) < n:
        missing = n - len(found)
        # One repair round first: a budget nothing meets then fails after a fixed effort, not n.
        repaired = sample_admitted(
            space, budget, rng, 1, resolution=resolution, tries_per_arch=tries_per_arch
        )
        if missing > 1:
            repaired += sample_admitted(
                space, budget, rng, missing - 1, resolution=resolution, tries_per_arch=tries_per_arch
            )
        for arch in repaired:
            fp = arch.fingerprint
            if fp not in found and fp not in seen and len(found) < n:
                found[fp] = arch
        out = list(found.values())
        pool = tuple(out) or repaired  # repeats, once the admitted space is exhausted
        while len(out) < n:
            out.append(pool[len(out) % len(pool)])
        return out
    return list(found.values())


@final
@dataclass(frozen=True)
class RandomSearch:
    """Uniform random search over the architectures of `space` within `budget`.

    Attributes:
      space: the search space.
      budget: limits every asked architecture must meet (default: none).
      resolution: input size in px at which the budget applies (default: the space's).
      tries_per_arch: samples drawn per requested architecture before repairing (bounds the work).
    """

    space: SearchSpace
    budget: Budget = field(default_factory=Budget)
    resolution: int | None = None
    tries_per_arch: int = 200

    def init(self, seed: int) -> SearchState:
        """A fresh run seeded with `seed` (a non-negative int)."""
        return SearchState(seed=check_seed(seed))

    def ask(self, state: SearchState, n: int = 1) -> tuple[list[Arch], SearchState]:
        """`n` new admitted architectures (repeats only once the admitted space is exhausted).

        Raises:
          InfeasibleBudgetError: nothing within the budget was found in the bounded effort.
        """
        if check_count(n) == 0:
            return [], state
        rng = step_rng(state.seed, state.step)
        archs = sample_unseen(
            self.space,
            self.budget,
            rng,
            n,
            set(state.seen),
            resolution=self.resolution,
            tries_per_arch=self.tries_per_arch,
        )
        return archs, replace(state, step=state.step + 1, seen=extend_seen(state.seen, archs))

    def tell(
        self,
        state: SearchState,
        archs: Sequence[Arch],
        objectives: Sequence[Told],
    ) -> SearchState:
        """Record evaluated architectures (one objective value or vector per architecture)."""
        records = make_records(self.space, archs, objectives)
        told = [r.arch for r in records]
        return replace(state, seen=extend_seen(state.seen, told), history=state.history + records)
