"""Latency tables without measuring: format, prediction, coverage, budgets in sampling, search and MP.

The tables here are synthetic (each entry a function of the layer's MACs), written in the real
format for the current device, so every test runs in milliseconds; `test_profile` measures real ones.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from nasx.budget import parse_budget, sample_admitted
from nasx.costs import Layer
from nasx.errors import UnsupportedSpaceError
from nasx.hardware.latency import (
    LatencyDeviceWarning,
    LatencyTableFormatError,
    LatencyTableMissError,
    attach,
    load_table,
)
from nasx.space import Arch
from search_spaces import mobilenet, nb201
from search_spaces.mobilenet.spec import MobileNetSpace, Skeleton, Stage

TINY = MobileNetSpace(
    Skeleton(
        name="tiny",
        stem_width=8,
        first_width=8,
        stages=(Stage(8, 1, "relu", (1, 2)), Stage(16, 2, "h_swish", (1, 2))),
        head_width=32,
        num_classes=10,
        resolutions=(8, 16),
        default_resolution=16,
        kernels=(3, 5),
        expands=(3, 6),
    ),
    bits=(32,),
)


@pytest.fixture(scope="module")
def device() -> str:
    from nasx.hardware.profile import device_kind

    return device_kind()


@pytest.mark.parametrize(
    "space",
    [
        TINY,
        mobilenet.space("imagenet", bits=(32,)),
        mobilenet.space("cifar", bits=(4, 8, 16, 32), width_mult=0.25),
        mobilenet.space("efficientnet-b0", bits=(8, 32)),
        mobilenet.space("mobilenet-v2"),
    ],
    ids=lambda s: f"{s.variant}-{s.width_mult}",
)
def test_blocks_hold_the_cost_models_layers(space: MobileNetSpace) -> None:
    rng = np.random.default_rng(0)
    distinct = set(space.distinct_blocks(space.resolution))
    for _ in range(100):
        arch = space.sample(rng)
        blocks = space.blocks(arch, space.resolution)
        assert set(blocks) <= distinct
        layers = [layer for block in blocks for layer in block]
        costs = space.costs(arch, space.resolution)
        total = [layer.costs() for layer in layers]
        total = sum(total[1:], total[0])
        assert (total.macs, total.params, total.weight_bytes, total.layers) == (
            costs.macs,
            costs.params,
            costs.weight_bytes,
            costs.layers,
        )


def test_predicted_latency_is_the_sum_of_entries_plus_overhead(synthetic_table) -> None:
    table = synthetic_table(TINY, 16)
    space = attach(TINY, table)
    assert TINY.costs(TINY.sample(np.random.default_rng(0))).latency_ms is None  # no table, no latency
    rng = np.random.default_rng(1)
    for _ in range(20):
        arch = space.sample(rng)
        expected = (
            math.fsum(table.entries[block] for block in TINY.blocks(arch, 16)) + synthetic_table.overhead_ms
        )
        assert space.costs(arch, 16).latency_ms == pytest.approx(expected, rel=1e-12)
        assert space.costs(arch, 16).macs == TINY.costs(arch, 16).macs  # the other costs are unchanged


def test_block_and_fixed_latencies_add_up_to_the_network(synthetic_table) -> None:
    space = attach(TINY, synthetic_table(TINY, 16))
    arch = space.sample(np.random.default_rng(2))
    total = space.fixed_costs(resolution=16).latency_ms
    for s in (1, 2):
        for j in range(1, arch[f"s{s}.depth"] + 1):
            block = space.block_costs(
                s, j, arch[f"s{s}.b{j}.kernel"], arch[f"s{s}.b{j}.expand"], arch[f"s{s}.se"], resolution=16
            )
            total += block.latency_ms
    assert total == pytest.approx(space.costs(arch, 16).latency_ms, rel=1e-12)


def test_table_round_trips_through_its_file(synthetic_table, tmp_path: Path) -> None:
    path = tmp_path / "lut.json"
    table = synthetic_table(TINY, 16, path=str(path)).replace(calibration={"networks": 3})
    table.save()
    assert [p.name for p in tmp_path.iterdir()] == ["lut.json"]  # the temporary file was renamed
    loaded = load_table(path)
    assert dict(loaded.entries) == dict(table.entries)
    assert (loaded.settings, loaded.device, loaded.overhead_ms) == (
        table.settings,
        table.device,
        synthetic_table.overhead_ms,
    )
    assert loaded.calibration == {"networks": 3}


def test_a_table_from_another_device_warns(synthetic_table, tmp_path: Path, device: str) -> None:
    path = tmp_path / "lut.json"
    synthetic_table(TINY, 16, device="TPU v4", path=str(path)).save()
    with pytest.warns(LatencyDeviceWarning, match=re.escape(f'measured on "TPU v4" but runs on "{device}"')):
        load_table(path, device=device)
    synthetic_table(TINY, 16, device=device, path=str(path)).save()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_table(path, device=device)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("{not json", "is not valid JSON"),
        ('{"entries": []}', "is not a nasx latency table"),
        ("format-version", "has version 99"),
        ("no-settings", "malformed header"),
        ("bad-entry", "entry 1, layer 0: field \"kernel\" is '3'; expected a int"),
        ("negative", '"latency_ms" is -1.0; expected a number >= 0'),
    ],
)
def test_missing_or_malformed_tables_are_clear_errors(
    synthetic_table, tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "lut.json"
    good = synthetic_table(TINY, 16).to_json()
    if content == "format-version":
        content = json.dumps({**good, "version": 99})
    elif content == "no-settings":
        content = json.dumps({k: v for k, v in good.items() if k != "settings"})
    elif content == "bad-entry":
        good["entries"][1]["layers"][0]["kernel"] = "3"
        content = json.dumps(good)
    elif content == "negative":
        good["entries"][0]["latency_ms"] = -1.0
        content = json.dumps(good)
    if content is not None:
        path.write_text(content)
    with pytest.raises(LatencyTableFormatError, match="latency table") as info:
        load_table(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_table_must_cover_the_space(synthetic_table) -> None:
    table = synthetic_table(TINY, 16)
    with pytest.raises(
        LatencyTableMissError, match=r"no entry for \d+ of the \d+ blocks of mobilenet:tiny at 8 px"
    ):
        attach(TINY, table, 8)  # measured at 16 px
    wider = dataclasses.replace(TINY, width_mult=2.0)
    with pytest.raises(LatencyTableMissError, match="nasx profile --space mobilenet:tiny --resolution 16"):
        attach(wider, table)
    with pytest.raises(UnsupportedSpaceError, match="latency tables support mobilenet"):
        attach(nb201.space(), table)
    quantized = attach(dataclasses.replace(TINY, bits=(8, 32)), table)  # 32-bit blocks are covered ...
    arch = quantized.sample(np.random.default_rng(0)).replace({"s1.b1.bits": 8})
    with pytest.raises(LatencyTableMissError, match="bits8"):  # ... and an 8-bit one is named when used
        quantized.costs(quantized.validate(arch), 16)


def test_statistics() -> None:
    from nasx.hardware.subnets import fit_overhead
    from nasx.stats import mape_percent, spearman

    assert spearman([1, 2, 3, 4], [10, 20, 30, 45]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486832980505138)  # scipy, ties averaged
    assert mape_percent([11, 9], [10, 10]) == pytest.approx(10.0)
    assert fit_overhead([1.0, 2.0, 3.0], [1.5, 2.4, 3.6]) == pytest.approx(0.5)


def test_sampling_under_a_latency_budget(synthetic_table) -> None:
    space = attach(TINY, synthetic_table(TINY, 16))
    latencies = sorted(space.costs(space.sample(np.random.default_rng(i)), 16).latency_ms for i in range(200))
    limit = latencies[len(latencies) // 4]  # a quarter of random archs fit
    archs = sample_admitted(
        space, parse_budget(f"{limit}ms-latency"), np.random.default_rng(0), 10, resolution=16
    )
    assert len(archs) == 10
    assert all(space.costs(a, 16).latency_ms <= limit for a in archs)


def test_mp_solver_respects_a_latency_budget(synthetic_table) -> None:
    from solvers.mp import solve

    space = attach(TINY, synthetic_table(TINY, 16))
    unconstrained = solve(space, parse_budget("100M-flops"), rho_max=10.0, resolution=16)
    limit = 0.9 * unconstrained.costs.latency_ms
    result = solve(space, parse_budget(f"100M-flops,{limit}ms-latency"), rho_max=10.0, resolution=16)
    assert result.costs.latency_ms == space.costs(result.arch, 16).latency_ms <= limit
    assert result.score < unconstrained.score


# --- the CLI, with a synthetic table of the full mobilenet space -------------------------------
IMAGENET = mobilenet.space("imagenet", bits=(32,))


@pytest.fixture(scope="module")
def imagenet_table(synthetic_table, tmp_path_factory, device: str) -> Path:
    path = tmp_path_factory.mktemp("lut") / "mobilenet-224.json"
    synthetic_table(IMAGENET, 224, device=device, path=str(path)).save()
    return path


def test_cost_and_sample_with_a_latency_table(
    cli, capsys: pytest.CaptureFixture[str], imagenet_table: Path
) -> None:
    table = load_table(imagenet_table)
    code, out, err = cli("cost", "--arch", "ofa-595m", "--latency-table", str(imagenet_table), "--json")
    assert code == 0 and err == ""
    data = json.loads(out)
    preset = mobilenet.PRESETS["ofa-595m"]
    assert data["resolution"] == 224  # the table's, not the preset's 236
    assert data["latency_ms"] == pytest.approx(table.predict(preset.space.blocks(preset.arch, 224)))
    code, out, _ = cli(
        *("sample", "--space", "mobilenet", "-n", "5", "--budget", "40ms-latency"),
        *("--latency-table", str(imagenet_table), "--json"),
    )
    assert code == 0
    archs = json.loads(out)["archs"]
    assert len(archs) == 5
    for entry in archs:
        arch = IMAGENET.validate(Arch(entry["arch"]))
        assert entry["costs"]["latency_ms"] == pytest.approx(table.predict(IMAGENET.blocks(arch, 224)))
        assert entry["costs"]["latency_ms"] <= 40.0


def test_search_under_a_latency_budget(
    cli, capsys: pytest.CaptureFixture[str], imagenet_table: Path, tmp_path: Path
) -> None:
    table = load_table(imagenet_table)
    for strategy in ("evolution", "mp"):
        code, out, _ = cli(
            *("search", "--space", "mobilenet", "--budget", "35ms-latency", "--strategy", strategy),
            *("--evaluations", "24", "--population", "8", "--latency-table", str(imagenet_table)),
            *("--out", str(tmp_path / strategy), "--json"),
        )
        assert code == 0, strategy
        summary = json.loads(out)
        for entry in [summary, *summary["front"]]:
            arch = IMAGENET.validate(Arch(entry.get("best") or entry["arch"]))
            predicted = table.predict(IMAGENET.blocks(arch, 224))
            assert entry["costs"]["latency_ms"] == pytest.approx(predicted) and predicted <= 35.0


def test_solve_under_a_latency_budget(cli, capsys: pytest.CaptureFixture[str], imagenet_table: Path) -> None:
    table = load_table(imagenet_table)
    code, out, _ = cli(
        *("solve", "--space", "mobilenet", "--budget", "30ms-latency", "--time-limit", "30"),
        *("--latency-table", str(imagenet_table), "--json"),
    )
    assert code == 0
    data = json.loads(out)
    arch = IMAGENET.validate(Arch(data["arch"]))
    assert data["costs"]["latency_ms"] == pytest.approx(table.predict(IMAGENET.blocks(arch, 224)))
    assert data["costs"]["latency_ms"] <= 30.0


def test_cli_table_errors_are_one_line(cli, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    for argv, message in [
        (("cost", "--arch", "ofa-595m", "--latency-table", str(tmp_path / "none.json")), "does not exist"),
        (("cost", "--arch", "ofa-595m", "--latency-table", str(bad)), "is not a nasx latency table"),
        (
            ("sample", "--space", "nb201", "--budget", "5ms-latency", "--latency-table", str(bad)),
            "latency table",
        ),
    ]:
        code, out, err = cli(*argv)
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and err.startswith("nasx: error: ") and message in err


def test_cli_warns_about_another_device(
    cli, synthetic_table, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "tpu.json"
    synthetic_table(IMAGENET, 224, device="TPU v4", path=str(path)).save()
    code, out, err = cli("cost", "--arch", "ofa-595m", "--latency-table", str(path), "--json")
    assert code == 0 and "latency_ms" in json.loads(out)
    assert err.startswith("nasx: warning: latency table") and 'measured on "TPU v4"' in err


def test_layer_descriptors_are_plain_data() -> None:
    layer = Layer("conv", 8, 24, 16, 3, 2, 8, 32, "relu", bn=True)
    assert Layer(**layer._asdict()) == layer and hash(layer) == hash(Layer(*layer))
    assert layer.costs().macs == (8 // 8) * 24 * 9 * 8 * 8
