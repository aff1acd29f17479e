"""DeepMAD's mathematical program as a mixed-integer linear program (PuLP + CBC).

DeepMAD designs a CNN by maximising its *weighted multi-scale entropy* subject to budgets and to an
*effectiveness* bound. `deepmad_score` and `effectiveness` evaluate those formulas on any
architecture of the `resnet` and `mobilenet` spaces; `solve` searches a space for the architecture
with the largest score under a `Budget` by solving mixed-integer linear programs with CBC.

The formulas (``shared/reference/deepmad_formulas.md``, TinyNAS's reading of the paper): every conv
layer with ``c`` input channels (1 if depthwise) and kernel ``k`` contributes ``s = 1/2 log(c k^2)``.
Stages close before every strided block. For stage ``g`` with output channels ``C_g``, side
``r_g`` px, cumulative entropy ``E_g`` (the sum of ``s`` over all layers up to its end) and
cumulative conv-layer count ``D_g``::

    score = sum_g beta_g * (log C_g + 2 log r_g) * E_g,      beta = (1, ..., 1, 8)
    rho_g = D_g / exp(2 E_g / D_g)  <=  rho_max              (effectiveness, for every stage)

The depth-uniformity penalty of TinyNAS's evolutionary search is not part of the score.

The program over a ResNet grid (bottleneck or basic blocks) is an *extended* formulation: per
stage ``i`` one binary ``z_t`` per option tuple ``t = (a, w, b, k)`` (previous stage's width, width,
bottleneck, kernel) that the space's rules allow, so every block's costs (the space's own
`stage_terms`) and entropy are constants per tuple; consecutive stages agree on the width they
share through flow equations ``sum_{t: a_t = v} z_t = sum_{t': w_t' = v} z_t'``. Depth enters as
``y_q = (L - 1) * [stage takes (w, b, k) = q]``, continuous with ``0 <= y_q <= (L_max - 1) z_q`` and
``sum_q y_q = L - 1``: the convex hull of each stage's (tuple, depth) choice, so the inner blocks'
costs and entropy are linear and exact. ``L`` is one general integer variable when the depth
options are consecutive (branching on it halves its range; with one-hot depths CBC took ~6x longer
on a neighbourhood program we timed), else one-hot. The score's products ``log C_g * E_g`` are
exact for the stage that ends group ``g`` (``log w`` is a constant of its tuples) and McCormick
envelopes on binaries (exact at integral points) for the earlier stages' entropies. The
effectiveness bound ``2 E_g >= D_g (log D_g - log rho_max)`` has a convex right-hand side in the
integer ``D_g``; the secants between consecutive attainable values of ``D_g`` impose it exactly.
MBConv spaces have fixed widths, so their program is linear without products: per stage a one-hot
depth and SE flag, per block position a one-hot (kernel, expansion, SE) option active when the
depth reaches it, priced by the space's `block_costs`.

How `solve` searches (``method``):

* ``"full"``: one program over the space's whole grid; `MPResult.optimal` says whether CBC proved
  optimality within the time limit, `MPResult.gap` is CBC's gap otherwise. ``"auto"`` picks it
  for MBConv spaces and for ResNet grids of at most `FULL_GRID_MAX_TUPLES` tuples.
* ``"coarse-to-fine"`` (ResNet grids above that size, e.g. DeepMAD's ImageNet grid: 255 widths
  and 256 bottlenecks, 31 million tuples over its 5 stages): every program is still an exact MILP,
  on a sub-grid. First the *coarse* grid (widths and bottlenecks every factor `coarse_ratio`, plus
  each width's extreme bottlenecks; all stem widths, kernels and depths), then *neighbourhoods* of
  the incumbent: per stage the widths and bottlenecks nearest to ``v / r, v, v * r``
  (at least the adjacent grid values), all kernels and depths, warm-started from the incumbent,
  ``r`` shrinking from ``sqrt(coarse_ratio)`` towards 1 when a neighbourhood brings no
  improvement. It stops at a *local optimum* (status ``"local optimum"``: no architecture whose
  stem, stage widths and bottlenecks are each within one grid step of the result, with any kernels
  and depths, scores higher) or at the time limit (``"time limit"``). The result is not proven
  globally optimal (`MPResult.optimal` is False, `MPResult.gap` None: the linear relaxation of
  the whole grid is too large to bound it).

Measured (2-core machine shared with other jobs, CBC 1 thread, ``benchmarks/mp_vs_evolution.py``):
on DeepMAD-R50's setting (4.13G MACs, 25.55M params, rho <= 0.3, 224 px, imagenet skeleton) the
coarse program (1,188 tuples) is solved to optimality in ~1.5 s with score 49,666, above the
48,919.28 of the released DeepMAD-R50 structure; the neighbourhoods reach a local optimum of
50,675 in 40-60 s depending on the load (or stop at the 60 s limit a few points below it). At the
R18 / R34 budgets: 35,998 / 47,542 (released: 32,120 / 43,143).

Limits: MBConv programs and small ResNet grids are solved to proven optimality (the tests check
them against brute force); on large grids the result is a local optimum in the sense above. Costs
in the program are the spaces' own analytic costs, and `solve` checks the returned architecture
against ``space.costs`` and the rho bound. A budget on latency cannot be modelled. On a
coarse-to-fine solve, an infeasible budget is diagnosed on the coarse grid: a cost whose least
value exceeds its limit is reported exactly (the coarse grid holds the space's smallest option of
every choice, and every cost grows with every option); other infeasibilities (the rho bound, or
limits that conflict only jointly) surface as `SolverTimeLimitError`.

References:
  Shen et al., "DeepMAD: Mathematical Architecture Design for Deep Convolutional Neural Network",
  CVPR 2023 (arXiv 2303.02165).
  TinyNAS, alibaba/lightweight-neural-architecture-search @ 8ccaf889
  (``tinynas/scores/compute_deepmad.py``, ``tinynas/models/cnnnet.py``).
  Balas, "Disjunctive programming and a hierarchy of relaxations for discrete optimization
  problems", SIAM J. Algebraic Discrete Methods 6(3), 1985 (the extended formulation).
  McCormick, "Computability of global solutions to factorable nonconvex programs", Math.
  Programming 10, 1976.
  Mladenovic & Hansen, "Variable neighborhood search", Computers & Operations Research 24(11),
  1997 (the shrinking neighbourhoods, here each searched exactly by a MILP).
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import re
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulp

from nasx.budget import Budget, format_amount
from nasx.costs import Costs, out_size
from nasx.errors import (
    BudgetCostError,
    InfeasibleBudgetError,
    SolverTimeLimitError,
    UnsupportedSpaceError,
)
from nasx.space import Arch, SearchSpace, Value

__all__ = [
    "MPResult",
    "UnsupportedSpaceError",
    "SolverTimeLimitError",
    "FULL_GRID_MAX_TUPLES",
    "solve",
    "deepmad_score",
    "effectiveness",
]

log = logging.getLogger(__name__)

FULL_GRID_MAX_TUPLES = 6000
"""Largest ResNet grid (option tuples over all stages) that ``method="auto"`` solves in one program."""

_MODELED = ("macs", "params", "weight_bytes", "layers")
_WORD = {"macs": "flops", "params": "params", "weight_bytes": "size", "layers": "layers"}
_METHODS = ("auto", "full", "coarse-to-fine")
_RHO_MARGIN = 1e-6  # slack on 2E >= f(D) so the solver's tolerance cannot admit rho a hair above the bound
_COARSE_SHARE = 0.25  # of the time limit, at most, for the coarse program
_STEP_MIN_S = 10.0  # a neighbourhood program gets max(this, half the remaining time)
_OVERHEAD_S = 0.5  # of a program besides CBC's own time (reading the solution, checking the arch)


@dataclass(frozen=True)
class MPResult:
    """What `solve` returns.

    Attributes:
      arch: the validated architecture.
      score: its DeepMAD score (`deepmad_score`).
      costs: ``space.costs(arch, resolution)``.
      status: ``"optimal"`` (proven over the whole space), ``"local optimum"`` (coarse-to-fine:
        no better architecture one grid step away, see the module docstring) or ``"time limit"``.
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


