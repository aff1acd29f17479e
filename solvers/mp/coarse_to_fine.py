"""The coarse-to-fine search of `solve` over ResNet grids too large for one program.

Every program is still an exact MILP, on a sub-grid. First the *coarse* grid (widths and
bottlenecks every factor `coarse_ratio`, plus each width's extreme bottlenecks; all stem widths,
kernels and depths), then *neighbourhoods* of the incumbent: per stage the widths and bottlenecks
nearest to ``v / r, v, v * r`` (at least the adjacent grid values), all kernels and depths,
warm-started from the incumbent, ``r`` shrinking from ``sqrt(coarse_ratio)`` towards 1 when a
neighbourhood brings no improvement. It stops at a *local optimum* (status ``"local optimum"``: no
architecture whose stem, stage widths and bottlenecks are each within one grid step of the result,
with any kernels and depths, scores higher) or at the time limit (``"time limit"``). The result is
not proven globally optimal (`MPResult.optimal` is False, `MPResult.gap` None: the linear
relaxation of the whole grid is too large to bound it).

Measured (2-core machine shared with other jobs, CBC 1 thread, ``benchmarks/mp_vs_evolution.py``):
on DeepMAD-R50's setting (4.13G MACs, 25.55M params, rho <= 0.3, 224 px, imagenet skeleton) the
coarse program (1,188 tuples) is solved to optimality in ~1.5 s with score 49,666, above the
48,919.28 of the released DeepMAD-R50 structure; the neighbourhoods reach a local optimum of
50,675 in 40-60 s depending on the load (or stop at the 60 s limit a few points below it). At the
R18 / R34 budgets: 35,998 / 47,542 (released: 32,120 / 43,143).

References:
  Mladenovic & Hansen, "Variable neighborhood search", Computers & Operations Research 24(11),
  1997 (the shrinking neighbourhoods, here each searched exactly by a MILP).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from typing import Any

from nasx.budget import Budget
from solvers.mp.cbc import _NoSolution, _run
from solvers.mp.diagnose import _infeasible, _time_limit
from solvers.mp.grids import _coarse_grid, _Grid, _neighbourhood, _Rules, _tuples
from solvers.mp.program import _Setting
from solvers.mp.resnet import _resnet_model
from solvers.mp.result import MPResult, _result

__all__: list[str] = []

log = logging.getLogger(__name__)

_COARSE_SHARE = 0.25  # of the time limit, at most, for the coarse program
_STEP_MIN_S = 10.0  # a neighbourhood program gets max(this, half the remaining time)


def _coarse_to_fine(
    setting: _Setting,
    rules: _Rules,
    full: _Grid,
    budget: Budget,
    rho_max: float | None,
    coarse_ratio: float,
    start: float,
    deadline: float,
    run: dict[str, Any],
) -> MPResult:
    """The coarse program, then neighbourhoods of the incumbent (module docstring)."""
    if not coarse_ratio > 1:
        raise ValueError(f"coarse_ratio must be > 1, got {coarse_ratio}")
    programs, ratio, found, diagnosed = 0, coarse_ratio, None, False
    seconds = _COARSE_SHARE * (deadline - start)
    while found is None:
        grid = _coarse_grid(rules, ratio)
        build = functools.partial(_resnet_model, setting, rules, grid)
        programs += 1
        try:
            found = _run(setting, functools.partial(build, rho_max), seconds, **run)
            timed_out = False
        except _NoSolution:
            timed_out = True
        if found is None and not timed_out and (not diagnosed or grid == full):
            diagnosed = True
            error = _infeasible(setting, build, budget, rho_max, deadline - start, exhaustive=grid == full)
            if error is not None:
                raise error
        if found is None and deadline - time.perf_counter() < 2.0:
            raise _time_limit(setting, budget, deadline - start)
        if found is None:  # timed out: the same grid with all the time left; infeasible: a finer one
            seconds = deadline - time.perf_counter()
            ratio = ratio if timed_out else math.sqrt(ratio)
    log.info("MP coarse program (ratio %g): score %.2f", ratio, found.score)
    if grid == full:  # the coarse grid is the whole space
        status = "optimal" if found.proven else "time limit"
        history = ((time.perf_counter() - start, found.score),)
        return _result(found, status, found.gap, start, "full", history, programs)
    ratio = math.sqrt(ratio)
    history, local = [(time.perf_counter() - start, found.score)], False
    while (remaining := deadline - time.perf_counter()) > 2.0:
        grid = _neighbourhood(rules, found.arch, ratio)
        build = functools.partial(_resnet_model, setting, rules, grid, rho_max)
        seconds = min(remaining, max(_STEP_MIN_S, remaining / 2))
        programs += 1
        try:
            step = _run(setting, build, seconds, start=found.arch, **run)
        except _NoSolution:
            step = None
        log.debug(
            "MP neighbourhood (ratio %.4f, %d tuples): %s",
            ratio,
            _tuples(rules, grid),
            "no solution" if step is None else f"{step.score:.2f}, proven {step.proven}",
        )
        if step is not None and step.score > found.score * (1 + 1e-9):
            found = step
            history.append((time.perf_counter() - start, found.score))
            log.info("MP neighbourhood (ratio %.4f): score %.2f", ratio, found.score)
            continue
        if grid == _neighbourhood(rules, found.arch, 1.0):
            local = step is not None and step.proven
            break
        ratio = math.sqrt(ratio)
    status = "local optimum" if local else "time limit"
    return _result(found, status, None, start, "coarse-to-fine", tuple(history), programs, optimal=False)
