"""Tests of the DeepMAD MILP: brute-force optimality, local optimality, exact costs, budgets, errors."""

from __future__ import annotations

import dataclasses
import itertools
import subprocess
import sys
import warnings

import numpy as np
import pytest

from nasx import errors
from nasx.budget import Budget, parse_budget
from nasx.errors import BudgetCostError, InfeasibleBudgetError, InvalidArchError, NasxError
from nasx.space import Arch
from search_spaces import mobilenet, nb201, resnet
from search_spaces.resnet.spec import PRESETS, SKELETONS, ResNetSpace
from solvers import mp
from solvers.mp import deepmad_score, effectiveness, formulas, solve

# A DeepMAD skeleton shrunk for brute force: 3 stages at 32 px, a few options per choice.
TINY = ResNetSpace(
    dataclasses.replace(
        SKELETONS["imagenet"],
        name="tiny",
        resolution=32,
        num_classes=10,
        strides=(2, 1, 2),
        stem_widths=(8, 16),
        widths=(16, 32, 48),
        btns=(8, 16, 32, 48),
        kernels=(3, 5),
        depths=(1, 3),
        first_depth_max=1,
    ),
    bits=(32,),
)
# torchvision's basic-block skeleton shrunk: stem 7x7 s2 + max pool, stage 1 at stride 1, so the
# first DeepMAD stage holds the stem and stage 1.
TINY_BASIC = ResNetSpace(
    dataclasses.replace(
        SKELETONS["torchvision-basic"],
        name="tiny-basic",
        resolution=32,
        num_classes=10,
        strides=(1, 2, 2),
        stem_widths=(8, 16),
        widths=(16, 24, 32),
        kernels=(3, 5),
        depths=(1, 2, 3),
    ),
    bits=(32,),
)
# Finer grids, for coarse-to-fine: one kernel and two depths keep a neighbourhood enumerable.
FINE = ResNetSpace(
    dataclasses.replace(
        SKELETONS["imagenet"],
        name="fine",
        resolution=32,
        num_classes=10,
        strides=(2, 1, 2),
        stem_widths=(8, 16, 24),
        widths=tuple(range(16, 65, 8)),
        btns=tuple(range(8, 65, 8)),
        kernels=(3,),
        depths=(1, 2),
        first_depth_max=None,
    ),
    bits=(32,),
)


def _all_archs(space_):
    """Every architecture of `space_`, by walking its choices with their allowed options."""
    out = []

    def walk(i, values):
        if i == len(space_.choices):
            out.append(Arch(values))
            return
        choice = space_.choices[i]
        allowed = space_.options(choice, values)
        if not allowed:
            walk(i + 1, values)
        for v in allowed:
            walk(i + 1, {**values, choice.name: v})

    walk(0, {})
    return out


def _monotone(arch, n):
    widths = [arch["stem.width"]] + [arch[f"s{i}.width"] for i in range(1, n + 1)]
    return widths == sorted(widths)


def _score_and_rho(space_, arch):
    # `deepmad_score` and `effectiveness` without validating `arch` twice more (3x the time);
    # test_score_helpers_agree checks that this is what they compute.
    stages = formulas._stages(formulas._blocks(space_, arch, None))
    weights = formulas._weights(len(stages), None)
    score = sum(b * (np.log(c) + 2 * np.log(r)) * e for b, (c, r, e, _) in zip(weights, stages, strict=True))
    return float(score), max(float(np.exp(np.log(d) - 2 * e / d)) for _, _, e, d in stages)


def _table(space_, monotone=True):
    """(arch, costs, score, rho) of every arch of `space_` (with DeepMAD's non-decreasing widths)."""
    n = space_.num_stages
    return [
        (arch, space_.costs(arch), *_score_and_rho(space_, arch))
        for arch in _all_archs(space_)
        if not monotone or _monotone(arch, n)
    ]


@pytest.fixture(scope="module")
def tiny_table():
    rows = _table(TINY)
    assert len(rows) == 18240  # guards the enumeration itself
    return rows


