"""Closed-form scores of an architecture alone, and the projection onto a proxy network. No JAX.

* `analytic`: an evaluator of closed-form scores, e.g. ``{"entropy": deepmad_score}``.
* `analytic_scores`: the scores named by `ANALYTIC_NAMES` on a space (DeepMAD's entropy under its
  effectiveness bound, parameter count, MACs).
* `project`: an architecture of the searched space as one of the (smaller) proxy network.

References:
  Shen et al., "DeepMAD: Mathematical Architecture Design for Deep Convolutional Neural Network",
  CVPR 2023 (arXiv 2303.02165).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from nasx.evaluators.names import ANALYTIC_NAMES
from nasx.space import Arch, SearchSpace
from solvers.fill import fill_budget

__all__ = ["analytic", "analytic_scores", "project", "fill_budget"]

Score = Callable[[Arch], float]
"""A closed-form score of one architecture."""


def analytic(scores: Mapping[str, Score]) -> Callable[[Sequence[Arch]], list[dict[str, float]]]:
    """An evaluator of closed-form scores, e.g. ``{"entropy": deepmad_score}``."""

    def evaluate(archs: Sequence[Arch]) -> list[dict[str, float]]:
        return [{name: float(fn(a)) for name, fn in scores.items()} for a in archs]

    return evaluate


def analytic_scores(
    names: Sequence[str], space: SearchSpace, *, resolution: int | None, rho: float
) -> dict[str, Score]:
    """The closed-form scores `names` (those of `ANALYTIC_NAMES`, in order) on `space`.

    ``entropy`` is DeepMAD's score where the effectiveness is at most `rho`, and below every
    feasible score otherwise, ranked by how far it exceeds the bound (feasibility first, so an
    evolution climbs into the feasible set); with it comes ``rho``, the effectiveness itself.
    Costs apply at `resolution` px (default: the space's).
    """
    scores = {n: _score(n, space, resolution, rho) for n in names if n in ANALYTIC_NAMES}
    if "entropy" in scores:
        from solvers.mp import effectiveness

        scores["rho"] = lambda a: effectiveness(space, a)
    return scores


def _score(name: str, space: SearchSpace, resolution: int | None, rho: float) -> Score:
    if name == "params":
        return lambda a: space.costs(a, resolution).params
    if name == "macs":
        return lambda a: space.costs(a, resolution).macs
    from solvers.mp import deepmad_score, effectiveness

    def entropy(arch: Arch) -> float:
        value = effectiveness(space, arch)
        if value > rho:
            return -(value - rho)
        return deepmad_score(space, arch, resolution=resolution)

    return entropy


def project(arch: Arch, space: SearchSpace) -> Arch:
    """`arch` as an architecture of `space` (same choice names, possibly fewer options).

    Each choice keeps its value when `space` allows it, else takes the nearest allowed option
    (numbers) or the first one; choices `space` lacks are dropped (e.g. bits in a float proxy).
    """
    values = {}
    for choice in space.choices:
        if choice.name not in arch:
            continue
        v = arch[choice.name]
        if v not in choice.options:
            numeric = [o for o in choice.options if isinstance(o, (int, float)) and not isinstance(o, bool)]
            if numeric and isinstance(v, (int, float)) and not isinstance(v, bool):
                v = min(numeric, key=lambda o: (abs(o - v), o))
            else:
                v = choice.options[0]
        values[choice.name] = v
    return space.validate(Arch(values))
