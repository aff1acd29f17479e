"""`nasx train-supernet` and `nasx train`: resumable run folders, export, and bad input as one line."""

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


def test_train_a_search_find_from_scratch_then_export_it(cli, tmp_path: Path) -> None:
    """`nasx train --arch RUN_DIR#K`: the front member trained alone, measured on validation and
    test; `nasx export` ships it with the very test accuracy it was trained to; --resume refuses
    nothing to resume, and an occupied folder needs it."""
    search = ["search", "--space", "nb201", "--budget", "100M-flops", "--evaluations", "6"]
    assert cli(*search, "--out", str(tmp_path / "s"), "--json")[0] == 0
    front = json.loads((tmp_path / "s" / "front.json").read_text())
    run = tmp_path / "t"
    argv = [
        "train",
        "--arch",
        f"{tmp_path / 's'}#1",
        "--image-size",
        "8",
        "--steps",
        "12",
        "--batch-size",
        "32",
    ]
    code, stdout, err = cli(*argv, "--out", str(run), "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["fingerprint"] == front[0]["fingerprint"] and summary["steps"] == 12
    assert summary["data_info"]["splits"]["sizes"]["val"] > 0
    assert set(summary["accuracy"]) == {"val", "test"} and all(
        0 <= a <= 1 for a in summary["accuracy"].values()
    )
    assert summary["params"] == summary["costs"]["params"]  # the network built is the one priced
    assert json.loads((run / "summary.json").read_text()) == summary
    code, _, err = cli(*argv, "--out", str(run))
    assert code == 2 and "--resume" in err and len(err.splitlines()) == 1
    code, stdout, err = cli("export", str(run), "--json")
    assert code == 0, err
    member = json.loads(stdout)["members"][0] if "members" in json.loads(stdout) else json.loads(stdout)[0]
    assert member["test_accuracy"] == pytest.approx(summary["accuracy"]["test"], abs=1e-6)
    code, stdout, err = cli("predict", member["folder"], "--input", str(_digits_file(tmp_path)), "--json")
    assert code == 0, err


def _digits_file(tmp_path: Path) -> Path:
    import numpy as np

    from nasx.data import load

    path = tmp_path / "x.npy"
    np.save(path, load("digits", size=8).x_test[:3])
    return path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--arch", "no-such-preset", "--space", "nb201"], "no-such-preset"),
        (["--arch", "RUN#1"], "RUN#1"),
        (["--arch", "nb201-resnet", "--resume"], "no training run to resume"),
        (["--arch", "nb201-resnet", "--epochs", "1", "--steps", "2"], "not allowed with argument"),
        (["--arch", "nb201-resnet", "--data", "fashion-mnist:/nonexistent"], "/nonexistent"),
        (["--arch", "nb201-resnet", "--val-fraction", "0"], "--val-fraction"),
    ],
)
def test_train_bad_input_is_one_line(cli, tmp_path: Path, extra: list[str], message: str) -> None:
    code, _, err = cli("train", *extra, "--out", str(tmp_path / "t"))
    assert code == 2 and err.startswith("nasx: error:") and message in err and len(err.splitlines()) == 1, err


def test_bare_train_supernet_trains_the_cpu_sized_variant(cli, tmp_path: Path) -> None:
    """`--space resnet` with MNIST-format data and no variant: resnet:small, not the full-width
    CIFAR layout, is what trains (the checkpoint's meta and the summary say so)."""
    from tests.nasx.data.test_datasets import write_mnist

    write_mnist(tmp_path / "idx", n_train=40, n_test=12)
    out = tmp_path / "run"
    argv = ["train-supernet", "--space", "resnet", "--data", f"mnist:{tmp_path / 'idx'}", "--out", str(out)]
    code, _, err = cli(*argv, "--steps", "2", "--batch-size", "8", "--archs-per-step", "2", "--json")
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["space"], summary["variant"], summary["resolution"]) == ("resnet", "small", 28)


def test_a_train_step_larger_than_free_memory_is_refused_before_it_runs(
    cli, tmp_path: Path, monkeypatch
) -> None:
    """XLA's own account of the compiled step (`nasx.train.compile_checked`) against the free
    memory, here made 1 MiB: one line naming both and the flags to lower; no step ran."""
    import nasx.train

    monkeypatch.setattr(nasx.train, "memory_available", lambda device: 2**20)
    out = tmp_path / "run"
    code, _, err = cli(
        "train-supernet", "--space", "resnet", "--image-size", "8", "--steps", "2", "--out", str(out)
    )
    last = err.strip().splitlines()[-1]  # after the line saying what trains
    assert code == 2 and last.startswith("nasx: error: the train step needs") and "Traceback" not in err, err
    assert "GiB of memory" in err and "0.0 GiB free" in err and "--batch-size (64)" in err, err
    assert not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text()