def test_score_helpers_agree(tiny_table):
    for arch, _, score, rho in tiny_table[::997]:
        assert deepmad_score(TINY, arch) == pytest.approx(score, rel=1e-12)
        assert effectiveness(TINY, arch) == pytest.approx(rho, rel=1e-12)


def test_deepmad_score_reproduces_the_reference_values():
    # shared/reference/deepmad_formulas.md section 7 (score before penalty, max rho).
    for name, score, rho in (
        ("deepmad-r18", 32120.20, 0.29910),
        ("deepmad-r34", 43142.67, 0.29999),
        ("deepmad-r50", 48919.28, 0.29975),
    ):
        preset = PRESETS[name]
        assert deepmad_score(preset.space, preset.arch) == pytest.approx(score, abs=0.01)
        assert effectiveness(preset.space, preset.arch) == pytest.approx(rho, abs=1e-5)


def _check_against_brute_force(space_, table, budget, rho_max, monotone=True):
    b = parse_budget(budget)
    best = max(s for a, c, s, r in table if b.admits(c) and r <= rho_max)
    result = solve(space_, b, rho_max=rho_max, time_limit_s=30, monotone_widths=monotone)
    assert result.optimal and result.gap == 0.0 and result.status == "optimal" and result.method == "full"
    assert result.score == pytest.approx(best, rel=1e-9)
    assert b.admits(result.costs) and effectiveness(space_, result.arch) <= rho_max
    # The program's costs are the space's own (up to the solver's 1e-6 feasibility tolerance).
    for name in ("macs", "params", "weight_bytes", "layers"):
        assert result.predicted[name] == pytest.approx(getattr(result.costs, name), rel=1e-6, abs=1e-3)
    assert result.predicted["score"] == pytest.approx(result.score, rel=1e-6)


@pytest.mark.parametrize(
    "budget, rho_max",
    [
        ("3M-flops", 0.3),
        ("6M-flops,40K-params", 0.3),
        ("20M-flops,60K-params,20-layers", 0.5),
        ("1G-flops", 2.0),
    ],
)
def test_optimum_equals_brute_force(tiny_table, budget, rho_max):
    _check_against_brute_force(TINY, tiny_table, budget, rho_max)


@pytest.fixture(scope="module")
def basic_table():
    return _table(TINY_BASIC, monotone=False)


@pytest.mark.parametrize("budget, rho_max", [("4M-flops", 0.5), ("8M-flops,30K-params", 1.0)])
@pytest.mark.parametrize("monotone", [True, False])
def test_optimum_equals_brute_force_on_basic_blocks(basic_table, budget, rho_max, monotone):
    table = [row for row in basic_table if not monotone or _monotone(row[0], 3)]
    # 2 stems x (10 non-decreasing width triples, or 18 the space allows) x (2 kernels x 3 depths)^3
    assert len(table) == (4320 if monotone else 2 * 18 * 216)
    _check_against_brute_force(TINY_BASIC, table, budget, rho_max, monotone)


def _one_step(space_, arch):
    """Every monotone-width arch whose stem, widths and btns are each within one grid step of
    `arch`'s (any kernel and depth): the neighbourhood a local optimum beats."""

    def adjacent(grid, v):
        i = grid.index(v)
        return grid[max(0, i - 1) : i + 2]

    sk, n = space_.skeleton, space_.num_stages
    per_stage = [
        [
            {f"s{i}.width": w, f"s{i}.btn": b, f"s{i}.kernel": k, f"s{i}.depth": d}
            for w in adjacent(sk.widths, arch[f"s{i}.width"])
            for b in adjacent(sk.btns, arch[f"s{i}.btn"])
            for k in sk.kernels
            for d in sk.depths
        ]
        for i in range(1, n + 1)
    ]
    for stem in adjacent(sk.stem_widths, arch["stem.width"]):
        for stages in itertools.product(*per_stage):
            values = {"stem.width": stem}
            for s in stages:
                values |= s
            try:
                candidate = space_.validate(values)
            except InvalidArchError:
                continue
            if _monotone(candidate, n):
                yield candidate


