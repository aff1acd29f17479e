"""`nasx train-supernet`: a resumable run folder, and bad data as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_train_supernet_writes_a_resumable_run(
    cli, tiny_train_argv, capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_supernet: tuple[Path, dict]
) -> None:
    out, summary = tiny_supernet
    argv = tiny_train_argv
    assert summary["steps"] == 200 and set(summary["test_accuracy"]) == {"largest", "smallest"}
    assert json.loads((out / "summary.json").read_text()) == summary
    assert sorted(p.name for p in (out / "checkpoints").iterdir() if p.name.isdigit()) == ["100", "200"]
    logged = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert logged == list(range(10, 201, 10))
    code, _, err = cli(*argv, "--out", str(out))
    assert code == 2 and "--resume" in err and "Traceback" not in err
    # the checkpoint scores a search: inherited weights, re-calibrated, on held-out digits
    search = [
        "search",
        "--space",
        "mobilenet:cifar",
        "--budget",
        "100M-flops",
        "--evaluator",
        f"supernet:{out}",
    ]
    search += [
        "--evaluations",
        "4",
        "--population",
        "2",
        "--batch-size",
        "4",
        "--out",
        str(tmp_path / "s"),
        "--json",
    ]
    code, stdout, _ = cli(*search)
    assert code == 0
    result = json.loads(stdout)
    assert 0.0 <= result["score"] <= 1.0 and result["scores"] == {"acc": result["score"]}
    assert "bits.stem" not in result["best"]  # searched at the checkpoint's bits (32 only)
    # a variant other than the checkpoint's is refused, naming both
    wrong = [
        "search",
        "--space",
        "mobilenet:imagenet",
        "--budget",
        "1G-flops",
        "--evaluator",
        f"supernet:{out}",
    ]
    code, _, err = cli(*wrong, "--out", str(tmp_path / "w"))
    assert code == 2 and "mobilenet:cifar" in err and "mobilenet:imagenet" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("cifar10:/nonexistent/cifar", "/nonexistent/cifar"),
        ("imagenet", "imagenet"),
        ("npz:", "give the file"),
    ],
)
def test_train_supernet_bad_data_is_one_line(
    cli, capsys: pytest.CaptureFixture[str], tmp_path: Path, data: str, message: str
) -> None:
    code, _, err = cli("train-supernet", "--space", "mobilenet", "--data", data, "--out", str(tmp_path))
    assert code == 2 and err.startswith("nasx: error:") and message in err and len(err.splitlines()) == 1
