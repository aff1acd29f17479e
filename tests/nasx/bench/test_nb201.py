"""NB201 benchmark: rank correlations equal scipy's, seeded simulated search, the table loader, and
on the real table (skipped without it) aging evolution beating random search."""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.stats

from nasx.bench.nb201 import (
    QUERIES,
    REA_POPULATION_SIZE,
    REA_SAMPLE_SIZE,
    correlations,
    cost_scores,
    enumerate_archs,
    sample_archs,
    simulate_search,
)
from nasx.bench.nb201_table import Nb201Lookup, Nb201Table, load_table
from nasx.bench.score_log import ProxyScoreLog, ScoreLogError
from nasx.errors import DatasetError, NasxError
from nasx.space import AbstractSearchSpace, Arch, Choice
from nasx.stats import kendall_tau_b, spearman
from search_spaces import nb201
from solvers.evolution import AgingEvolution
from solvers.random import RandomSearch

SPACE = nb201.space("cifar10")
WEIGHTS = np.random.default_rng(7).normal(size=(6, 5))


def _synthetic(arch: Arch) -> tuple[float, float]:
    """(told, reported): an additive function of the encoding, and a perturbed copy of it, so
    the best-by-told cell is not always the best-by-reported one."""
    told = float(WEIGHTS[np.arange(6), SPACE.encode(arch)].sum())
    wobble = int(arch.fingerprint[:4], 16) / 0xFFFF - 0.5
    return told, 10 * told + wobble


def _scipy_inputs(x: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(x), -np.inf, x)  # the documented rule: a failed score ranks lowest


