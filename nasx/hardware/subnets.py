"""Whole subnets, measured: calibrating a latency table's overhead and validating its predictions.

A subnet is timed as a user would run it: `Supernet.extract` slices it into a standalone network,
which is compiled with its weights as arguments and called on a batch of images. Networks are
compiled first and then timed in interleaved rounds (`measure_programs`), so that a burst of load
from other processes falls on all of them alike. `calibrate` fits a table's per-network overhead by
least squares (`fit_overhead`); `validate` compares predicted with measured latency
(`nasx.stats.spearman`, `nasx.stats.mape_percent`; a NaN latency makes them NaN), re-fitting the
overhead on calibration networks timed in the same rounds.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import nnx

from nasx.hardware.latency import LatencyTable, ProfileSettings
from nasx.hardware.profile import Program, compile_program, time_ms
from nasx.nn.layers import BatchNorm
from nasx.space import Arch, SearchSpace
from nasx.stats import mape_percent, spearman
from nasx.supernet import Supernet

__all__ = [
    "subnet_program",
    "measure_programs",
    "measure_subnets",
    "calibrate",
    "validate",
    "fit_overhead",
]


def _neutral_stats(supernet: Supernet) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Batch-norm statistics (mean 0, variance 1) for every layer: latency does not depend on them."""
    return {
        node.key: (np.zeros(node.num_features, np.float32), np.ones(node.num_features, np.float32))
        for _, node in nnx.iter_graph(supernet)
        if isinstance(node, BatchNorm)
    }


def subnet_program(supernet: Supernet, arch: Arch, batch: int, resolution: int, *, seed: int = 0) -> Program:
    """The standalone network of `arch` (`Supernet.extract`) compiled on `batch` random images."""
    model = supernet.extract(arch, _neutral_stats(supernet))
    x = np.random.default_rng(seed).standard_normal((batch, resolution, resolution, 3), dtype=np.float32)
    return compile_program(model, [jnp.asarray(x)])


def measure_subnets(
    supernet: Supernet,
    archs: Sequence[Arch],
    settings: ProfileSettings,
    *,
    rounds: int = 5,
    seed: int = 0,
    on_compiled: Callable[[int, int], None] | None = None,
    on_round: Callable[[int, int], None] | None = None,
) -> list[float]:
    """Median latency in ms of each architecture's standalone network at the table's settings
    (`measure_programs`)."""
    programs = []
    for i, arch in enumerate(archs):
        programs.append(subnet_program(supernet, arch, settings.batch, settings.resolution, seed=seed))
        if on_compiled is not None:
            on_compiled(i + 1, len(archs))
    times = measure_programs(
        programs, warmup=settings.warmup, repeats=settings.repeats, rounds=rounds, on_round=on_round
    )
    return [statistics.median(t[settings.clock]) for t in times]


def measure_programs(
    programs: Sequence[Program],
    *,
    warmup: int,
    repeats: int,
    rounds: int = 5,
    on_round: Callable[[int, int], None] | None = None,
) -> list[dict[str, list[float]]]:
    """Times in ms of each program's calls on both clocks (``{"wall": [...], "cpu": [...]}``).

    After `warmup` calls each, the programs are timed in `rounds` interleaved rounds of
    ``repeats / rounds`` calls each, so that load from other processes falls on all of them alike.
    """
    for program in programs:
        time_ms(program, warmup=warmup, repeats=0)
    per_round = max(1, -(-repeats // rounds))
    times = [{"wall": [], "cpu": []} for _ in programs]
    for r in range(rounds):
        for i, program in enumerate(programs):
            for clock, t in time_ms(program, warmup=0, repeats=per_round).items():
                times[i][clock] += t
        if on_round is not None:
            on_round(r + 1, rounds)
    return times


def _fitted(
    table: LatencyTable, archs: Sequence[Arch], sums: list[float], measured: list[float]
) -> LatencyTable:
    return table.replace(
        overhead_ms=fit_overhead(sums, measured),
        calibration={
            "networks": len(archs),
            "blocks_sum_ms": sums,
            "measured_ms": measured,
            "fingerprints": [a.fingerprint for a in archs],
        },
    )


def calibrate(
    table: LatencyTable, space: SearchSpace, supernet: Supernet, archs: Sequence[Arch], **measure: Any
) -> LatencyTable:
    """`table` with its per-network overhead fitted by least squares on the measured `archs`."""
    sums = [table.blocks_ms(space.blocks(a, table.settings.resolution)) for a in archs]
    return _fitted(table, archs, sums, measure_subnets(supernet, archs, table.settings, **measure))


def validate(
    table: LatencyTable,
    space: SearchSpace,
    supernet: Supernet,
    archs: Sequence[Arch],
    *,
    calibration: Sequence[Arch] = (),
    **measure: Any,
) -> tuple[LatencyTable, dict[str, Any]]:
    """Predicted against measured latency of `archs`: Spearman, MAPE (%), and one row per network.

    With `calibration` networks, they are measured in the same interleaved rounds as `archs` and
    the overhead is re-fitted on them alone, so that load that changed since the table was
    measured does not count as prediction error, and `archs` stay held out. Without, the table's
    stored overhead is used, or, if it has none, one fitted on `archs` themselves (``in_sample``).
    Returns the table (with the overhead used and the report) and the report.
    """
    resolution = table.settings.resolution
    every = [*calibration, *archs]
    sums = [table.blocks_ms(space.blocks(a, resolution)) for a in every]
    measured = measure_subnets(supernet, every, table.settings, **measure)
    k = len(calibration)
    if k:
        table = _fitted(table, calibration, sums[:k], measured[:k])
    sums, measured = sums[k:], measured[k:]
    in_sample = table.overhead_ms is None
    overhead = fit_overhead(sums, measured) if in_sample else table.overhead_ms
    predicted = [s + overhead for s in sums]
    report = {
        "networks": len(archs),
        "calibration_networks": k,
        "spearman": spearman(predicted, measured),
        "mape_percent": mape_percent(predicted, measured),
        "overhead_ms": overhead,
        "in_sample": in_sample,
        "rows": [
            {"fingerprint": a.fingerprint, "predicted_ms": p, "measured_ms": m}
            for a, p, m in zip(archs, predicted, measured, strict=True)
        ],
    }
    return table.replace(overhead_ms=overhead, validation=report), report


def fit_overhead(blocks_sums_ms: Sequence[float], measured_ms: Sequence[float]) -> float:
    """Least-squares per-network overhead: ``argmin_c sum (measured - (blocks + c))^2``, the mean gap."""
    if not len(measured_ms):
        raise ValueError("fit_overhead needs at least one measured network")
    return float(np.mean(np.asarray(measured_ms, np.float64) - np.asarray(blocks_sums_ms, np.float64)))
