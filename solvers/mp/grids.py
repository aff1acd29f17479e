"""The option grids of ResNet programs: a space's structural rules, its full grid, the coarse grid
and the neighbourhoods of an architecture that a coarse-to-fine solve searches
(`solvers.mp.coarse_to_fine`)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nasx.space import Value

__all__: list[str] = []


@dataclass(frozen=True)
class _Grid:
    """The options a ResNet program chooses from: stem widths and, per stage, (width, btn) pairs
    (btn 0 for basic blocks). Kernels and depths are always the space's full options."""

    stem: tuple[int, ...]
    stages: tuple[tuple[tuple[int, int], ...], ...]


class _Rules:
    """A ResNet space's structural rules, read from its own `options` (plus DeepMAD's monotone
    widths when asked), memoised per query."""

    def __init__(self, space: Any, monotone_widths: bool) -> None:
        self.space, self.monotone = space, monotone_widths
        self.n = len(space.skeleton.strides)
        self.bottleneck = space.skeleton.block == "bottleneck"
        self._by_name = {c.name: c for c in space.choices}
        self._memo: dict[tuple, tuple[Value, ...]] = {}

    def _options(self, name: str, given: Mapping[str, Value]) -> tuple[Value, ...]:
        key = (name, *given.items())
        if key not in self._memo:
            self._memo[key] = tuple(self.space.options(self._by_name[name], given))
        return self._memo[key]

    def stem(self) -> tuple[int, ...]:
        return self._options("stem.width", {})

    def widths(self, i: int, a: int | None = None) -> tuple[int, ...]:
        """Widths of stage `i` after width `a` of the stage before (the stem's for i = 1)."""
        if a is None:
            return self._by_name[f"s{i}.width"].options
        prev = "stem.width" if i == 1 else f"s{i - 1}.width"
        out = self._options(f"s{i}.width", {prev: a})
        if self.monotone and (i == 1 or i == self.n):
            out = tuple(w for w in out if w >= a)
        return out

    def btns(self, i: int, w: int) -> tuple[int, ...]:
        return self._options(f"s{i}.btn", {f"s{i}.width": w}) if self.bottleneck else (0,)

    def kernels(self, i: int) -> tuple[int, ...]:
        return self._options(f"s{i}.kernel", {})

    def depths(self, i: int) -> tuple[int, ...]:
        return self._options(f"s{i}.depth", {})

    def all_btns(self, i: int) -> tuple[int, ...]:
        return self._by_name[f"s{i}.btn"].options if self.bottleneck else (0,)


def _full_grid(rules: _Rules) -> _Grid:
    stages = tuple(
        tuple((w, b) for w in rules.widths(i) for b in rules.btns(i, w)) for i in range(1, rules.n + 1)
    )
    return _Grid(rules.stem(), stages)


def _tuples(rules: _Rules, grid: _Grid) -> int:
    """Number of option tuples (a, w, b, k) of the program over `grid`."""
    total, prev = 0, grid.stem
    for i, pairs in enumerate(grid.stages, start=1):
        per_width: dict[int, int] = defaultdict(int)
        for w, _ in pairs:
            per_width[w] += len(rules.kernels(i))
        for a in prev:
            allowed = set(rules.widths(i, a))
            total += sum(n for w, n in per_width.items() if w in allowed)
        prev = tuple(per_width)
    return total


def _geometric(grid: Sequence[int], ratio: float) -> list[int]:
    """The first value of sorted `grid`, then each next one at least `ratio` times the last kept,
    and the largest."""
    out = [grid[0]]
    for v in grid[1:]:
        if v >= out[-1] * ratio:
            out.append(v)
    if out[-1] != grid[-1]:
        out.append(grid[-1])
    return out


def _coarse_grid(rules: _Rules, ratio: float) -> _Grid:
    """Widths and bottlenecks every factor `ratio`, with each width's smallest and largest
    bottleneck; all stem widths (a short grid). Holds the smallest option of every choice."""
    stages = []
    for i in range(1, rules.n + 1):
        btns = set(_geometric(rules.all_btns(i), ratio))
        pairs = []
        for w in _geometric(rules.widths(i), ratio):
            allowed = rules.btns(i, w)
            pairs += [(w, b) for b in allowed if b in btns or b in (allowed[0], allowed[-1])]
        stages.append(tuple(pairs))
    return _Grid(rules.stem(), tuple(stages))


def _near(grid: Sequence[int], v: int, ratio: float) -> set[int]:
    """`v` and, on each side of it, the value of sorted `grid` nearest to ``v / ratio`` (below)
    and to ``v * ratio`` (above): at least one grid step away, exactly one when `ratio` is 1."""
    i = grid.index(v)
    out = {v}
    if i > 0:
        out.add(min(grid[:i], key=lambda g: abs(math.log(g * ratio / v))))
    if i + 1 < len(grid):
        out.add(min(grid[i + 1 :], key=lambda g: abs(math.log(g / (v * ratio)))))
    return out


def _neighbourhood(rules: _Rules, arch: Mapping[str, Value], ratio: float) -> _Grid:
    """Per stage the widths and bottlenecks `_near` the arch's; stem widths likewise."""
    stages = []
    for i in range(1, rules.n + 1):
        widths = _near(rules.widths(i), arch[f"s{i}.width"], ratio)
        btns = _near(rules.all_btns(i), arch[f"s{i}.btn"], ratio) if rules.bottleneck else {0}
        stages.append(tuple((w, b) for w in sorted(widths) for b in rules.btns(i, w) if b in btns))
    return _Grid(tuple(sorted(_near(rules.stem(), arch["stem.width"], ratio))), tuple(stages))
