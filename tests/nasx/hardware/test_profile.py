"""Measuring latency tables with JAX on a tiny MBConv space: entries, resume, calibration, validation.

No test asserts a wall-clock time: they check what is measured (every distinct block, each once),
that a killed profile resumes without re-measuring, and the arithmetic of the fitted overhead.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from flax import nnx

from nasx.hardware.latency import LatencyTableMismatchError, ProfileSettings, load_table
from nasx.hardware.profile import _BlockNet, device_kind, profile_blocks
from nasx.hardware.subnets import calibrate, validate
from nasx.supernet import build, count_params
from search_spaces import mobilenet
from search_spaces.mobilenet.spec import MobileNetSpace, Skeleton, Stage
from search_spaces.mobilenet.supernet import MobileNetSupernet

# One stage, one kernel: 11 distinct blocks at 8 px, each compiled in a fraction of a second.
TINY = MobileNetSpace(
    Skeleton(
        name="tiny",
        stem_width=8,
        first_width=8,
        stages=(Stage(8, 2, "h_swish", (1, 2)),),
        head_width=16,
        num_classes=10,
        resolutions=(8,),
        default_resolution=8,
        kernels=(3,),
        expands=(3, 6),
    ),
    bits=(32,),
)
SETTINGS = ProfileSettings("mobilenet:tiny", 8, batch=2, warmup=1, repeats=3)


class _Killed(Exception):
    pass


def test_profile_measures_every_block_once_and_resumes_after_a_kill(tmp_path: Path) -> None:
    path = tmp_path / "lut.json"
    blocks = TINY.distinct_blocks(8)
    measured = []

    def kill_after_five(done: int, total: int, block, ms: float | None) -> None:
        assert total == len(blocks) * SETTINGS.repeats  # 3 rounds of one call each
        if ms is not None:
            measured.append(block)
            if len(measured) == 5:
                raise _Killed  # as if the process died right after the fifth share was saved

    with pytest.raises(_Killed):
        profile_blocks(TINY, SETTINGS, path, rounds=3, on_entry=kill_after_five)
    partial = load_table(path)
    assert list(partial.entries) == measured == list(blocks[:5])  # round 1 interleaves the blocks
    assert all(len(partial.samples[block]) == 1 for block in measured)

    resumed = []
    table = profile_blocks(
        TINY, SETTINGS, path, rounds=3, on_entry=lambda d, t, block, ms: ms and resumed.append(block)
    )
    assert resumed == 2 * list(blocks) + list(blocks[5:])  # the first five need one call less
    assert set(table.entries) == set(blocks) and all(ms > 0 for ms in table.entries.values())
    for block in blocks:  # nothing measured twice, nothing lost
        assert len(table.samples[block]) == SETTINGS.repeats
        assert table.entries[block] == pytest.approx(float(np.median(table.samples[block])))
    assert all(table.samples[block][0] == partial.samples[block][0] for block in measured)
    assert table.device == device_kind() and load_table(path).entries == table.entries
    again = []
    profile_blocks(TINY, SETTINGS, path, on_entry=lambda d, t, block, ms: ms and again.append(block))
    assert again == []  # a complete table measures nothing


def test_resuming_with_other_settings_is_an_error(synthetic_table, tmp_path: Path) -> None:
    path = tmp_path / "lut.json"
    synthetic_table(TINY, 8, device=device_kind(), path=str(path)).save()
    with pytest.raises(LatencyTableMismatchError, match="cannot resume"):
        profile_blocks(TINY, SETTINGS, path)  # batch 2, 3 repeats here; batch 1, 25 repeats there


def test_block_modules_hold_the_extracted_networks_weights() -> None:
    """Each measured block has exactly the weights of the network's block: their parameters add
    up to the extracted network's (and the analytic count)."""
    supernet = build(MobileNetSupernet, TINY)
    stats = {k: (np.zeros(n), np.ones(n)) for k, n in _bn_sizes(supernet).items()}
    rng = np.random.default_rng(0)
    for _ in range(4):
        arch = TINY.sample(rng)
        per_block = sum(count_params(_BlockNet(block, rngs=nnx.Rngs(0))) for block in TINY.blocks(arch))
        assert per_block == count_params(supernet.extract(arch, stats)) == TINY.costs(arch).params


def _bn_sizes(supernet) -> dict[str, int]:
    from nasx.nn.layers import BatchNorm

    return {n.key: n.num_features for _, n in nnx.iter_graph(supernet) if isinstance(n, BatchNorm)}


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """A complete table of TINY and its supernet (measured once for the tests below)."""
    path = tmp_path_factory.mktemp("lut") / "tiny.json"
    return profile_blocks(TINY, SETTINGS, path), build(MobileNetSupernet, TINY)


