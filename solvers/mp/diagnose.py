"""Why a solve found nothing: the binding constraint of an infeasible budget, or the time limit.

On a coarse-to-fine solve, an infeasible budget is diagnosed on the coarse grid: a cost whose least
value exceeds its limit is reported exactly (the coarse grid holds the space's smallest option of
every choice, and every cost grows with every option); other infeasibilities (the rho bound, or
limits that conflict only jointly) surface as `SolverTimeLimitError`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import pulp

from nasx.budget import Budget, format_amount
from nasx.errors import InfeasibleBudgetError, SolverTimeLimitError
from solvers.mp.cbc import _cbc
from solvers.mp.program import _WORD, _Model, _Setting

__all__: list[str] = []


def _time_limit(setting: _Setting, budget: Budget, seconds: float) -> SolverTimeLimitError:
    space = setting.space
    return SolverTimeLimitError(
        f'MP solver: no architecture of "{space.name}" ({space.variant}) within budget "{budget}" found '
        f"in {seconds:g} s; raise time_limit_s (the limits may also conflict jointly with the rho bound)"
    )


def _least(
    setting: _Setting,
    build: Callable[[float | None], _Model],
    name: str,
    rho_max: float | None,
    seconds: float,
) -> float | None:
    """The least attainable value of cost `name` (with the rho bound if given); None if none."""
    model = build(rho_max)
    model.program.prob.setObjective(model.costs[name])
    with tempfile.TemporaryDirectory() as tmp:
        model.program.prob.solve(_cbc(seconds, 1, False, Path(tmp) / "cbc.log"))
    if model.program.prob.sol_status not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        return None
    return pulp.value(model.costs[name])


def _exceeded(least: dict[str, float | None], limits: dict[str, float], phrase: str) -> list[str]:
    """The message "COST: PHRASE LEAST > limit LIMIT" of each cost whose least value exceeds its limit."""
    return [
        f"{_WORD[n]}: {phrase} {format_amount(v)} > limit {format_amount(limits[n])}"
        for n, v in least.items()
        if v is not None and v > limits[n] + (1e-9 * limits[n] if n == "latency_ms" else 0.5)  # ms vs counts
    ]


def _infeasible(
    setting: _Setting,
    build: Callable[[float | None], _Model],
    budget: Budget,
    rho_max: float | None,
    seconds: float,
    *,
    exhaustive: bool,
) -> InfeasibleBudgetError | None:
    """Name the binding constraint: a cost whose least attainable value exceeds its limit, else
    the rho bound, else the set of limits that conflict only jointly. When `build` covers only a
    coarse grid (not `exhaustive`), only the first is a proof (module docstring); None otherwise."""
    limits = budget.limits()
    space = setting.space
    where = f'no architecture of "{space.name}" ({space.variant}) at {setting.resolution} px'
    rho = f"rho <= {rho_max:g}" if rho_max is not None else "no rho bound"
    least = {name: _least(setting, build, name, None, seconds) for name in limits}
    binding = _exceeded(least, limits, "least attainable")
    if binding:
        return InfeasibleBudgetError(f'{where} fits budget "{budget}": ' + "; ".join(binding))
    if not exhaustive:
        return None
    if rho_max is not None and _least(setting, build, "layers", rho_max, seconds) is None:
        return InfeasibleBudgetError(
            f"{where} satisfies {rho}: the effectiveness bound is binding; raise rho_max"
        )
    with_rho = {n: _least(setting, build, n, rho_max, seconds) for n in limits}
    binding = _exceeded(with_rho, limits, f"least attainable with {rho} is")
    if binding:
        return InfeasibleBudgetError(
            f'{where} fits budget "{budget}" with {rho}: ' + "; ".join(binding) + "; raise it or rho_max"
        )
    attainable = ", ".join(f"{_WORD[n]} >= {format_amount(v)}" for n, v in least.items() if v is not None)
    return InfeasibleBudgetError(
        f'{where} fits budget "{budget}" with {rho}: the limits conflict jointly (each alone is '
        f"attainable: {attainable}); loosen one of {', '.join(_WORD[n] for n in limits)}"
    )
