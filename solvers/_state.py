"""What every ask/tell strategy shares: its seeded randomness, its plain-data state and records.

A run's randomness is derived from ``(seed, step)`` where ``step`` counts the calls to ``ask``
(`step_rng`), so a run is reproducible from its seed and resumes from its state. The state is plain
data (`SearchState.to_json` / `from_json`); told results become validated `Record`s
(`make_records`). This module imports no JAX.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasx.space import Arch, SearchSpace
from solvers.strategy import ObjectiveValue, Told

__all__ = [
    "Record",
    "SearchState",
    "step_rng",
    "check_seed",
    "check_count",
    "make_records",
    "extend_seen",
]


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
    objectives: tuple[ObjectiveValue, ...]

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


def _vector(values: Told) -> tuple[ObjectiveValue, ...]:
    items = (values,) if np.ndim(values) == 0 else list(values)  # type: ignore[arg-type]
    out: list[ObjectiveValue] = []
    for v in items:
        x = None if v is None else float(v)
        out.append(x if x is not None and math.isfinite(x) else None)
    return tuple(out)


def make_records(
    space: SearchSpace,
    archs: Sequence[Arch],
    objectives: Sequence[Told],
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