def test_coarse_to_fine_reaches_a_local_optimum():
    budget = parse_budget("5M-flops,50K-params")
    result = solve(FINE, budget, rho_max=0.5, method="coarse-to-fine", time_limit_s=30)
    assert result.method == "coarse-to-fine" and result.status == "local optimum"
    assert not result.optimal and result.gap is None and result.programs >= 2
    assert budget.admits(result.costs) and effectiveness(FINE, result.arch) <= 0.5
    assert result.score == pytest.approx(deepmad_score(FINE, result.arch), rel=1e-12)
    scores = [s for _, s in result.history]
    assert scores == sorted(scores) and scores[-1] == result.score
    # The local-optimum claim, by brute force over the one-step neighbourhood.
    n_checked = 0
    for arch in _one_step(FINE, result.arch):
        costs = FINE.costs(arch)
        if budget.admits(costs):
            score, rho = _score_and_rho(FINE, arch)
            assert rho > 0.5 or score <= result.score * (1 + 1e-9), arch
            n_checked += 1
    assert n_checked > 100
    # The whole grid is small enough to solve exactly: the global optimum is at least as good.
    exact = solve(FINE, budget, rho_max=0.5, method="full", time_limit_s=30)
    assert exact.optimal and exact.score >= result.score - 1e-6


def test_r50_setting_beats_the_released_structure():
    # The acceptance setting of DeepMAD-R50 on the full imagenet grid (coarse-to-fine); the score
    # of the released DeepMAD-R50 is 48919.28 (test_deepmad_score_reproduces_the_reference_values).
    preset = PRESETS["deepmad-r50"]
    budget = parse_budget("4.13G-flops,25.55M-params")
    # 60 s: the acceptance limit (a shorter one fails when the machine is busy)
    result = solve(preset.space, budget, rho_max=0.3, time_limit_s=60)
    assert result.method == "coarse-to-fine" and result.status in ("local optimum", "time limit")
    assert budget.admits(result.costs) and effectiveness(preset.space, result.arch) <= 0.3
    assert result.costs == preset.space.costs(result.arch, 224)
    assert result.score >= deepmad_score(preset.space, preset.arch)


def test_infeasible_budget_names_the_constraint(tiny_table):
    least_macs = min(c.macs for _, c, _, _ in tiny_table)
    with pytest.raises(InfeasibleBudgetError, match=r"flops: least attainable .* > limit"):
        solve(TINY, Budget(macs=least_macs - 1), time_limit_s=30)
    with pytest.raises(InfeasibleBudgetError, match="effectiveness bound is binding"):
        solve(TINY, parse_budget("1G-flops"), rho_max=0.01, time_limit_s=30)
    least_params = min(c.params for _, c, _, r in tiny_table if r <= 0.3)
    with pytest.raises(InfeasibleBudgetError, match=r"params: least attainable with rho <= 0.3 is"):
        solve(TINY, Budget(params=least_params - 1), rho_max=0.3, time_limit_s=30)


def test_infeasible_budget_on_a_coarse_to_fine_solve():
    # The coarse grid holds the smallest option of every choice, so the least cost is exact.
    smallest = FINE.validate(
        {"stem.width": 8}
        | {
            f"s{i}.{k}": v
            for i in (1, 2, 3)
            for k, v in (("width", 16), ("btn", 8), ("kernel", 3), ("depth", 1))
        }
    )
    least = FINE.costs(smallest).macs
    with pytest.raises(InfeasibleBudgetError, match=r"flops: least attainable .* > limit"):
        solve(FINE, Budget(macs=least - 1), method="coarse-to-fine", time_limit_s=30)


def test_unmodelled_cost_raises():
    with pytest.raises(BudgetCostError, match="cannot model latency"):
        solve(TINY, parse_budget("1G-flops,5ms-latency"))