# --- the DeepMAD formulas on any architecture --------------------------------------------------
@dataclass(frozen=True)
class _Block:
    """A block of the network as DeepMAD sees it: stride, output channels and side, conv layers."""

    stride: int
    c_out: int
    side_px: int
    convs: tuple[tuple[int, int], ...]  # (input channels, 1 if depthwise; kernel)


def _resnet_convs(block: str, c_in: int, width: int, btn: int, kernel: int) -> tuple[tuple[int, int], ...]:
    if block == "bottleneck":
        return ((c_in, 1), (btn, kernel), (btn, 1))
    return ((c_in, kernel), (width, kernel))


def _mbconv_convs(c_in: int, mid: int, kernel: int, expand: int) -> tuple[tuple[int, int], ...]:
    dw_and_project = ((1, kernel), (mid, 1))
    return ((c_in, 1), *dw_and_project) if expand > 1 else dw_and_project


def _entropy(convs: Sequence[tuple[int, int]]) -> float:
    return sum(0.5 * math.log(c * k * k) for c, k in convs)


def _family(space: SearchSpace, what: str) -> str:
    """``"resnet"`` or ``"mobilenet"``, told by the pricing methods the space offers (duck typing:
    solvers do not import search_spaces)."""
    if callable(getattr(space, "stage_terms", None)) and hasattr(space, "skeleton"):
        return "resnet"
    if callable(getattr(space, "block_costs", None)) and hasattr(space, "scaled"):
        return "mobilenet"
    raise UnsupportedSpaceError(
        f'{what}: space "{space.name}" is not supported; use a resnet or mobilenet space'
    )


