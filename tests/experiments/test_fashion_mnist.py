"""experiments/fashion_mnist: the baselines' analytic costs, the study's pure pieces, and the whole
study run with ``--quick`` (digits, tiny schedules): every stage's output, then a rerun that skips
them all, then a rerun after a stage's result is lost that redoes only that stage."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from flax import nnx

HERE = Path(__file__).resolve().parents[2] / "experiments" / "fashion_mnist"


def _load_run():
    spec = importlib.util.spec_from_file_location("fashion_mnist_run", HERE / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)  # puts experiments/fashion_mnist on sys.path
    return module


run_py = _load_run()
import baselines  # noqa: E402
import report  # noqa: E402
import study  # noqa: E402

from nasx.budget import parse_budget  # noqa: E402
from nasx.supernet import count_params  # noqa: E402
from search_spaces import training_space  # noqa: E402

# --- hand-designed baselines: analytic costs are the built modules' ---------------------------------


@pytest.mark.parametrize(
    "shape", [baselines.RESNET20, baselines.ResNetShape(6, 3), baselines.ResNetShape(10, 1)]
)
def test_resnet_params_equal_the_analytic_count(shape: baselines.ResNetShape) -> None:
    model = baselines.CifarResNet(shape, rngs=nnx.Rngs(0))
    assert count_params(model) == baselines.resnet_costs(shape, 28).params


def test_resnet20_is_he_et_al_s() -> None:
    costs = baselines.resnet_costs(baselines.RESNET20, 32)
    # 0.27M parameters (He et al. 2016, Table 6): 269,722 with BN scale and shift; 40.55M MACs at 32 px
    assert costs.params == 269_722
    assert costs.macs == 40_551_040


def test_two_conv_net_is_the_benchmark_tables() -> None:
    model = baselines.TwoConvNet(rngs=nnx.Rngs(0))
    costs = baselines.two_conv_costs(28)
    assert count_params(model) == costs.params == 83_562
    # hardmaru's original: conv biases instead of BN (96 + 2 * 96 fewer): 83,466 parameters
    assert costs.params - 2 * (32 + 64) + (32 + 64) == 83_466


def test_baselines_run_and_keep_the_batch() -> None:
    from nasx.nn.layers import BatchNormContext

    x = np.random.default_rng(0).standard_normal((3, 16, 16, 3)).astype(np.float32)
    for model in (
        baselines.TwoConvNet(image_size=16, rngs=nnx.Rngs(0)),
        baselines.CifarResNet(baselines.ResNetShape(4, 1), rngs=nnx.Rngs(0)),
    ):
        assert model(x, BatchNormContext()).shape == (3, 10)


def test_resnet_for_budget_is_the_widest_that_fits() -> None:
    budget = parse_budget("10M-flops")
    shape = baselines.resnet_for_budget(budget, 28)
    assert shape.blocks == 3
    assert baselines.resnet_costs(shape, 28).macs <= 10_000_000
    assert baselines.resnet_costs(shape._replace(width=shape.width + 1), 28).macs > 10_000_000
    narrowest = baselines.resnet_costs(baselines.ResNetShape(4, 3), 28).macs
    shallower = baselines.resnet_for_budget(parse_budget(f"{narrowest - 1}-flops"), 28)
    assert shallower.blocks < 3
    with pytest.raises(ValueError, match="no CIFAR ResNet"):
        baselines.resnet_for_budget(parse_budget("0.1M-flops"), 28)


# --- the study's pure pieces -----------------------------------------------------------------------


def test_spread_keeps_both_ends_and_spaces_the_rest() -> None:
    assert study.spread([5, 1, 4, 2, 3], 3, float) == [1, 3, 5]
    assert study.spread([2, 1], 6, float) == [1, 2]
    assert study.spread(list(range(10)), 4, float) == [0, 3, 6, 9]


def test_mobilenet_v2_point_is_the_largest_uniform_k3_e6_within_the_budget() -> None:
    space = training_space(run_py.FULL.baseline_space, bits=(32,), num_classes=10, width_mult=None)
    largest = study.mobilenet_v2_point(space, parse_budget("1T-flops"), 28)
    assert largest is not None
    values = largest.to_dict()
    assert {v for k, v in values.items() if k.endswith(".kernel")} == {3}
    assert {v for k, v in values.items() if k.endswith(".expand")} == {6}
    assert not any(v for k, v in values.items() if k.endswith(".se"))
    macs = space.costs(largest, resolution=28).macs
    below = study.mobilenet_v2_point(space, parse_budget(f"{macs - 1}-flops"), 28)
    assert below is None or space.costs(below, resolution=28).macs < macs
    assert study.mobilenet_v2_point(space, parse_budget("1-flops"), 28) is None


def test_sample_within_rejects_what_the_budget_does_not_admit() -> None:
    space = training_space(run_py.FULL.space, bits=(32,), num_classes=10, width_mult=None)
    all_macs = sorted(
        space.costs(space.sample(np.random.default_rng(i)), resolution=28).macs for i in range(50)
    )
    budget = parse_budget(f"{all_macs[25]}-flops")
    archs, rejected = study.sample_within(space, budget, 5, 0, lambda a: space.costs(a, resolution=28))
    assert len({a.fingerprint for a in archs}) == 5
    assert all(space.costs(a, resolution=28).macs <= all_macs[25] for a in archs)
    assert rejected > 0


def test_published_figures_cite_the_readme_rows() -> None:
    if not report.PUBLISHED.is_file():
        pytest.skip(f"{report.PUBLISHED} is not installed")
    rows = {r["classifier"]: r for r in report.published_figures()}
    assert rows["2 Conv <100K parameters"]["test"] == 0.925
    assert set(rows) == set(report.PUBLISHED_ROWS)
    assert all(r["source"].startswith(str(report.PUBLISHED)) for r in rows.values())


# --- the whole study, quick -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("fashion_mnist")
    lines: list[str] = []
    t0 = time.perf_counter()
    ran = run_py.run(run_py.QUICK, out, log=lines.append)
    return out, ran, lines, time.perf_counter() - t0


@pytest.mark.slow
def test_quick_study_writes_every_stage(quick) -> None:
    out, ran, _, _ = quick
    assert list(ran) == list(study.STAGES)
    for stage in study.STAGES:
        assert study.result_file(out, stage).is_file(), stage
    timings = json.loads((out / "timings.json").read_text())
    assert set(timings) == set(study.STAGES)
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "table.md").read_text()
    for name in (
        "found-tiny",
        "found-medium",
        "mbv2-",
        "resnet-",
        "2conv",
        "random-00",
        "sorted/",
        "stitched/",
    ):
        assert name in table, name
    summary = json.loads((out / "summary.json").read_text())
    targets = summary["targets"]
    assert set(targets["found_beats_baselines"]) == {"tiny", "small", "medium"}
    for per_budget in targets["found_beats_baselines"].values():
        assert isinstance(per_budget["met"], bool)
    for key in ("kendall_tau", "best_found_under_100k_params", "best_found_overall"):
        assert isinstance(targets[key]["met"], bool), key
    found = json.loads((out / "found.json").read_text())["rows"]
    budgets = summary["budgets"]
    for row in found:  # each found network fits its budget
        assert parse_budget(budgets[row["budget"]]).limits()["macs"] >= row["macs"]
    assert (out / "work" / ".gitignore").read_text() == "*\n"


@pytest.mark.slow
def test_rerun_skips_every_finished_stage(quick) -> None:
    out, _, _, first = quick
    lines: list[str] = []
    t0 = time.perf_counter()
    ran = run_py.run(run_py.QUICK, out, log=lines.append)
    assert ran == {}
    assert sum("skipped" in line for line in lines) == len(study.STAGES)
    assert time.perf_counter() - t0 < max(20.0, first / 10)


@pytest.mark.slow
def test_a_lost_stage_is_redone_alone_from_its_finished_networks(quick) -> None:
    out, _, _, _ = quick
    before = json.loads((out / "random.json").read_text())
    (out / "random.json").unlink()
    (out / "summary.json").unlink()
    ran = run_py.run(run_py.QUICK, out, log=lambda line: None)
    assert list(ran) == ["random", "report"]
    after = json.loads((out / "random.json").read_text())
    assert [r["test"] for r in after["rows"]] == [
        r["test"] for r in before["rows"]
    ]  # read back, not retrained
