"""`nasx sweep` checks every (budget, seed) trial before Ray starts one: a bad space, strategy,
evaluator, objective or budget is one error naming the cell, with no Ray instance started and no
folder written; a good sweep then runs on a real local Ray and keeps Tune's records in its folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from nasx.errors import (  # noqa: E402
    InfeasibleBudgetError,
    UnknownEvaluatorError,
    UnknownObjectiveError,
    UnknownSpaceError,
    UnsupportedSpaceError,
)
from nasx.jobs.search import SearchRequest  # noqa: E402
from nasx.jobs.strategies import UnknownStrategyError  # noqa: E402
from nasx.jobs.sweep import SweepCellError, SweepRequest, SweepRequestError, check_sweep, sweep  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _request(tmp_path: Path, budgets=("100M-flops",), seeds=(0,), **search) -> SweepRequest:
    base = {"space": "nb201", "budget": budgets[0], "evaluations": 4, "batch_size": 2, **search}
    return SweepRequest(SearchRequest(**base), tuple(budgets), tuple(seeds), out=tmp_path / "sweep")


BAD_CELLS = [
    ({"space": "nb202"}, ("100M-flops",), UnknownSpaceError, "nb202"),
    ({"strategy": "annealing"}, ("100M-flops",), UnknownStrategyError, "annealing"),
    ({"evaluator": "synflw"}, ("100M-flops",), UnknownEvaluatorError, "synflw"),
    ({"evaluator": "train:0"}, ("100M-flops",), UnknownEvaluatorError, "train:0"),
    ({"evaluator": "entropy"}, ("100M-flops",), UnknownEvaluatorError, "entropy"),
    ({"evaluator": "supernet:/nonexistent/ckpt"}, ("100M-flops",), Exception, "/nonexistent/ckpt"),
    ({"objectives": ("flops_per_joule",)}, ("100M-flops",), UnknownObjectiveError, "flops_per_joule"),
    ({"strategy": "mp"}, ("100M-flops",), UnsupportedSpaceError, "mp"),
    ({}, ("100M-flops", "1K-flops"), InfeasibleBudgetError, "1K-flops"),
]


@pytest.mark.parametrize(("search", "budgets", "cause", "culprit"), BAD_CELLS)
def test_a_bad_cell_fails_before_ray_starts_and_names_the_cell(
    tmp_path: Path, search: dict, budgets: tuple, cause: type, culprit: str
) -> None:
    if ray.is_initialized():
        ray.shutdown()
    with pytest.raises(SweepCellError) as raised:
        sweep(_request(tmp_path, budgets, (0, 3), **search))
    message = str(raised.value)
    bad_budget = "1K-flops" if "1K-flops" in budgets else budgets[0]
    assert f'budget "{bad_budget}", seed 0' in message and culprit in message
    assert len(message.splitlines()) == 1
    assert isinstance(raised.value.__cause__, cause)
    assert not ray.is_initialized()  # no Ray instance, no trial
    assert not (tmp_path / "sweep").exists()  # nothing written


@pytest.mark.parametrize(
    ("budgets", "seeds", "message"),
    [
        ((), (0,), "at least one budget"),
        (("100M-flops",), (), "at least one seed"),
        (("100M-flops", "200M-flops", "100M-flops"), (0,), "budget 100M-flops given twice"),
        (("100M-flops",), (1, 1), "seed 1 given twice"),
    ],
)
def test_a_malformed_grid_is_refused(tmp_path: Path, budgets: tuple, seeds: tuple, message: str) -> None:
    request = SweepRequest(SearchRequest("nb201", "100M-flops"), budgets, seeds, out=tmp_path / "sweep")
    with pytest.raises(SweepRequestError, match=message):
        check_sweep(request)


def test_the_cli_prints_the_bad_cell_on_one_line(cli, tmp_path: Path) -> None:
    if ray.is_initialized():
        ray.shutdown()
    argv = ["sweep", "--space", "nb201", "--budgets", "100M-flops,1K-flops", "--seeds", "0,1"]
    code, _, err = cli(*argv, "--evaluations", "4", "--out", str(tmp_path / "sweep"))
    assert code == 2 and err.startswith("nasx: error:") and len(err.splitlines()) == 1, err
    assert 'budget "1K-flops", seed 0' in err and "Traceback" not in err
    assert not ray.is_initialized() and not (tmp_path / "sweep").exists()


def test_a_folder_of_something_else_is_refused_before_ray_starts(tmp_path: Path) -> None:
    if ray.is_initialized():
        ray.shutdown()
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "thesis.tex").write_text("\\documentclass{article}\n")
    with pytest.raises(Exception, match="holds no nasx sweep"):
        sweep(_request(tmp_path))
    assert not ray.is_initialized()
    assert [p.name for p in (tmp_path / "sweep").iterdir()] == ["thesis.tex"]


def test_a_good_sweep_runs_on_ray_and_keeps_tunes_records_in_its_folder(tmp_path: Path) -> None:
    if ray.is_initialized():
        ray.shutdown()
    ray_results = Path.home() / "ray_results"
    before = sorted(ray_results.rglob("*")) if ray_results.exists() else None
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}},
    )
    try:
        request = _request(tmp_path, ("150M-flops", "300M-flops"), (0,), space="resnet", evaluator="params")
        plans = check_sweep(request)
        assert [(str(p.budget), p.request.seed) for p in plans] == [("150M-flops", 0), ("300M-flops", 0)]
        done = sweep(request)
    finally:
        ray.shutdown()
    assert done.ok, done.rows
    assert [(r["budget"], r["seed"]) for r in done.rows] == [("150M-flops", 0), ("300M-flops", 0)]
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text()) == done.rows
    assert (tmp_path / "sweep" / "ray" / "tune").is_dir()
    assert (sorted(ray_results.rglob("*")) if ray_results.exists() else None) == before