def _resnet_sides(skeleton: Any, resolution: int) -> list[int]:
    """Side in px after the stem (index 0) and after each stage (SAME padding: kernel-free)."""
    side = out_size(resolution, skeleton.stem_kernel, skeleton.stem_stride)
    if skeleton.stem_maxpool:
        side = out_size(side, 3, 2)
    sides = [side]
    for stride in skeleton.strides:
        sides.append(out_size(sides[-1], 3, stride))
    return sides


def _resnet_blocks(space: Any, arch: Arch, resolution: int) -> list[_Block]:
    sk = space.skeleton
    sides = _resnet_sides(sk, resolution)
    c_in = arch["stem.width"]
    blocks = [_Block(sk.stem_stride, c_in, sides[0], ((3, sk.stem_kernel),))]
    for i, stride in enumerate(sk.strides, start=1):
        width, kernel, depth = arch[f"s{i}.width"], arch[f"s{i}.kernel"], arch[f"s{i}.depth"]
        btn = arch.get(f"s{i}.btn", 0)
        for j in range(depth):
            convs = _resnet_convs(sk.block, c_in if j == 0 else width, width, btn, kernel)
            blocks.append(_Block(stride if j == 0 else 1, width, sides[i], convs))
        c_in = width
    return blocks


def _mobilenet_blocks(space: Any, arch: Arch, resolution: int) -> list[_Block]:
    sk = space.scaled
    side = out_size(resolution, 3, sk.stem_stride)
    blocks = [_Block(sk.stem_stride, sk.stem_width, side, ((3, 3),))]
    side = out_size(side, 3, sk.first_stride)
    first = _mbconv_convs(sk.stem_width, sk.stem_width, 3, 1)
    blocks.append(_Block(sk.first_stride, sk.first_width, side, first))
    c_in = sk.first_width
    for s, stage in enumerate(sk.stages, start=1):
        for j in range(1, arch[f"s{s}.depth"] + 1):
            kernel, expand = arch[f"s{s}.b{j}.kernel"], arch[f"s{s}.b{j}.expand"]
            stride = stage.stride if j == 1 else 1
            side = out_size(side, kernel, stride)
            blocks.append(
                _Block(stride, stage.width, side, _mbconv_convs(c_in, c_in * expand, kernel, expand))
            )
            c_in = stage.width
    blocks.append(_Block(1, sk.head_width, side, ((c_in, 1),)))  # the 1x1 head conv before pooling
    return blocks


def _mobilenet_resolution(space: Any, arch: Mapping[str, Value], resolution: int | None) -> int:
    sk = space.skeleton
    return resolution or sk.fixed_resolution or int(arch.get("resolution", sk.default_resolution))


def _blocks(space: SearchSpace, arch: Arch, resolution: int | None) -> list[_Block]:
    if _family(space, "DeepMAD score") == "resnet":
        return _resnet_blocks(space, arch, resolution or space.resolution)
    return _mobilenet_blocks(space, arch, _mobilenet_resolution(space, arch, resolution))


