"""Ray Tune on a real local Ray instance (2 CPUs): the same search as in-process, failures recorded
or retried, a worker killed mid-trial retried without losing the run, the CLI's --ray and sweep."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from nasx import ray_tune  # noqa: E402
from nasx.budget import parse_budget  # noqa: E402
from nasx.cli import main  # noqa: E402
from nasx.costs import Costs  # noqa: E402
from nasx.runlog import RUNLOG_NAME, recover_runlog  # noqa: E402
from nasx.search import SearchRun, search  # noqa: E402
from search_spaces import mobilenet  # noqa: E402
from solvers.evolution import AgingEvolution  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CACHE = Path.home() / ".cache" / "nasx-tests-jax"  # as tests/conftest.py sets for this process
SPACE = mobilenet.space("cifar", bits=(32,))
BUDGET = parse_budget("130M-flops")


def test_an_unreachable_cluster_is_a_clear_error(tmp_path: Path, capsys) -> None:
    """Runs first, before this module starts its local instance."""
    if ray.is_initialized():
        ray.shutdown()
    argv = ["search", "--space", "mobilenet", "--budget", "300M-flops", "--evaluations", "4"]
    code = main([*argv, "--out", str(tmp_path / "r"), "--ray", "auto"])
    assert code == 2
    assert "no Ray cluster" in capsys.readouterr().err


@pytest.fixture(scope="module")
def local_ray():
    if ray.is_initialized():
        ray.shutdown()
    # workers import this test module (the evaluators below) from the repository
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO), "JAX_COMPILATION_CACHE_DIR": str(CACHE)}},
    )
    yield
    ray.shutdown()


def macs_score(archs):
    """A cheap, deterministic evaluator: fewer MACs and more params score higher."""
    out = []
    for a in archs:
        c: Costs = SPACE.costs(a)
        out.append({"score": c.params / 1e6 - c.macs / 1e8})
    return out


def make_macs_score():
    return macs_score


def make_fragile(marker_dir: str, mode: str):
    """An evaluator that fails: ``raise`` on any chunk holding a 4-block stage 1, ``kill`` its own
    worker process (once per worker lifetime marker), ``always-kill`` every time."""

    def evaluate(archs):
        if mode == "raise" and any(a["s1.depth"] == 4 for a in archs):
            raise ValueError("this chunk fails on purpose")
        if mode == "kill":
            marker = Path(marker_dir) / "killed"
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                os._exit(1)  # the worker dies mid-trial, as on a lost node
        if mode == "always-kill":
            os._exit(1)
        return macs_score(archs)

    return evaluate


def _strategy():
    return AgingEvolution(SPACE, budget=BUDGET, population_size=8, sample_size=3)


def _run(tmp: Path, **kw) -> SearchRun:
    defaults = {"evaluations": 24, "batch_size": 8, "seed": 3, "budget": BUDGET, "run_dir": tmp}
    return SearchRun(SPACE, _strategy(), ("score",), **{**defaults, **kw})


def test_ray_search_equals_the_in_process_search(local_ray, tmp_path: Path) -> None:
    with _run(tmp_path / "ray") as run:
        ray_tune.run_search(run, make_macs_score, chunk=3, storage=tmp_path / "ray" / "tune")
        on_ray = run.result()
    here = search(
        SPACE, _strategy(), macs_score, ("score",), evaluations=24, batch_size=8, seed=3, budget=BUDGET
    )
    assert [e.arch.fingerprint for e in on_ray.evaluations] == [e.arch.fingerprint for e in here.evaluations]
    assert [e.objectives for e in on_ray.evaluations] == [e.objectives for e in here.evaluations]
    assert on_ray.best.arch == here.best.arch
    logged = recover_runlog(tmp_path / "ray" / RUNLOG_NAME)
    assert [e.index for e in logged] == list(range(24))  # each once, in order
    assert (tmp_path / "ray" / "tune").is_dir()  # Tune's records in the run folder


def test_a_failing_evaluation_is_recorded_and_the_search_goes_on(local_ray, tmp_path: Path) -> None:
    make = functools.partial(make_fragile, str(tmp_path), "raise")
    with _run(tmp_path / "run") as run:
        ray_tune.run_search(run, make, chunk=2, storage=tmp_path / "run" / "tune")
        result = run.result()
    failed = [e for e in result.evaluations if not e.ok]
    assert len(result.evaluations) == 24
    assert failed and all("fails on purpose" in e.error for e in failed)
    assert any(e.ok for e in result.evaluations)


def test_a_worker_killed_mid_trial_is_retried_and_nothing_is_lost(local_ray, tmp_path: Path) -> None:
    make = functools.partial(make_fragile, str(tmp_path), "kill")
    with _run(tmp_path / "run", evaluations=8) as run:
        ray_tune.run_search(run, make, chunk=4, storage=tmp_path / "run" / "tune", max_failures=2)
        result = run.result()
    assert (tmp_path / "killed").exists()  # a worker did die
    assert len(result.evaluations) == 8 and all(e.ok for e in result.evaluations)


def test_a_trial_that_keeps_failing_is_recorded_as_failed(local_ray, tmp_path: Path) -> None:
    make = functools.partial(make_fragile, str(tmp_path), "always-kill")
    with _run(tmp_path / "run", evaluations=4, batch_size=4) as run:
        ray_tune.run_search(run, make, chunk=4, storage=tmp_path / "run" / "tune", max_failures=1)
        result = run.result()
    assert len(result.evaluations) == 4
    assert all(e.status == "failed" and "Ray trial" in e.error for e in result.evaluations)


def _cli_json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_search_on_ray_finds_what_the_in_process_search_finds(local_ray, tmp_path: Path, capsys) -> None:
    common = [
        "search",
        "--space",
        "mobilenet",
        "--budget",
        "300M-flops",
        "--evaluations",
        "24",
        "--seed",
        "1",
    ]
    here = _cli_json(capsys, [*common, "--out", str(tmp_path / "here"), "--json"])
    on_ray = _cli_json(capsys, [*common, "--out", str(tmp_path / "ray"), "--ray", "auto", "--json"])
    assert on_ray["best"] == here["best"] and on_ray["score"] == here["score"]
    assert (tmp_path / "ray" / "ray" / "tune").is_dir()
    lines = (tmp_path / "ray" / RUNLOG_NAME).read_text().splitlines()
    assert len(lines) == 24


def test_cli_sweep_runs_one_search_per_budget_and_seed(local_ray, tmp_path: Path, capsys) -> None:
    out = _cli_json(
        capsys,
        [
            "sweep",
            "--space",
            "mobilenet",
            "--budgets",
            "150M-flops,300M-flops",
            "--seeds",
            "0,1",
            "--evaluations",
            "16",
            "--ray",
            "auto",
            "--out",
            str(tmp_path / "sweep"),
            "--json",
        ],
    )
    rows = out["sweep"]
    assert [(r["budget"], r["seed"]) for r in rows] == [
        ("150M-flops", 0),
        ("150M-flops", 1),
        ("300M-flops", 0),
        ("300M-flops", 1),
    ]
    limits = {"150M-flops": 150e6, "300M-flops": 300e6}
    assert all(r["macs"] <= limits[r["budget"]] for r in rows)
    assert np.all([Path(r["run_dir"], "runlog.jsonl").exists() for r in rows])
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text()) == rows


def make_toy_trainer(skeleton):
    """A TrainingEvaluator on the two-stage toy space's `skeleton` (compiles in seconds), synthetic
    8-px data; module-level, so that Ray workers import it by name."""
    from flax import nnx

    from nasx.data import load
    from nasx.evaluators import TrainingEvaluator
    from nasx.supernet import functional
    from search_spaces.mobilenet.spec import MobileNetSpace
    from search_spaces.mobilenet.supernet import MobileNetSupernet

    toy = MobileNetSpace(skeleton, bits=(32,))  # float: compiles faster
    _, params, apply = functional(MobileNetSupernet(toy, rngs=nnx.Rngs(0)))
    return TrainingEvaluator(toy, apply, params, load("synthetic", size=8, seed=0), steps=6, batch_size=16)


def test_training_trials_report_rounds_and_asha_may_stop_them(toy, local_ray, tmp_path: Path) -> None:
    from search_spaces.mobilenet.spec import MobileNetSpace
    from solvers.random import RandomSearch

    toy = MobileNetSpace(toy.skeleton, bits=(32,))
    with SearchRun(toy, RandomSearch(toy), ("acc",), evaluations=4, batch_size=4, run_dir=tmp_path) as run:
        ray_tune.run_search(
            run,
            functools.partial(make_toy_trainer, toy.skeleton),
            chunk=4,
            storage=tmp_path / "tune",
            rounds=2,
        )
        result = run.result()
    assert len(result.evaluations) == 4 and all(e.ok for e in result.evaluations)
    assert all(0.0 <= e.scores["acc"] <= 1.0 and e.scores["steps"] in (3.0, 6.0) for e in result.evaluations)
    # one trial per architecture, each reporting after every round it ran
    progress = sorted((tmp_path / "tune").rglob("progress.csv"))
    assert len(progress) == 4
