"""`MPResult`, what `solve` returns, and how a solve's best program becomes one."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from nasx.costs import Costs
from nasx.space import Arch
from solvers.mp.cbc import _Found

__all__ = ["MPResult"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MPResult:
    """What `solve` returns.

    Attributes:
      arch: the validated architecture.
      score: its DeepMAD score (`deepmad_score`).
      costs: ``space.costs(arch, resolution)``.
      status: ``"optimal"`` (proven over the whole space), ``"local optimum"`` (coarse-to-fine:
        no better architecture one grid step away, see `solvers.mp.coarse_to_fine`) or
        ``"time limit"``.
      optimal: optimality over the whole space was proven.
      gap: relative gap between CBC's best bound and its solution on the whole space (0 when
        optimal); None when unknown (always on a coarse-to-fine solve).
      solve_s: wall-clock seconds of the whole solve.
      predicted: the program's own values of the modelled costs and the score, for checking.
      method: ``"full"`` or ``"coarse-to-fine"``.
      history: ``(seconds since the start, score)`` of every improvement of the incumbent.
      programs: number of MILPs solved.
    """

    arch: Arch
    score: float
    costs: Costs
    status: str
    optimal: bool
    gap: float | None
    solve_s: float
    predicted: dict[str, float] = field(default_factory=dict)
    method: str = "full"
    history: tuple[tuple[float, float], ...] = ()
    programs: int = 1


def _result(
    found: _Found,
    status: str,
    gap: float | None,
    start: float,
    method: str,
    history: tuple[tuple[float, float], ...],
    programs: int,
    optimal: bool | None = None,
) -> MPResult:
    solve_s = time.perf_counter() - start
    log.info("MP solve: score %.2f, %s, %d programs, %.1f s", found.score, status, programs, solve_s)
    return MPResult(
        arch=found.arch,
        score=found.score,
        costs=found.costs,
        status=status,
        optimal=found.proven if optimal is None else optimal,
        gap=gap,
        solve_s=solve_s,
        predicted=found.predicted,
        method=method,
        history=history,
        programs=programs,
    )