def _stages(blocks: list[_Block]) -> list[tuple[int, int, float, int]]:
    """Per DeepMAD stage: (C, r, cumulative entropy, cumulative conv layers)."""
    stages, entropy, layers = [], 0.0, 0
    for b, block in enumerate(blocks):
        if b > 0 and block.stride != 1:
            prev = blocks[b - 1]
            stages.append((prev.c_out, prev.side_px, entropy, layers))
        entropy += _entropy(block.convs)
        layers += len(block.convs)
    stages.append((blocks[-1].c_out, blocks[-1].side_px, entropy, layers))
    return stages


def _weights(n_stages: int, stage_weights: Sequence[float] | None) -> tuple[float, ...]:
    weights = tuple(stage_weights) if stage_weights is not None else (1.0,) * (n_stages - 1) + (8.0,)
    if len(weights) != n_stages:
        raise ValueError(f"stage_weights has {len(weights)} entries; this network has {n_stages} stages")
    return weights


def deepmad_score(
    space: SearchSpace,
    arch: Mapping[str, Value],
    *,
    resolution: int | None = None,
    stage_weights: Sequence[float] | None = None,
) -> float:
    """DeepMAD's weighted multi-scale entropy of `arch` (module docstring), without depth penalty.

    Args:
      space: a `resnet` or `mobilenet` space.
      arch: an architecture of `space` (validated here).
      resolution: input side in px (default: the space's, or a mobilenet arch's own choice).
      stage_weights: beta per stage (default ``(1, ..., 1, 8)``, TinyNAS's ``multi_block_ratio``).

    Raises:
      UnsupportedSpaceError: `space` is neither a resnet nor a mobilenet space.

    References:
      Shen et al. 2023, Eq. (5)-(7); TinyNAS ``tinynas/scores/compute_deepmad.py``.
    """
    arch = space.validate(arch)
    stages = _stages(_blocks(space, arch, resolution))
    weights = _weights(len(stages), stage_weights)
    return sum(
        beta * (math.log(c) + 2 * math.log(r)) * e for beta, (c, r, e, _) in zip(weights, stages, strict=True)
    )


def effectiveness(space: SearchSpace, arch: Mapping[str, Value]) -> float:
    """DeepMAD's effectiveness ``max_g rho_g`` of `arch` (TinyNAS's ``efficient_score``)."""
    arch = space.validate(arch)
    stages = _stages(_blocks(space, arch, None))
    return max(math.exp(math.log(d) - 2 * e / d) for _, _, e, d in stages)


# --- MILP building blocks -----------------------------------------------------------------------
_Expr = pulp.LpAffineExpression | pulp.LpVariable


class _Program:
    """A minimising `pulp.LpProblem` (CBC reads a MIP start only when minimising) and helpers."""

    def __init__(self) -> None:
        self.prob = pulp.LpProblem("deepmad", pulp.LpMinimize)
        self._n = itertools.count()

    def var(
        self, lo: float | None = None, hi: float | None = None, *, binary: bool = False
    ) -> pulp.LpVariable:
        cat = pulp.LpBinary if binary else pulp.LpContinuous
        return self.prob.add_variable(f"v{next(self._n)}", lo, hi, cat=cat)  # PuLP 4 style: no warning

    def onehot(self, options: Sequence[Value]) -> dict[Value, pulp.LpVariable]:
        """Binaries, one per option, exactly one of which is 1."""
        x = {v: self.var(binary=True) for v in options}
        self.prob += pulp.lpSum(x.values()) == 1
        return x

    def named(self, expr: _Expr, lo: float, hi: float) -> pulp.LpVariable:
        """`expr` as one continuous variable (an equality row), so rows using it stay sparse."""
        v = self.var(lo, hi)
        self.prob += v == expr
        return v

    def product(
        self, x: Mapping[Value, _Expr], e: pulp.LpVariable, lo: float, hi: float
    ) -> dict[Value, pulp.LpVariable]:
        """``u_v = x_v * e`` for one-hot binaries ``x`` and ``lo <= e <= hi``, exactly.

        McCormick's four inequalities pin ``u_v`` to ``e`` when ``x_v = 1`` and to 0 otherwise;
        ``sum_v u_v = e`` holds at integral points and tightens the relaxation.
        """
        out = {}
        for v, xv in x.items():
            u = self.var(min(lo, 0.0), max(hi, 0.0))
            self.prob += u <= hi * xv
            self.prob += u >= lo * xv
            self.prob += u <= e - lo * (1 - xv)
            self.prob += u >= e - hi * (1 - xv)
            out[v] = u
        self.prob += pulp.lpSum(out.values()) == e
        return out

    def rho_bound(self, entropy: _Expr, layers: _Expr, attainable: Sequence[int], rho_max: float) -> None:
        """``D / exp(2E / D) <= rho_max``, i.e. ``2E >= f(D) = D (log D - log rho_max)``.

        `f` is convex, so at integral ``D`` it equals the maximum of its secants between
        consecutive attainable values: one linear inequality per secant, exact.
        """
        ds = sorted(set(attainable))

        def f(d: int) -> float:
            return d * (math.log(d) - math.log(rho_max)) + _RHO_MARGIN

        if len(ds) == 1:
            self.prob += 2 * entropy >= f(ds[0])
        for d0, d1 in itertools.pairwise(ds):
            slope = (f(d1) - f(d0)) / (d1 - d0)
            self.prob += 2 * entropy - slope * layers >= f(d0) - slope * d0