# --- correlations -----------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(12))
def test_correlations_equal_scipy_with_ties_and_failures(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    x = rng.integers(0, int(rng.integers(2, 30)), n).astype(np.float64)  # many ties
    y = np.round(rng.normal(size=n) + 0.2 * x, int(rng.integers(0, 3)))  # ties too
    if seed % 2:
        x[rng.random(n) < 0.15] = np.nan
        x[rng.random(n) < 0.05] = -np.inf
        x[rng.random(n) < 0.05] = np.inf
    result = correlations({"p": x}, y)["p"]
    rho = scipy.stats.spearmanr(_scipy_inputs(x), y).statistic
    tau = scipy.stats.kendalltau(_scipy_inputs(x), y).statistic  # tau-b
    np.testing.assert_allclose(result.spearman, rho, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(result.kendall, tau, rtol=1e-12, atol=1e-12)
    assert result.n == n and result.failed == int((~np.isfinite(x)).sum())


def test_correlations_on_large_continuous_data_match_scipy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=15_625)
    y = x + rng.normal(size=x.size)
    np.testing.assert_allclose(kendall_tau_b(x, y), scipy.stats.kendalltau(x, y).statistic, rtol=1e-12)
    np.testing.assert_allclose(spearman(x, y), scipy.stats.spearmanr(x, y).statistic, rtol=1e-12)


def test_failed_scores_rank_lowest_and_constant_scores_give_nan():
    acc = np.array([1.0, 2.0, 3.0, 4.0])
    perfect = correlations({"p": np.array([np.nan, 0.0, 1.0, 2.0])}, acc)["p"]
    assert perfect.spearman == pytest.approx(1.0) and perfect.kendall == pytest.approx(1.0)
    assert perfect.failed == 1
    flat = correlations({"p": np.full(4, np.nan)}, acc)["p"]
    assert math.isnan(flat.spearman) and math.isnan(flat.kendall) and flat.failed == 4


def test_correlations_reject_mismatched_lengths_and_bad_accuracies():
    with pytest.raises(ValueError, match='proxy "p": 3 scores for 4 accuracies'):
        correlations({"p": np.zeros(3)}, np.arange(4.0))
    with pytest.raises(ValueError, match="not finite"):
        correlations({"p": np.zeros(2)}, np.array([1.0, np.nan]))


# --- samples ----------------------------------------------------------------------------------
def test_sample_archs_is_distinct_deterministic_and_all_covers_the_space():
    a = sample_archs(SPACE, 1000, seed=3)
    assert len(a) == len(set(a)) == 1000
    assert a == sample_archs(SPACE, 1000, seed=3)
    assert a != sample_archs(SPACE, 1000, seed=4)
    assert sample_archs(SPACE, 1500, seed=3)[:1000] == a  # a larger sample extends a smaller one
    every = sample_archs(SPACE, 0, seed=0, all_archs=True)
    assert len(set(every)) == len(every) == SPACE.size() == 15_625
    assert set(a) <= set(every)
    assert sample_archs(SPACE, 20_000, seed=0) == every  # more than the space: all of it


@dataclass(frozen=True)
class _Toy(AbstractSearchSpace):
    """1 or 2 blocks; block 2's kernel exists only at depth 2, and the two kernels commute."""

    name: str = "toy"
    variant: str = "toy"
    resolution: int = 8
    choices = (Choice("depth", (1, 2)), Choice("b1.k", (3, 5)), Choice("b2.k", (3, 5)))

    def options(self, choice: Choice, arch):
        return () if choice.name == "b2.k" and arch["depth"] == 1 else choice.options

    def canonical(self, arch: Arch) -> Arch:
        if arch["depth"] == 1:
            return arch
        k1, k2 = sorted((arch["b1.k"], arch["b2.k"]))
        return arch.replace({"b1.k": k1, "b2.k": k2})

    def size(self) -> int:
        return 2 + 3

    def costs(self, arch, resolution=None):
        raise NotImplementedError


def test_enumerate_archs_walks_conditional_choices_and_refuses_huge_spaces():
    every = enumerate_archs(_Toy())
    assert len(every) == len(set(every)) == 5
    assert Arch({"depth": 1, "b1.k": 5}) in every and Arch({"depth": 2, "b1.k": 3, "b2.k": 5}) in every
    assert sample_archs(_Toy(), 3, seed=1) == sample_archs(_Toy(), 3, seed=1)
    with pytest.raises(ValueError, match="too many to enumerate"):
        enumerate_archs(SPACE, limit=15_624)


def test_cost_scores_are_nasx_analytic_costs():
    archs = sample_archs(SPACE, 5, seed=0)
    scores = cost_scores(SPACE, archs)
    assert scores["params"].tolist() == [SPACE.costs(a).params for a in archs]
    assert scores["macs"].tolist() == [SPACE.costs(a).macs for a in archs]


# --- simulated search -------------------------------------------------------------------------
def test_simulated_search_is_deterministic_per_seed():
    strategy = AgingEvolution(SPACE, population_size=REA_POPULATION_SIZE, sample_size=REA_SAMPLE_SIZE)
    first = simulate_search(strategy, _synthetic, queries=(10, 40), seeds=(0, 1, 2))
    again = simulate_search(strategy, _synthetic, queries=(40, 10), seeds=(0, 1, 2))
    np.testing.assert_array_equal(first.best_test, again.best_test)
    assert first.queries == (10, 40) and first.strategy == "AgingEvolution"
    assert len(set(first.best_test[:, 1].tolist())) > 1  # seeds differ
    assert np.all(np.diff(first.best_told, axis=1) >= 0)  # best so far never gets worse


@pytest.mark.parametrize("batch", [1, 7])
def test_reported_accuracy_is_that_of_the_best_by_told_accuracy(batch: int):
    strategy = RandomSearch(SPACE)
    curve = simulate_search(strategy, _synthetic, queries=(5, 30), seeds=(4,), batch=batch)
    state, asked = strategy.init(4), []
    while len(asked) < 30:
        archs, state = strategy.ask(state, min(batch, 30 - len(asked)))
        state = strategy.tell(state, archs, [_synthetic(a)[0] for a in archs])
        asked += archs
    for k, q in enumerate((5, 30)):
        best = max(asked[:q], key=lambda a: _synthetic(a)[0])
        assert curve.best_test[0, k] == _synthetic(best)[1]
        assert curve.best_told[0, k] == _synthetic(best)[0]


def test_simulate_search_rejects_bad_budgets():
    with pytest.raises(ValueError, match="queries"):
        simulate_search(RandomSearch(SPACE), _synthetic, queries=(0,))
    with pytest.raises(ValueError, match="batch"):
        simulate_search(RandomSearch(SPACE), _synthetic, batch=0)


# --- the table loader -------------------------------------------------------------------------
ROWS = [
    "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
]


def _write(path, header: str, rows: list[str]):
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_missing_table_path_is_a_typed_error_naming_it(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(
        DatasetError, match=re.escape(f'"{missing}" does not exist; expected a CSV file or a folder')
    ) as e:
        load_table(missing)
    assert isinstance(e.value, NasxError)
    with pytest.raises(DatasetError, match=r"has no nb201\.csv"):
        load_table(tmp_path)


def test_malformed_tables_name_the_path_and_what_is_expected(tmp_path):
    no_col = _write(tmp_path / "a.csv", "arch_str,cifar100_test_acc", [f"{ROWS[0]},70.1"])
    with pytest.raises(
        DatasetError, match=r'a\.csv" lacks column\(s\) cifar10_test_acc \(needed for cifar10\)'
    ):
        load_table(no_col)
    bad = _write(tmp_path / "b.csv", "arch_str,cifar10_test_acc", [f"{ROWS[0]},", f"{ROWS[1]},10"])
    with pytest.raises(DatasetError, match='column cifar10_test_acc, data row 1: "" is not an accuracy'):
        load_table(bad)
    twice = _write(tmp_path / "c.csv", "arch_str,cifar10_test_acc", [f"{ROWS[0]},1", f"{ROWS[0]},2"])
    with pytest.raises(DatasetError, match="appears more than once"):
        load_table(twice)
    with pytest.raises(DatasetError, match='dataset "svhn" is unknown'):
        load_table(twice, "svhn")


def test_a_small_csv_loads_and_looks_up_by_string_and_arch(tmp_path):
    path = _write(
        tmp_path / "t.csv",
        "nb201_index,arch_str,cifar10_test_acc,bw_cifar10valid_valid_acc",
        [f"0,{ROWS[0]},93.5,90.1", f"1,{ROWS[1]},10.0,9.9"],
    )
    table = load_table(path)
    assert table.row(ROWS[1]) == 1 and table.search_column == "bw_cifar10valid_valid_acc"
    lookup = table.lookup(functools.partial(nb201.from_string, space_=SPACE))
    assert lookup(nb201.from_string(ROWS[0])) == (90.1, 93.5)
    absent = nb201.from_string(ROWS[0].replace("none~2", "skip_connect~2"))
    with pytest.raises(DatasetError, match="has no row for architecture"):
        lookup(absent)
    with pytest.raises(DatasetError, match="no row for arch string"):
        table.row("|x~0|")
    c100 = load_table(_write(tmp_path / "u.csv", "arch_str,cifar100_test_acc", [f"{ROWS[0]},70"]), "cifar100")
    assert c100.valid_acc is None and c100.search_column == "cifar100_test_acc"  # told the test acc


# --- the real NAS-Bench-201 table (skipped without it) ----------------------------------------
@pytest.fixture(scope="module")
def cifar10(nb201_csv) -> tuple[Nb201Table, Nb201Lookup]:
    table = load_table(nb201_csv.parent, "cifar10")
    return table, table.lookup(functools.partial(nb201.from_string, space_=SPACE))


def test_real_table_matches_its_readme_anchors(cifar10):
    table, lookup = cifar10
    assert len(table) == 15_625 and len(lookup.rows) == 15_625
    assert table.test_acc.max() == pytest.approx(94.373, abs=1e-3)
    assert table.valid_acc is not None and table.valid_acc.max() == pytest.approx(91.607, abs=1e-3)
    best = nb201.PRESETS["nb201-9930"].arch
    assert lookup.row(best) == 9930 and lookup(best)[1] == pytest.approx(94.363, abs=1e-3)


def test_params_rank_nb201_cells_as_published(cifar10):
    """#params, the naive baseline zero-cost proxies are measured against (Abdelfattah et al. 2021;
    Li et al., ZiCo, ICLR 2023), ranks NB201 cells well: Spearman 0.75 over all 15,625 cells,
    0.76 on this sample. The band only catches a broken lookup, ranking or cost model."""
    _, lookup = cifar10
    archs = sample_archs(SPACE, 1000, seed=0)
    result = correlations(cost_scores(SPACE, archs), lookup.test_acc(archs))["params"]
    assert 0.7 < result.spearman < 0.8 and 0.5 < result.kendall < 0.65


def test_aging_evolution_beats_random_search_on_nb201(cifar10):
    """The acceptance criterion: mean best test accuracy after 300 queries, 20 seeds, searching
    on the cifar10-valid validation accuracy (NB201 protocol)."""
    _, lookup = cifar10
    rea = AgingEvolution(SPACE, population_size=REA_POPULATION_SIZE, sample_size=REA_SAMPLE_SIZE)
    curves = {
        name: simulate_search(strategy, lookup, QUERIES, range(20))
        for name, strategy in {"random": RandomSearch(SPACE), "rea": rea}.items()
    }
    assert curves["rea"].mean[-1] > curves["random"].mean[-1]
    assert np.all(curves["rea"].best_test <= 94.3734)  # nothing beats the benchmark's optimum


def test_score_log_keeps_scores_per_setting_and_never_cuts_off_good_lines(tmp_path) -> None:
    path = tmp_path / "proxy_scores.jsonl"
    log = ProxyScoreLog(path, {"snip": {"images": 64}, "zen": {"images": 64}})
    log.add(["a", "b"], [{"snip": 1.5, "zen": 2.0}, {"snip": float("nan"), "zen": 3.0}])
    again = ProxyScoreLog(path, {"snip": {"images": 64}, "zen": {"images": 32}})  # zen's setting differs
    np.testing.assert_array_equal(again.get(["a", "b"], "snip"), [1.5, np.nan])
    assert again.missing(["a", "b"], "zen") == ["a", "b"] and again.missing(["a", "b"], "snip") == []
    text = path.read_text()
    path.write_text("not json\n" + text)  # damage before the end is not a kill mid-write: refused
    with pytest.raises(ScoreLogError, match="line 1"):
        ProxyScoreLog(path, {"snip": {"images": 64}})
    assert path.read_text() == "not json\n" + text