def test_unsupported_space_raises():
    assert mp.UnsupportedSpaceError is errors.UnsupportedSpaceError
    assert mp.SolverTimeLimitError is errors.SolverTimeLimitError
    assert issubclass(errors.UnsupportedSpaceError, NasxError)
    assert issubclass(errors.SolverTimeLimitError, NasxError)
    s = nb201.space()
    with pytest.raises(errors.UnsupportedSpaceError, match="not supported"):
        solve(s, parse_budget("1G-flops"))
    with pytest.raises(errors.UnsupportedSpaceError, match="not supported"):
        deepmad_score(s, s.sample(np.random.default_rng(0)))


def test_mobilenet_solve_respects_the_budget():
    s = mobilenet.space(bits=(32,))
    budget = parse_budget("400M-flops,6M-params")
    result = solve(s, budget, rho_max=0.5, time_limit_s=30)
    assert budget.admits(result.costs) and effectiveness(s, result.arch) <= 0.5
    assert result.costs == s.costs(result.arch, 224)
    for name in ("macs", "params", "layers"):
        assert result.predicted[name] == pytest.approx(getattr(result.costs, name), rel=1e-6)
    assert result.predicted["score"] == pytest.approx(result.score, rel=1e-6)
    # A tighter budget can only lower the optimum.
    tighter = solve(s, parse_budget("300M-flops,6M-params"), rho_max=0.5, time_limit_s=30)
    assert tighter.costs.macs <= 300e6 and tighter.score <= result.score + 1e-6


def test_quantized_size_budget_uses_the_smallest_bits():
    result = solve(TINY.__class__(TINY.skeleton, bits=(8, 32)), parse_budget("6M-flops,50KB-size"))
    assert result.arch["s1.bits"] == 8 and result.costs.weight_bytes <= 50_000
    assert result.predicted["weight_bytes"] == pytest.approx(result.costs.weight_bytes, rel=1e-6)


def test_solve_raises_no_pulp_deprecation_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        solve(TINY, parse_budget("3M-flops"), time_limit_s=30)


_FIELDS = ("macs", "params", "weight_bytes", "layers")


@pytest.mark.parametrize("variant", sorted(SKELETONS))
def test_resnet_pieces_add_up_to_the_costs(variant):
    # What the program is built from: stem + per stage (first + (depth - 1) inner) + head.
    s, rng = resnet.space(variant, bits=(32,)), np.random.default_rng(0)
    for _ in range(50):
        arch, res = s.sample(rng), int(rng.choice([160, 224]))
        total, c_in = s.stem_costs(arch["stem.width"], resolution=res), arch["stem.width"]
        for i in range(1, s.num_stages + 1):
            w = arch[f"s{i}.width"]
            first, inner = s.stage_terms(
                i, c_in, w, arch.get(f"s{i}.btn", 0), arch[f"s{i}.kernel"], resolution=res
            )
            total, c_in = total + first + (arch[f"s{i}.depth"] - 1) * inner, w
        total += s.head_costs(c_in, resolution=res)
        costs = s.costs(arch, res)
        assert [getattr(total, f) for f in _FIELDS] == [getattr(costs, f) for f in _FIELDS]


@pytest.mark.parametrize("variant", sorted(mobilenet.SKELETONS))
def test_mobilenet_pieces_add_up_to_the_costs(variant):
    s, rng = mobilenet.space(variant, bits=(32,), width_mult=0.5), np.random.default_rng(0)
    for _ in range(50):
        arch = s.sample(rng)
        res = None if s.skeleton.fixed_resolution else arch["resolution"]
        total = s.fixed_costs(resolution=res)
        for st in range(1, len(s.scaled.stages) + 1):
            for j in range(1, arch[f"s{st}.depth"] + 1):
                options = (arch[f"s{st}.b{j}.kernel"], arch[f"s{st}.b{j}.expand"], arch[f"s{st}.se"])
                total += s.block_costs(st, j, *options, resolution=res)
        costs = s.costs(arch)
        assert [getattr(total, f) for f in _FIELDS] == [getattr(costs, f) for f in _FIELDS]


def test_solvers_import_neither_search_spaces_nor_jax():
    code = (
        "import sys, solvers.mp; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('search_spaces', 'jax')); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