class _Integer:
    """A choice among sorted integer `options`: one general integer variable when they are
    consecutive (branching on it halves its range, where one-hot branching fixes one value),
    else one-hot binaries."""

    def __init__(self, p: _Program, options: Sequence[int]) -> None:
        self.options = tuple(options)
        if self.options == tuple(range(self.options[0], self.options[-1] + 1)):
            self._var = p.prob.add_variable(
                f"v{next(p._n)}", self.options[0], self.options[-1], cat=pulp.LpInteger
            )
            self._onehot = None
            self.expr = pulp.LpAffineExpression(self._var)
        else:
            self._var, self._onehot = None, p.onehot(self.options)
            self.expr = pulp.lpSum(d * x for d, x in self._onehot.items())

    def value(self) -> int:
        if self._onehot is not None:
            return _chosen(self._onehot)
        return round(self._var.varValue)

    def start(self, d: int) -> None:
        if self._onehot is not None:
            for option, x in self._onehot.items():
                x.setInitialValue(int(option == d))
        else:
            self._var.setInitialValue(d)


def _chosen(x: Mapping[Value, pulp.LpVariable]) -> Value:
    return max(x, key=lambda v: x[v].varValue or 0.0)


def _bits_keys(space: SearchSpace, bits: int) -> dict[str, Value]:
    """Every ``bits`` choice of `space` set to `bits` (none if the space has no bits choice)."""
    return {
        c.name: bits
        for c in space.choices
        if c.name == "bits" or c.name.endswith(".bits") or c.name.startswith("bits.")
    }


@dataclass
class _Model:
    """A DeepMAD program: objective, modelled costs, how to read the arch back and to warm-start."""

    program: _Program
    score: pulp.LpAffineExpression
    costs: dict[str, pulp.LpAffineExpression]
    decode: Callable[[], dict[str, Value]]
    start: Callable[[Mapping[str, Value]], bool] = lambda arch: False  # True if a MIP start was set


@dataclass(frozen=True)
class _Setting:
    """Everything a program depends on besides its grid and the rho bound."""

    space: Any
    family: str
    resolution: int
    bits: int
    stage_weights: Sequence[float] | None
    monotone_widths: bool


# --- ResNet grids ---------------------------------------------------------------------------------
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


