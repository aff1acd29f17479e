"""The search strategies ``nasx search --strategy`` names, and the objectives they optimize."""

from __future__ import annotations

from collections.abc import Sequence

from nasx.budget import Budget
from nasx.errors import NasxError, UnknownObjectiveError
from nasx.search import COST_OBJECTIVES, Objective, Strategy
from nasx.space import SearchSpace

__all__ = ["STRATEGIES", "UnknownStrategyError", "check_strategy", "build_strategy", "resolve_objectives"]

STRATEGIES = ("evolution", "nsga2", "random", "mp")
"""Strategy names: aging evolution, NSGA-II, random search, DeepMAD's mathematical program."""


class UnknownStrategyError(NasxError, KeyError):
    """A strategy name that is not one of `STRATEGIES`."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def check_strategy(name: str) -> str:
    """`name` if it is one of `STRATEGIES`, else `UnknownStrategyError`."""
    if name not in STRATEGIES:
        raise UnknownStrategyError(f'unknown strategy "{name}"; expected one of {", ".join(STRATEGIES)}')
    return name


def build_strategy(
    name: str,
    space: SearchSpace,
    budget: Budget,
    maximize: Sequence[bool],
    *,
    population: int = 32,
    resolution: int | None = None,
) -> Strategy:
    """The ask/tell strategy `name` (not ``mp``) over `space` under `budget`, for objectives that
    are maximized as `maximize` says; `population` for evolution and NSGA-II."""
    from solvers.evolution import NSGA2, AgingEvolution
    from solvers.random import RandomSearch

    if name == "random":
        return RandomSearch(space, budget, resolution=resolution)
    if name == "evolution":
        return AgingEvolution(
            space,
            budget,
            population_size=population,
            sample_size=max(2, population // 4),
            maximize=maximize[0],
            resolution=resolution,
        )
    return NSGA2(space, tuple(maximize), budget, population_size=population, resolution=resolution)


def resolve_objectives(
    names: Sequence[str] | None, strategy: str, scores: Sequence[str]
) -> tuple[Objective, ...]:
    """`names` as objectives: scores of the evaluator (maximized; ``acc``/``score`` is the first of
    `scores`), then analytic costs (minimized). None: the first score (and ``macs`` for nsga2).

    Raises:
      UnknownObjectiveError: a name is neither a score nor a cost, or a one-objective strategy
        gets several.
    """
    chosen = list(names) if names is not None else ["score"]
    if names is None and strategy == "nsga2":
        chosen.append("macs")
    out = []
    for name in chosen:
        if name in ("acc", "score"):
            name = scores[0]
        if name in scores:
            out.append(Objective(name))
        elif name in COST_OBJECTIVES:
            out.append(Objective.cost(name))
        else:
            raise UnknownObjectiveError(
                f'objective "{name}": expected a score of the evaluator ({", ".join(scores)}, or '
                f"acc/score for the first) or a cost ({', '.join(COST_OBJECTIVES)})"
            )
    if strategy in ("evolution", "random") and len(out) > 1:
        raise UnknownObjectiveError(
            f'strategy "{strategy}" optimizes one objective, got {",".join(o.name for o in out)}; '
            "use --strategy nsga2"
        )
    return tuple(out)
