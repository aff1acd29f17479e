"""Measured latency tables (`nasx profile` as library calls): profile a device, validate a table.

`profile_space` times every distinct block of a space on this JAX device into a table (a killed
run resumes it), then fits the per-network overhead on a few whole subnets; `validate_table`
measures random whole subnets and compares predicted with measured latency (Spearman, MAPE)::

    from nasx.hardware.latency import load_table
    from nasx.jobs.profile import ProfileRequest, ValidateRequest, profile_space, validate_table

    table = profile_space(ProfileRequest("mobilenet:cifar", "lut.json", repeats=5, calibrate=4))
    validation = validate_table(load_table("lut.json"), ValidateRequest(n=20))
    validation.report["spearman"]

Only spaces whose networks are sequences of blocks (`nasx.space_family.BlockLatencySpace`) can
be profiled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import search_spaces
from nasx.costs import Block
from nasx.errors import UnknownSpaceError, UnsupportedSpaceError
from nasx.hardware.latency import LatencyTable, ProfileSettings, attach, load_table
from nasx.outputs import claim_file
from nasx.space import Arch, SearchSpace
from nasx.space_family import BlockLatencySpace
from search_spaces import make_space

__all__ = [
    "ProfileRequest",
    "ValidateRequest",
    "ProfileObserver",
    "TableValidation",
    "profile_space",
    "validate_table",
    "latency_space",
]


@dataclass(frozen=True)
class ProfileRequest:
    """A latency table to measure (the flags of ``nasx profile --out``).

    Attributes:
      space: ``FAMILY`` or ``FAMILY:VARIANT`` of a `BlockLatencySpace` family.
      out: the table's path (resumed if it exists).
      resolution: input side in px (``None``: the space's).
      batch: images per call.
      bits: weight bit-widths to measure (``None``: 32).
      width_mult: the space's width multiplier (families with ``FAMILY.width_mult``).
      warmup: untimed calls before timing.
      repeats: timed calls; the median is kept.
      clock: ``wall`` or ``cpu`` (`nasx.hardware.latency.CLOCKS`).
      calibrate: whole subnets to fit the per-network overhead on (0: none).
      rounds: interleaved timing rounds of blocks and subnets.
      seed: seed of the weights, inputs and subnets.
    """

    space: str
    out: str | Path
    resolution: int | None = None
    batch: int = 1
    bits: tuple[int, ...] | None = None
    width_mult: float = 1.0
    warmup: int = 5
    repeats: int = 25
    clock: str = "wall"
    calibrate: int = 8
    rounds: int = 10
    seed: int = 0


@dataclass(frozen=True)
class ValidateRequest:
    """How to validate a table (the flags of ``nasx profile --validate``).

    Attributes:
      n: random whole subnets to validate on (held out).
      calibrate: subnets timed alongside to re-fit the overhead on (0: keep the stored one).
      rounds: interleaved timing rounds.
      seed: seed of the weights, inputs and subnets.
    """

    n: int = 50
    calibrate: int = 8
    rounds: int = 10
    seed: int = 0


@dataclass(frozen=True)
class TableValidation:
    """What `validate_table` returns: the table (saved, with the overhead used), the report
    (``spearman``, ``mape_percent``, ``overhead_ms``, one row per network) and the networks."""

    table: LatencyTable
    report: dict[str, Any]
    archs: list[Arch]


class ProfileObserver:
    """What the profiling jobs report as they go; every method does nothing unless overridden.

    The CLI draws its progress bars from these calls.
    """

    def blocks_started(self) -> None:
        """Block timing starts (`block_timed` follows, first with ``ms=None``)."""

    def block_timed(self, done: int, total: int, block: Block, ms: float | None) -> None:
        """`done` of `total` block shares timed; the last one `block`, median so far `ms`."""

    def subnets_started(self, phase: str, count: int) -> None:
        """Whole-subnet timing starts: `phase` ``calibrate`` or ``validate``, `count` subnets."""

    def subnet_compiled(self, done: int, count: int) -> None:
        """`done` of `count` subnets compiled."""

    def round_timed(self, done: int, rounds: int) -> None:
        """`done` of `rounds` timing rounds of the subnets finished."""


def latency_space(spec: str, bits: tuple[int, ...], width_mult: float = 1.0) -> SearchSpace:
    """The space `spec` at `bits` and `width_mult`, checked to have a per-block latency model.

    Raises:
      UnknownSpaceError: an unknown space, or a width multiplier its family lacks.
      UnsupportedSpaceError: the space is not a `BlockLatencySpace`.
    """
    family = search_spaces.family(spec)
    space = make_space(spec, bits)
    if width_mult != 1.0:
        if not family.width_mult:
            raise UnknownSpaceError(f'space "{spec}" has no width multiplier; drop --width-mult')
        space = family.make(spec.partition(":")[2] or None, bits=bits, width_mult=width_mult)
    if not isinstance(space, BlockLatencySpace):
        profiled = [
            f.name for f in search_spaces.FAMILIES.values() if isinstance(f.make(), BlockLatencySpace)
        ]
        raise UnsupportedSpaceError(
            f'space "{space.name}" has no per-block latency model (nasx profile supports {", ".join(profiled)})'
        )
    return space


def _sample(space: SearchSpace, n: int, seed: list[int], exclude: set[str]) -> list[Arch]:
    """`n` distinct random architectures not in `exclude` (bounded effort)."""
    rng = np.random.default_rng(seed)
    found: dict[str, Arch] = {}
    for _ in range(50 * n):
        if len(found) == n:
            break
        arch = space.sample(rng)
        if arch.fingerprint not in exclude:
            found.setdefault(arch.fingerprint, arch)
    return list(found.values())


def _measure(
    table: LatencyTable,
    space: SearchSpace,
    archs: Sequence[Arch],
    *,
    rounds: int,
    seed: int,
    observer: ProfileObserver,
    calibration: Sequence[Arch] | None = None,
):
    """`nasx.hardware.subnets.calibrate`, or `validate` when given `calibration`."""
    from nasx.hardware import subnets
    from nasx.supernet import build

    supernet = build(search_spaces.family(space.name).supernet(), space, seed=seed)
    phase = "calibrate" if calibration is None else "validate"
    observer.subnets_started(phase, len(archs) + len(calibration or ()))
    hooks = {
        "rounds": rounds,
        "seed": seed,
        "on_compiled": observer.subnet_compiled,
        "on_round": observer.round_timed,
    }
    if calibration is None:
        return subnets.calibrate(table, space, supernet, archs, **hooks)
    return subnets.validate(table, space, supernet, archs, calibration=calibration, **hooks)


def profile_space(request: ProfileRequest, observer: ProfileObserver | None = None) -> LatencyTable:
    """Time every distinct block of `request.space` into the table at `request.out`, then fit the
    per-network overhead on `request.calibrate` whole subnets (if the table has none yet).

    Raises:
      UnknownSpaceError, UnsupportedSpaceError: see `latency_space`.
      LatencyTableMismatchError: the table at `request.out` was measured with other settings.
      ProfileClockError: the CPU clock asked for on an accelerator.
      RunFolderError: `request.out` is a folder, or its folder cannot be written (checked first).
      OutputBusyError: another process is writing the table.
    """
    from nasx.hardware.profile import profile_blocks

    observer = observer or ProfileObserver()
    bits = request.bits or (32,)
    space = latency_space(request.space, bits, request.width_mult)
    settings = ProfileSettings(
        space=f"{space.name}:{space.variant}",
        resolution=request.resolution or space.resolution,
        batch=request.batch,
        width_mult=request.width_mult,
        bits=tuple(bits),
        warmup=request.warmup,
        repeats=request.repeats,
        clock=request.clock,
    )
    with claim_file(request.out) as out:  # the table is saved (atomically) after every block
        if out.exists():
            load_table(out)  # a file that is not a latency table: its error before any progress
        observer.blocks_started()
        table = profile_blocks(
            space, settings, out, rounds=request.rounds, seed=request.seed, on_entry=observer.block_timed
        )
        if request.calibrate and table.overhead_ms is None:
            archs = _sample(space, request.calibrate, [request.seed, 7], set())
            table = _measure(table, space, archs, rounds=request.rounds, seed=request.seed, observer=observer)
            table.save()
    return table


def validate_table(
    table: LatencyTable, request: ValidateRequest, observer: ProfileObserver | None = None
) -> TableValidation:
    """Predicted against measured latency of `request.n` random whole subnets of `table`'s space.

    `request.calibrate` other subnets are timed in the same rounds and the overhead re-fitted on
    them (0: the table's stored overhead). The table, with the validation, is saved in place
    (atomically; `OutputBusyError` if another process is writing it).
    """
    observer = observer or ProfileObserver()
    settings = table.settings
    space = attach(
        latency_space(settings.space, settings.bits, settings.width_mult), table, settings.resolution
    )
    calibration = _sample(space, request.calibrate, [request.seed, 7], set())
    exclude = {a.fingerprint for a in calibration} | set((table.calibration or {}).get("fingerprints", ()))
    archs = _sample(space, request.n, [request.seed, 8], exclude)
    with claim_file(table.path, flag="--validate"):
        table, report = _measure(
            table,
            space,
            archs,
            rounds=request.rounds,
            seed=request.seed,
            observer=observer,
            calibration=calibration,
        )
        table.save()
    return TableValidation(table, report, archs)
