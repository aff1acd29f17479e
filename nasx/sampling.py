"""Which subnets a supernet trains at each step: sandwich, sorted and uniform rules.

* ``sandwich`` (BigNAS): the largest subnet, the smallest, and k - 2 random ones. The largest
  comes first and teaches the others by in-place distillation.
* ``sorted`` (SortedNet): a chain of k nested subnets, each a prefix of the next in every ordered
  choice (width, depth, kernel, expansion, bits), sharing one random draw of the unordered ones
  (ops, inputs); the full-size member comes first.
* ``uniform`` (SPOS): k subnets drawn uniformly.

"Largest" and "smallest" are found per space: ordered numeric choices go to their largest
(smallest) option; unordered choices take, one at a time, the option that gives the most (fewest)
MACs, ties broken by params.

References:
  Yu et al., "BigNAS", ECCV 2020; Valipour et al., "SortedNet", 2023; Guo et al., "Single Path
  One-Shot NAS", ECCV 2020.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np

from nasx.space import Arch, Choice, SearchSpace, Value

__all__ = ["RULES", "extreme", "nested_chain", "draw"]

RULES = ("sandwich", "sorted", "uniform")


def _ordered(choice: Choice) -> bool:
    return all(isinstance(o, int) and not isinstance(o, bool) for o in choice.options)


def extreme(space: SearchSpace, which: Literal["largest", "smallest"]) -> Arch:
    """The largest or smallest architecture of `space` (see the module docstring)."""
    big = which == "largest"
    rng = np.random.default_rng(0)  # only breaks ties that cannot matter: every choice is set
    prefs: dict[str, Value] = {}
    for c in space.choices:
        prefs[c.name] = (max if big else min)(c.options) if _ordered(c) else c.options[0]
    arch = space.complete(prefs, rng)
    for c in space.choices:
        if _ordered(c) or c.name not in arch:
            continue
        scored = []
        for option in space.options(c, arch):
            candidate = space.complete({**arch, c.name: option}, rng)
            costs = space.costs(candidate)
            scored.append(((costs.macs, costs.params), option))
        best = (max if big else min)(scored, key=lambda t: t[0])[1]
        arch = space.complete({**arch, c.name: best}, rng)
    return arch


def nested_chain(space: SearchSpace, levels: list[float], rng: np.random.Generator) -> list[Arch]:
    """One subnet per level in [0, 1]: each ordered choice at that quantile of its options.

    Unordered choices are drawn once and shared, so for increasing levels every member is a
    prefix of the next.
    """
    shared = space.sample(rng)
    chain = []
    for level in levels:
        prefs: dict[str, Value] = dict(shared)
        for c in space.choices:
            if _ordered(c):
                ordered = sorted(c.options)
                prefs[c.name] = ordered[round(level * (len(ordered) - 1))]
        chain.append(space.complete(prefs, rng))
    return chain


def draw(
    space: SearchSpace,
    rule: str,
    k: int,
    rng: np.random.Generator,
    extremes: Mapping[str, Arch] | None = None,
) -> list[Arch]:
    """`k` architectures for one training step under `rule`; the first is the teacher.

    Args:
      extremes: ``{"largest": ..., "smallest": ...}``, computed once by the caller (`extreme`).
    """
    if rule == "sandwich":
        ex = extremes or {w: extreme(space, w) for w in ("largest", "smallest")}
        return [ex["largest"], ex["smallest"], *(space.sample(rng) for _ in range(max(0, k - 2)))][:k]
    if rule == "sorted":
        inner = sorted(rng.uniform(0, 1, max(0, k - 2)).tolist())
        levels = [1.0, 0.0, *inner][:k]
        return nested_chain(space, levels, rng)
    if rule == "uniform":
        return [space.sample(rng) for _ in range(k)]
    raise ValueError(f'sampling rule "{rule}": expected one of {", ".join(RULES)}')