# --- the ResNet program ---------------------------------------------------------------------------
def _resnet_model(setting: _Setting, rules: _Rules, grid: _Grid, rho_max: float | None) -> _Model:
    """The extended formulation of the module docstring over `grid`."""
    space, sk, res, bits = setting.space, setting.space.skeleton, setting.resolution, setting.bits
    n, p = rules.n, _Program()
    sides = _resnet_sides(sk, res)
    ends = ([0] if sk.strides[0] != 1 else []) + [i for i in range(1, n + 1) if i == n or sk.strides[i] != 1]
    weights = dict(zip(ends, _weights(len(ends), setting.stage_weights), strict=True))

    x_prev: dict[int, _Expr] = dict(p.onehot(grid.stem))
    stem_x = x_prev
    costs = {
        name: pulp.lpSum(
            getattr(space.stem_costs(v, resolution=res, bits=bits), name) * x for v, x in x_prev.items()
        )
        for name in _MODELED
    }
    ent0 = _entropy(((3, sk.stem_kernel),))
    parts: list[tuple[pulp.LpVariable, float, float]] = []  # per stage: entropy S_i and its bounds
    layers: pulp.LpAffineExpression = pulp.LpAffineExpression(constant=1)
    attainable = {1}
    score = pulp.LpAffineExpression()
    chosen = []

    def close(end: int, x_end: Mapping[int, _Expr], last: pulp.LpAffineExpression) -> None:
        """Effectiveness and the score of the DeepMAD stage ending at stage `end` (0: the stem)."""
        beta = weights[end]
        entropy_expr = ent0 + pulp.lpSum(s for s, _, _ in parts)
        lo, hi = ent0 + sum(lo for _, lo, _ in parts), ent0 + sum(hi for _, _, hi in parts)
        entropy = p.named(entropy_expr, lo, hi)
        if rho_max is not None:
            depth = p.named(layers, min(attainable), max(attainable))
            p.rho_bound(entropy, depth, sorted(attainable), rho_max)
        terms = [
            2 * math.log(sides[end]) * entropy,
            ent0 * pulp.lpSum(math.log(v) * x for v, x in x_end.items()),
        ]
        terms.append(last)  # log C * (entropy of the closing stage): exact, per tuple
        for s_j, lo_j, hi_j in parts[:-1] if end > 0 else ():
            u = p.product(x_end, s_j, lo_j, hi_j)
            terms.append(pulp.lpSum(math.log(v) * u_v for v, u_v in u.items()))
        nonlocal score
        score += beta * pulp.lpSum(terms)

    if 0 in weights:
        close(0, stem_x, pulp.LpAffineExpression())
    for i, pairs in enumerate(grid.stages, start=1):
        kernels, depths = rules.kernels(i), rules.depths(i)
        allowed = {a: set(rules.widths(i, a)) for a in x_prev}
        tuples = [(a, w, b, k) for a in x_prev for w, b in pairs if w in allowed[a] for k in kernels]
        z = {t: p.var(binary=True) for t in tuples}
        by_a, by_q, by_w = defaultdict(list), defaultdict(list), defaultdict(list)
        for t, zt in z.items():
            by_a[t[0]].append(zt)
            by_q[t[1:]].append(zt)
            by_w[t[1]].append(zt)
        for a, xa in x_prev.items():  # flow: the stage starts from the width the previous one ends at
            p.prob += pulp.lpSum(by_a[a]) == xa
        d_lo, d_hi = min(depths) - 1, max(depths) - 1
        y = {q: p.var(0, d_hi) for q in by_q}
        for q, yq in y.items():
            p.prob += yq <= d_hi * pulp.lpSum(by_q[q])
            if d_lo > 0:
                p.prob += yq >= d_lo * pulp.lpSum(by_q[q])
        depth = _Integer(p, depths)
        p.prob += pulp.lpSum(y.values()) == depth.expr - 1

        first, inner = {}, {}
        for t in tuples:
            a, w, b, k = t
            first[t], inner[t[1:]] = space.stage_terms(i, a, w, b, k, resolution=res, bits=bits)
        for name in _MODELED:
            costs[name] += pulp.lpSum(getattr(first[t], name) * z[t] for t in tuples)
            costs[name] += pulp.lpSum(getattr(inner[q], name) * y[q] for q in y)
        e_first = {t: _entropy(_resnet_convs(sk.block, *t)) for t in tuples}
        e_inner = {q: _entropy(_resnet_convs(sk.block, q[0], *q)) for q in y}
        n_first = len(_resnet_convs(sk.block, 1, 1, 1, 1))
        s_expr = pulp.lpSum(e_first[t] * z[t] for t in tuples) + pulp.lpSum(e_inner[q] * y[q] for q in y)
        lo = min(e_first.values()) + d_lo * min(e_inner.values())
        hi = max(e_first.values()) + d_hi * max(e_inner.values())
        parts.append((p.named(s_expr, lo, hi), lo, hi))
        layers = layers + n_first * depth.expr
        attainable = {t + n_first * d for t in attainable for d in depths}
        x_prev = {w: pulp.lpSum(zs) for w, zs in by_w.items()}
        chosen.append((z, y, depth))
        if i in weights:
            last = pulp.lpSum(math.log(t[1]) * e_first[t] * z[t] for t in tuples)
            last += pulp.lpSum(math.log(q[0]) * e_inner[q] * y[q] for q in y)
            close(i, x_prev, last)
    for name in _MODELED:
        costs[name] += pulp.lpSum(
            getattr(space.head_costs(w, resolution=res, bits=bits), name) * x for w, x in x_prev.items()
        )

    def decode() -> dict[str, Value]:
        values: dict[str, Value] = {"stem.width": _chosen(stem_x)}
        for i, (z, _, depth) in enumerate(chosen, start=1):
            _, w, b, k = _chosen(z)
            values |= {f"s{i}.width": w, f"s{i}.kernel": k, f"s{i}.depth": depth.value()}
            if rules.bottleneck:
                values[f"s{i}.btn"] = b
        return values | _bits_keys(space, bits)

    def start(arch: Mapping[str, Value]) -> bool:
        a, picks = arch["stem.width"], []
        for i in range(1, n + 1):
            picks.append((a, arch[f"s{i}.width"], arch.get(f"s{i}.btn", 0), arch[f"s{i}.kernel"]))
            a = picks[-1][1]
        if arch["stem.width"] not in stem_x or any(
            t not in z for t, (z, _, _) in zip(picks, chosen, strict=True)
        ):
            return False
        for option, x in stem_x.items():
            x.setInitialValue(int(option == arch["stem.width"]))
        for i, (t, (z, y, depth)) in enumerate(zip(picks, chosen, strict=True), start=1):
            d = arch[f"s{i}.depth"]
            for option, x in z.items():
                x.setInitialValue(int(option == t))
            for q, yq in y.items():
                yq.setInitialValue(d - 1 if q == t[1:] else 0)
            depth.start(d)
        return True

    return _Model(p, score, costs, decode, start)


