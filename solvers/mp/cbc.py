"""Solving one DeepMAD program with CBC and checking the architecture it returns against the space:
its costs within the limits, its rho within the bound, its score equal to `deepmad_score`."""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pulp

from nasx.costs import Costs
from nasx.space import Arch, Value
from solvers.mp.formulas import deepmad_score, effectiveness
from solvers.mp.program import _Model, _Setting

__all__: list[str] = []

_OVERHEAD_S = 0.5  # of a program besides CBC's own time (reading the solution, checking the arch)


def _cbc_path() -> str | None:
    bundled = getattr(pulp.PULP_CBC_CMD, "pulp_cbc_path", None)  # the binary PuLP ships
    if bundled and Path(bundled).exists():
        return bundled
    return shutil.which("cbc")


def _cbc(seconds: float, threads: int, warm_start: bool, log_path: Path) -> pulp.LpSolver:
    """CBC through `pulp.COIN_CMD` (PULP_CBC_CMD, the bundled binary's own class, is deprecated)."""
    return pulp.COIN_CMD(
        path=_cbc_path(),
        msg=False,
        timeLimit=max(1.0, seconds),
        threads=threads,
        warmStart=warm_start,
        logPath=str(log_path),
    )


def _cbc_gap(log_path: Path) -> float | None:
    """The relative gap CBC reports at the end of its log (None if it printed none)."""
    try:
        text = log_path.read_text()
    except OSError:
        return None
    found = re.findall(r"^Gap:\s*([-+0-9.eE]+)", text, flags=re.MULTILINE)
    return abs(float(found[-1])) if found else None


@dataclass(frozen=True)
class _Found:
    """The architecture one program returned, checked against the space."""

    arch: Arch
    score: float
    costs: Costs
    predicted: dict[str, float]
    proven: bool  # the program was solved to optimality
    gap: float | None  # CBC's relative gap on the program


class _NoSolution(Exception):
    """CBC stopped at its time limit without an integer solution."""


def _run(
    setting: _Setting,
    build: Callable[[], _Model],
    seconds: float,
    *,
    limits: Mapping[str, float],
    rho_max: float | None,
    solver: pulp.LpSolver | None,
    threads: int,
    start: Mapping[str, Value] | None = None,
) -> _Found | None:
    """Maximise the score of `build()`'s program within `limits`; None if it is infeasible.

    Raises:
      _NoSolution: no integer solution within `seconds`.
    """
    deadline = time.perf_counter() + seconds
    space, slack = setting.space, dict.fromkeys(limits, 0.0)
    for _ in range(3):  # re-solve if rounding the solver's binaries overshoots a limit
        model = build()
        prob = model.program.prob
        prob.setObjective(-model.score)
        for name, limit in limits.items():
            prob += model.costs[name] * (1.0 / limit) <= (limit - slack[name]) / limit
        warm = start is not None and model.start(start)
        with tempfile.TemporaryDirectory() as tmp:
            log_path = Path(tmp) / "cbc.log"
            remaining = deadline - time.perf_counter() - _OVERHEAD_S
            prob.solve(solver or _cbc(remaining, threads, warm, log_path))
            gap = _cbc_gap(log_path)
        if prob.status == pulp.LpStatusInfeasible:
            return None
        if prob.sol_status not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
            raise _NoSolution
        arch = space.validate(model.decode())
        costs = space.costs(arch, setting.resolution)
        over = {n: getattr(costs, n) for n, limit in limits.items() if getattr(costs, n) > limit}
        if not over:
            break
        for name, value in over.items():  # solver tolerance, not a modelling error
            slack[name] += value - limits[name] + 1e-6 * limits[name]
    else:
        raise RuntimeError(f"MP solver: rounded solution keeps exceeding the budget: {over}")
    if rho_max is not None and effectiveness(space, arch) > rho_max * (1 + 1e-9):
        raise RuntimeError(f"MP solver: returned arch has rho {effectiveness(space, arch)} > {rho_max}")
    predicted = {name: pulp.value(e) for name, e in model.costs.items()}
    predicted["score"] = pulp.value(model.score)
    score = deepmad_score(space, arch, resolution=setting.resolution, stage_weights=setting.stage_weights)
    if abs(predicted["score"] - score) > 1e-6 * max(1.0, abs(score)):
        raise RuntimeError(f"MP solver: program's score {predicted['score']} != DeepMAD score {score}")
    optimal = prob.sol_status == pulp.LpSolutionOptimal
    return _Found(arch, score, costs, predicted, optimal, 0.0 if optimal else gap)
