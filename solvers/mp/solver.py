"""`solve`: the architecture of a space with the largest DeepMAD score under a `Budget`.

How `solve` searches (``method``):

* ``"full"``: one program over the space's whole grid; `MPResult.optimal` says whether CBC proved
  optimality within the time limit, `MPResult.gap` is CBC's gap otherwise. ``"auto"`` picks it
  for MBConv spaces and for ResNet grids of at most `FULL_GRID_MAX_TUPLES` tuples.
* ``"coarse-to-fine"`` (ResNet grids above that size, e.g. DeepMAD's ImageNet grid: 255 widths
  and 256 bottlenecks, 31 million tuples over its 5 stages): exact MILPs on a coarse sub-grid,
  then on neighbourhoods of the incumbent, up to a local optimum or the time limit
  (`solvers.mp.coarse_to_fine`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import pulp

from nasx.budget import Budget
from nasx.errors import BudgetCostError, UnsupportedSpaceError
from nasx.space import SearchSpace
from nasx.space_family import BlockLatencySpace, BlockPricedSpace, StagePricedSpace
from solvers.mp.cbc import _NoSolution, _run
from solvers.mp.coarse_to_fine import _coarse_to_fine
from solvers.mp.diagnose import _infeasible, _time_limit
from solvers.mp.formulas import _unsupported
from solvers.mp.grids import _full_grid, _Rules, _tuples
from solvers.mp.mobilenet import _mobilenet_model
from solvers.mp.program import _MODELED, _WORD, _Model, _Setting
from solvers.mp.resnet import _resnet_model
from solvers.mp.result import MPResult, _result

__all__ = ["FULL_GRID_MAX_TUPLES", "solve"]

FULL_GRID_MAX_TUPLES = 6000
"""Largest ResNet grid (option tuples over all stages) that ``method="auto"`` solves in one program."""

_METHODS = ("auto", "full", "coarse-to-fine")


def _limits(budget: Budget, space: SearchSpace) -> dict[str, float]:
    limits = budget.limits()
    modelled = _MODELED + _latency(space)
    unmodelled = sorted(set(limits) - set(modelled))
    if unmodelled:
        hint = (
            "give a latency table (nasx profile; --latency-table)"
            if isinstance(space, BlockPricedSpace) and unmodelled == ["latency_ms"]
            else "drop it or use evolutionary search"
        )
        raise BudgetCostError(
            f'budget "{budget}": the MP solver cannot model {", ".join(_WORD[n] for n in unmodelled)} here '
            f"(it models {', '.join(_WORD[n] for n in modelled)}); {hint}"
        )
    return limits


def _latency(space: SearchSpace) -> tuple[str, ...]:
    """``("latency_ms",)`` for an MBConv space with a latency table: latency is then a sum of
    per-option block latencies plus the fixed parts', a linear constraint (`nasx.hardware.latency`)."""
    priced = isinstance(space, BlockPricedSpace) and isinstance(space, BlockLatencySpace)
    return ("latency_ms",) if priced and space.latency is not None else ()


def solve(
    space: SearchSpace,
    budget: Budget,
    *,
    rho_max: float | None = 0.3,
    resolution: int | None = None,
    time_limit_s: float = 60.0,
    solver: pulp.LpSolver | None = None,
    bits: int | None = None,
    stage_weights: Sequence[float] | None = None,
    monotone_widths: bool = True,
    threads: int = 1,
    method: str = "auto",
    coarse_ratio: float = 2.0,
) -> MPResult:
    """The architecture of `space` with the largest DeepMAD score within `budget` (module docstring).

    Args:
      space: a `resnet` space (any skeleton) or a `mobilenet` space.
      budget: limits on MACs (flops), params, weight bytes (size), layers and, for a mobilenet
        space with a latency table (`nasx.hardware.latency.attach`), latency.
      rho_max: effectiveness bound rho0 (0.3 for DeepMAD-R18/34/50, 0.5 for the MBConv models);
        None drops it.
      resolution: input side in px at which costs and score are taken (default: the space's).
      time_limit_s: wall-clock limit of the whole solve; the best architecture found by then is
        returned.
      solver: a PuLP solver used for every program instead of CBC (its own time limit applies,
        and coarse-to-fine programs are then not warm-started).
      bits: weight bits of every layer. Default: the space's smallest if the budget limits size
        (bits change nothing else, so the smallest dominates), else its largest.
      stage_weights: beta per DeepMAD stage (default ``(1, ..., 1, 8)``).
      monotone_widths: also require stem <= stage 1 and a last stage no narrower than the one
        before (DeepMAD's rule; the resnet space itself allows a narrower last stage).
      threads: CBC threads (1 makes runs repeatable).
      method: ``"auto"``, ``"full"`` or ``"coarse-to-fine"`` (ResNet spaces only; module docstring).
      coarse_ratio: spacing factor of the coarse grid of a coarse-to-fine solve.

    Raises:
      InfeasibleBudgetError: no architecture satisfies the budget and rho bound; the message
        names the binding constraint and the least attainable value of each budgeted cost.
      BudgetCostError: the budget limits a cost the program does not model (latency without a
        latency table, or on a resnet space).
      UnsupportedSpaceError: the space has no formulation here.
      SolverTimeLimitError: no feasible architecture was found within the time limit.
    """
    start = time.perf_counter()
    deadline = start + time_limit_s
    if method not in _METHODS:
        raise ValueError(f'method "{method}" is not one of {", ".join(_METHODS)}')
    if not isinstance(space, StagePricedSpace | BlockPricedSpace):
        raise _unsupported(space, "MP solver")
    limits = _limits(budget, space)
    if resolution is None:
        resolution = space.resolution
    if bits is None:
        bits = min(space.bits) if "weight_bytes" in limits else max(space.bits)
    if bits not in space.bits:
        raise ValueError(f"bits={bits} is not a bit-width of the space; expected one of {space.bits}")
    setting = _Setting(space, resolution, bits, stage_weights, monotone_widths)
    run = {"limits": limits, "rho_max": rho_max, "solver": solver, "threads": threads}
    if not isinstance(space, StagePricedSpace):  # priced block by block: an MBConv space
        if method == "coarse-to-fine":
            raise UnsupportedSpaceError(
                "MP solver: coarse-to-fine needs a resnet space (mobilenet programs are small)"
            )
        build = functools.partial(_mobilenet_model, setting)
        return _solve_full(setting, build, budget, rho_max, start, deadline, run)
    rules = _Rules(space, monotone_widths)
    full = _full_grid(rules)
    if method == "full" or (method == "auto" and _tuples(rules, full) <= FULL_GRID_MAX_TUPLES):
        build = functools.partial(_resnet_model, setting, rules, full)
        return _solve_full(setting, build, budget, rho_max, start, deadline, run)
    return _coarse_to_fine(setting, rules, full, budget, rho_max, coarse_ratio, start, deadline, run)


def _solve_full(
    setting: _Setting,
    build: Callable[[float | None], _Model],
    budget: Budget,
    rho_max: float | None,
    start: float,
    deadline: float,
    run: dict[str, Any],
) -> MPResult:
    try:
        found = _run(setting, functools.partial(build, rho_max), deadline - time.perf_counter(), **run)
    except _NoSolution:
        raise _time_limit(setting, budget, deadline - start) from None
    if found is None:
        raise _infeasible(setting, build, budget, rho_max, deadline - start, exhaustive=True)
    status = "optimal" if found.proven else "time limit"
    history = ((time.perf_counter() - start, found.score),)
    return _result(found, status, found.gap, start, "full", history, 1)