# --- the MBConv program ---------------------------------------------------------------------------
def _mobilenet_model(setting: _Setting, rho_max: float | None) -> _Model:
    """Per stage a one-hot depth and SE flag, per block position a one-hot (kernel, expansion, SE)
    option, active when the depth reaches it. Widths are fixed, so every block's costs
    (`space.block_costs`) and entropy are constants per option, and each DeepMAD stage's width is
    a constant: the program is linear without products."""
    space, res, bits = setting.space, setting.resolution, setting.bits
    sk, p = space.scaled, _Program()
    options = [(k, e, se) for k in sk.kernels for e in sk.expands for se in (False, True)]
    resolution_key = {}
    if sk.fixed_resolution is None and res in space.skeleton.resolutions:
        resolution_key = {"resolution": res}
    fixed = space.fixed_costs(resolution=res, bits=bits)
    costs = {name: pulp.LpAffineExpression(constant=getattr(fixed, name)) for name in _MODELED}
    n_stages = int(sk.first_stride != 1) + sum(s.stride != 1 for s in sk.stages) + 1
    weights = iter(_weights(n_stages, setting.stage_weights))
    score = pulp.LpAffineExpression()
    entropy = pulp.LpAffineExpression(constant=_entropy(((3, 3),)))
    layers, attainable = pulp.LpAffineExpression(constant=1), {1}

    def close(width: int, side: int) -> None:
        nonlocal score
        if rho_max is not None:
            p.rho_bound(entropy, layers, sorted(attainable), rho_max)
        score += next(weights) * (math.log(width) + 2 * math.log(side)) * entropy

    side = out_size(res, 3, sk.stem_stride)
    if sk.first_stride != 1:
        close(sk.stem_width, side)
    side = out_size(side, 3, sk.first_stride)
    first = _mbconv_convs(sk.stem_width, sk.stem_width, 3, 1)
    entropy += _entropy(first)
    layers += len(first)
    attainable = {d + len(first) for d in attainable}
    end_width, chosen = sk.first_width, []
    for s, stage in enumerate(sk.stages, start=1):
        if stage.stride != 1:
            close(end_width, side)
        side = out_size(side, 3, stage.stride)
        dl, se = p.onehot(stage.depths), p.onehot((False, True))
        blocks = []
        for j in range(1, max(stage.depths) + 1):
            c_in = stage.width if j > 1 else end_width
            z = {o: p.var(binary=True) for o in options}
            p.prob += pulp.lpSum(z.values()) == pulp.lpSum(v for d, v in dl.items() if d >= j)
            for flag in (False, True):
                p.prob += pulp.lpSum(v for o, v in z.items() if o[2] == flag) <= se[flag]
            blocks.append(z)
            for name in _MODELED:
                costs[name] += pulp.lpSum(
                    getattr(space.block_costs(s, j, *o, resolution=res, bits=bits), name) * v
                    for o, v in z.items()
                )
            convs = {o: _mbconv_convs(c_in, c_in * o[1], o[0], o[1]) for o in options}
            entropy += pulp.lpSum(_entropy(convs[o]) * v for o, v in z.items())
            layers += pulp.lpSum(len(convs[o]) * v for o, v in z.items())
        block_layers = {len(_mbconv_convs(1, 1, 3, e)) for e in sk.expands}
        reach = set()
        for d in stage.depths:
            sums = {0}
            for _ in range(d):
                sums = {t + m for t in sums for m in block_layers}
            reach |= {t + u for t in attainable for u in sums}
        attainable = reach
        chosen.append((dl, se, blocks))
        end_width = stage.width
    entropy += _entropy(((end_width, 1),))  # the head conv
    layers += 1
    attainable = {d + 1 for d in attainable}
    close(sk.head_width, side)

    def decode() -> dict[str, Value]:
        values: dict[str, Value] = {**resolution_key}
        for s, (dl, se, blocks) in enumerate(chosen, start=1):
            depth = _chosen(dl)
            values |= {f"s{s}.depth": depth, f"s{s}.se": _chosen(se)}
            for j, z in enumerate(blocks[:depth], start=1):
                kernel, expand, _ = _chosen(z)
                values |= {f"s{s}.b{j}.kernel": kernel, f"s{s}.b{j}.expand": expand}
        return values | _mobilenet_bits(space, values, bits)

    return _Model(p, score, costs, decode)


