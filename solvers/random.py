"""Budget-constrained random search: the baseline every other strategy has to beat.

Like every nasx strategy it is a pure ask/tell object (DESIGN.md, decision 5)::

    strategy = RandomSearch(space, parse_budget("60M-flops"))
    state = strategy.init(seed=0)
    archs, state = strategy.ask(state, 8)
    state = strategy.tell(state, archs, objectives)

The strategy holds only configuration; everything that changes lives in a `SearchState` of plain
data (`to_json` / `from_json`). Randomness is derived from ``(seed, step)`` where ``step`` counts
the calls to `ask`, so a run is reproducible from its seed and resumes from its state.

This module also holds the pieces the other strategies share: `Record`, `SearchState`,
`step_rng` and `sample_unseen` (admitted, not-yet-seen samples with a bounded effort).

References:
  Li & Talwalkar, "Random Search and Reproducibility for Neural Architecture Search", UAI 2019.
  Bergstra & Bengio, "Random Search for Hyper-Parameter Optimization", JMLR 2012.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, final

import numpy as np

from nasx.budget import Budget, sample_admitted
from nasx.space import Arch, SearchSpace

__all__ = [
    "Record",
    "SearchState",
    "RandomSearch",
    "sample_unseen",
    "step_rng",
    "check_seed",
    "make_records",
    "extend_seen",
]

Objective = float | None
"""One objective value; None marks a failed evaluation (NaN, inf), ranked worst by every strategy."""


def step_rng(seed: int, step: int) -> np.random.Generator:
    """The generator of the `step`-th `ask` of a run seeded with `seed` (independent streams)."""
    return np.random.default_rng([seed, step])


def check_seed(seed: int) -> int:
    """`seed` if it is a non-negative int (what `numpy.random.SeedSequence` takes), else ValueError."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return seed


def check_count(n: int) -> int:
    """`n`, the number of architectures `ask` is asked for, if it is >= 0, else ValueError."""
    if n < 0:
        raise ValueError(f"ask: n must be >= 0, got {n}")
    return n


@dataclass(frozen=True)
class Record:
    """One evaluated architecture and its objective values (in the order the strategy expects)."""

    arch: Arch
    objectives: tuple[Objective, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch.to_dict(), "objectives": list(self.objectives)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        return cls(Arch(data["arch"]), _vector(data["objectives"]))


@dataclass(frozen=True)
class SearchState:
    """Everything a run of `RandomSearch` or `AgingEvolution` has learned, as plain data.

    Attributes:
      seed: the run's seed (a non-negative int).
      step: number of `ask` calls so far; the next one draws from ``step_rng(seed, step)``.
      seen: fingerprints of every architecture asked or told, in order (for dedupe).
      history: every told `Record`, in the order told.
    """

    seed: int
    step: int = 0
    seen: tuple[str, ...] = ()
    history: tuple[Record, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "step": self.step,
            "seen": list(self.seen),
            "history": [r.to_dict() for r in self.history],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchState:
        return cls(
            seed=int(data["seed"]),
            step=int(data["step"]),
            seen=tuple(data["seen"]),
            history=tuple(Record.from_dict(r) for r in data["history"]),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SearchState:
        return cls.from_dict(json.loads(text))


def _vector(values: float | Sequence[float | None]) -> tuple[Objective, ...]:
    items = (values,) if np.ndim(values) == 0 else list(values)  # type: ignore[arg-type]
    out: list[Objective] = []
    for v in items:
        x = None if v is None else float(v)
        out.append(x if x is not None and math.isfinite(x) else None)
    return tuple(out)


def make_records(
    space: SearchSpace,
    archs: Sequence[Arch],
    objectives: Sequence[float | Sequence[float | None] | None],
    n_objectives: int | None = None,
) -> tuple[Record, ...]:
    """Validated `Record`s of told results; a scalar objective counts as a vector of one.

    Raises:
      InvalidArchError: an architecture does not belong to `space` (naming the bad key).
      ValueError: the lengths disagree, or a vector does not have `n_objectives` entries.
    """
    if len(archs) != len(objectives):
        raise ValueError(f"tell: {len(archs)} architectures but {len(objectives)} objectives")
    records = []
    for arch, values in zip(archs, objectives, strict=True):
        vector = _vector(values)
        if n_objectives is not None and len(vector) != n_objectives:
            raise ValueError(
                f"tell: objectives {list(vector)} of {Arch(arch).fingerprint} have {len(vector)} "
                f"values; expected {n_objectives}"
            )
        records.append(Record(space.validate(arch), vector))
    return tuple(records)


def extend_seen(seen: tuple[str, ...], archs: Sequence[Arch]) -> tuple[str, ...]:
    """`seen` followed by the fingerprints of `archs` it does not hold yet, in order."""
    known = set(seen)
    new = []
    for arch in archs:
        fp = arch.fingerprint
        if fp not in known:
            known.add(fp)
            new.append(fp)
    return seen + tuple(new)


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
        objectives: Sequence[float | Sequence[float | None] | None],
    ) -> SearchState:
        """Record evaluated architectures (one objective value or vector per architecture)."""
        records = make_records(self.space, archs, objectives)
        told = [r.arch for r in records]
        return replace(state, seen=extend_seen(state.seen, told), history=state.history + records)
