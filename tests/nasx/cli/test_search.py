"""`nasx search`, `nasx solve` and `nasx benchmark nb201` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nasx.budget import parse_budget
from nasx.runlog import read_runlog
from search_spaces import SPACES


def test_search_resnet_with_deepmad_entropy(cli, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_dir = tmp_path / "run"
    code, out, _ = cli(
        "search",
        "--space",
        "resnet",
        "--budget",
        "1G-flops,10M-params",
        "--evaluations",
        "40",
        "--population",
        "8",
        "--out",
        str(out_dir),
        "--json",
    )
    assert code == 0
    summary = json.loads(out)
    space = SPACES["resnet"]("imagenet", bits=(32,))  # search default: float
    best = space.validate(summary["best"])
    assert parse_budget("1G-flops,10M-params").admits(space.costs(best))
    assert summary["run_dir"] == str(out_dir) and summary["costs"]["macs"] == space.costs(best).macs
    records = read_runlog(out_dir / "runlog.jsonl")
    assert len(records) == 40
    assert summary["score"] == max(r.objectives[0] for r in records if r.ok)
    assert json.loads((out_dir / "best.json").read_text())["fingerprint"] == best.fingerprint
    assert (out_dir / "front.json").exists() and (out_dir / "config.json").exists()


def test_search_is_deterministic_and_refuses_to_overwrite(
    cli, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = (
        "search",
        "--space",
        "nb201",
        "--budget",
        "80M-flops",
        "--evaluator",
        "params",
        "--evaluations",
        "24",
    )
    for name in ("a", "b"):
        assert cli(*args, "--seed", "3", "--out", str(tmp_path / name), "--json")[0] == 0
    assert (tmp_path / "a" / "runlog.jsonl").read_bytes() == (tmp_path / "b" / "runlog.jsonl").read_bytes()
    code, _, err = cli(*args, "--seed", "3", "--out", str(tmp_path / "a"))
    assert code == 2 and "--resume" in err and "Traceback" not in err
    code, out, _ = cli(*args[:-1], "30", "--seed", "3", "--out", str(tmp_path / "a"), "--resume", "--json")
    assert code == 0 and json.loads(out)["resumed"] == 24 and json.loads(out)["evaluated"] == 30


def test_nsga2_search_writes_a_front(cli, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = cli(
        "search",
        "--space",
        "nb201",
        "--budget",
        "100M-flops",
        "--strategy",
        "nsga2",
        "--evaluator",
        "params",
        "--objectives",
        "score,weight_bytes",
        "--evaluations",
        "24",
        "--population",
        "8",
        "--out",
        str(tmp_path),
        "--json",
    )
    assert code == 0
    front = json.loads(out)["front"]
    assert front and all(set(e) >= {"arch", "costs", "scores"} for e in front)
    assert len(list((tmp_path / "front").glob("*.json"))) == len(front)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--space", "nasnet", "--budget", "1M-flops"), "1M-flops"),
        (("--space", "nasnet", "--budget", "600M-flops", "--evaluator", "bogus"), "bogus"),
        (("--space", "nb201", "--budget", "600M-flops", "--evaluator", "entropy"), "entropy"),
        (("--space", "resnet", "--budget", "1G-flops", "--objectives", "acc,macs"), "nsga2"),
        (("--space", "resnet", "--budget", "1G-flops", "--objectives", "speed"), "speed"),
        (("--space", "resnet", "--budget", "20ms-latency"), "latency"),
        (("--space", "resnet", "--budget", "1G-flops", "--strategy", "annealing"), "annealing"),
        (("--space", "nope", "--budget", "1G-flops"), "nope"),
        (
            ("--space", "resnet", "--budget", "1G-flops", "--evaluator", "supernet:/nonexistent/ckpt"),
            "/nonexistent/ckpt",
        ),
    ],
)
def test_search_bad_input_is_one_line_exit_2(
    cli, capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: tuple[str, ...], message: str
) -> None:
    code, _, err = cli("search", *argv, "--out", str(tmp_path / "run"))
    assert code == 2
    assert message in err and "Traceback" not in err


def test_solve_prints_the_mp_result(cli, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(
        "solve",
        "--space",
        "mobilenet",
        "--budget",
        "300M-flops",
        "--bits",
        "32",
        "--rho",
        "0.5",
        "--json",
    )
    assert code == 0
    result = json.loads(out)
    space = SPACES["mobilenet"]("imagenet", bits=(32,))
    arch = space.validate(result["arch"])
    assert space.costs(arch).macs <= 300e6 and result["status"]
    assert result["effectiveness"] <= 0.5 + 1e-9
    code, _, err = cli(
        "solve", "--space", "mobilenet", "--budget", "300M-flops", "--bits", "32", "--rho", "0.3"
    )
    assert code == 2 and "rho" in err  # at rho 0.3 no mobilenet fits: the binding bound is named