def _mobilenet_bits(space: Any, values: Mapping[str, Value], bits: int) -> dict[str, Value]:
    """The ``bits`` choices of the blocks `values` makes active, and of stem and head."""
    keys = _bits_keys(space, bits)
    active = {k: v for k, v in keys.items() if k.startswith("bits.")}
    for name in keys:
        stage, _, rest = name.partition(".")
        depth = values.get(f"{stage}.depth")
        if rest.startswith("b") and depth is not None and int(rest.split(".")[0][1:]) <= int(depth):
            active[name] = bits
    return active


# --- solving one program --------------------------------------------------------------------------
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


# --- solve ----------------------------------------------------------------------------------------
def _limits(budget: Budget) -> dict[str, float]:
    limits = budget.limits()
    unmodelled = sorted(set(limits) - set(_MODELED))
    if unmodelled:
        raise BudgetCostError(
            f'budget "{budget}": the MP solver cannot model {", ".join(unmodelled)} '
            f"(it models {', '.join(_WORD[n] for n in _MODELED)}); drop it or use evolutionary search"
        )
    return limits


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
      budget: limits on MACs (flops), params, weight bytes (size) and layers.
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
      BudgetCostError: the budget limits a cost the program does not model (latency).
      UnsupportedSpaceError: the space has no formulation here.
      SolverTimeLimitError: no feasible architecture was found within the time limit.
    """
    start = time.perf_counter()
    deadline = start + time_limit_s
    if method not in _METHODS:
        raise ValueError(f'method "{method}" is not one of {", ".join(_METHODS)}')
    family = _family(space, "MP solver")
    limits = _limits(budget)
    if resolution is None:
        resolution = space.resolution
    if bits is None:
        bits = min(space.bits) if "weight_bytes" in limits else max(space.bits)
    if bits not in space.bits:
        raise ValueError(f"bits={bits} is not a bit-width of the space; expected one of {space.bits}")
    setting = _Setting(space, family, resolution, bits, stage_weights, monotone_widths)
    run = {"limits": limits, "rho_max": rho_max, "solver": solver, "threads": threads}
    if family == "mobilenet":
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
        if v is not None and v > limits[n] + 0.5
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