def test_calibration_fits_the_least_squares_overhead(measured) -> None:
    table, supernet = measured
    rng = np.random.default_rng(1)
    archs = list(dict.fromkeys(TINY.sample(rng) for _ in range(3)))
    rounds = []
    calibrated = calibrate(table, TINY, supernet, archs, rounds=2, on_round=lambda r, n: rounds.append(r))
    info = calibrated.calibration
    assert rounds == [1, 2] and info["networks"] == len(archs)
    sums = [table.blocks_ms(TINY.blocks(a, 8)) for a in archs]
    assert info["blocks_sum_ms"] == sums and all(ms > 0 for ms in info["measured_ms"])
    gaps = [m - s for m, s in zip(info["measured_ms"], sums, strict=True)]
    assert calibrated.overhead_ms == pytest.approx(sum(gaps) / len(gaps), rel=1e-12)
    # least squares: moving the overhead either way increases the squared error
    sse = lambda c: sum((g - c) ** 2 for g in gaps)  # noqa: E731
    assert sse(calibrated.overhead_ms) <= min(
        sse(calibrated.overhead_ms + 0.01), sse(calibrated.overhead_ms - 0.01)
    )


def test_validation_reports_predicted_against_measured(measured) -> None:
    table, supernet = measured
    archs = list(dict.fromkeys(TINY.sample(np.random.default_rng(2)) for _ in range(3)))
    stored, report = validate(table.replace(overhead_ms=0.125), TINY, supernet, archs, rounds=1)
    assert report["networks"] == len(archs) and not report["in_sample"] and report["overhead_ms"] == 0.125
    for arch, row in zip(archs, report["rows"], strict=True):
        assert row["fingerprint"] == arch.fingerprint and row["measured_ms"] > 0
        assert row["predicted_ms"] == pytest.approx(table.blocks_ms(TINY.blocks(arch, 8)) + 0.125)
    assert -1.0 <= report["spearman"] <= 1.0 or math.isnan(report["spearman"])
    assert report["mape_percent"] >= 0 and stored.validation == report

    # with calibration networks timed alongside, the overhead is re-fitted on them alone
    calibration = [TINY.sample(np.random.default_rng(3))]
    stored, report = validate(table, TINY, supernet, archs[:1], calibration=calibration, rounds=1)
    info = stored.calibration
    assert info["fingerprints"] == [calibration[0].fingerprint] and report["calibration_networks"] == 1
    assert (
        report["overhead_ms"]
        == stored.overhead_ms
        == pytest.approx(info["measured_ms"][0] - info["blocks_sum_ms"][0])
    )
    assert not report["in_sample"]


# --- nasx profile ----------------------------------------------------------------------------------
CLI_SPACE = mobilenet.space("cifar", bits=(32,), width_mult=0.25)


def test_cli_profile_resumes_and_validates(
    cli, synthetic_table, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`nasx profile` on a table killed 3 blocks short of the end measures those 3 only; `--validate`
    (2 subnets: compiling a whole network takes most of this test) fits the overhead it lacks."""
    path = tmp_path / "lut.json"
    argv = ("--space", "mobilenet:cifar", "--width-mult", "0.25", "--resolution", "8", "--warmup", "1")
    settings = ProfileSettings("mobilenet:cifar", 8, width_mult=0.25, warmup=1, repeats=3)
    blocks = CLI_SPACE.distinct_blocks(8)
    partial = synthetic_table(CLI_SPACE, 8, device=device_kind(), path=str(path))
    partial = partial.replace(settings=settings, entries={k: partial.entries[k] for k in blocks[:-3]})
    partial.replace(overhead_ms=None).save()
    code, out, _ = cli("profile", *argv, "--repeats", "3", "--calibrate", "0", "--out", str(path), "--json")
    assert code == 0
    summary = json.loads(out)
    table = load_table(path)
    assert summary["entries"] == len(blocks) == len(table.entries)
    assert all(table.entries[k] == partial.entries[k] for k in blocks[:-3])  # kept, not re-measured
    assert all(table.entries[k] > 0 for k in blocks[-3:]) and table.overhead_ms is None

    code, out, _ = cli(
        "profile", "--validate", str(path), "-n", "2", "--calibrate", "0", "--rounds", "1", "--json"
    )
    assert code == 0
    report = json.loads(out)
    assert report["networks"] == 2 and report["in_sample"] and {"spearman", "mape_percent"} <= set(report)
    for row in report["rows"]:
        assert row["predicted_ms"] > 0 and row["measured_ms"] > 0
    assert load_table(path).validation["mape_percent"] == report["mape_percent"]


def test_cli_profile_errors_are_one_line(cli, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for argv, message in [
        (("profile", "--space", "nb201", "--out", str(tmp_path / "x.json")), "no per-block latency model"),
        (("profile", "--validate", str(tmp_path / "none.json")), "does not exist"),
        (("profile", "--out", str(tmp_path / "x.json")), "needs --space"),
        (("profile", "--space", "mobilenet"), "one of the arguments --out --validate is required"),
    ]:
        code, out, err = cli(*argv)
        assert code == 2 and out == "" and err.count("\n") == 1 and message in err, err
