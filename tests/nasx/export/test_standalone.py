"""`nasx export` of a supernet-scored search: standalone models that load in a fresh process
without nasx (plain JAX, StableHLO) and reproduce the accuracy recorded at export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nasx.cli import main
from nasx.data import load
from nasx.runlog import read_runlog
from nasx.space import Arch
from search_spaces import make_space

PLAIN_JAX = """
import sys
for name in ("nasx", "search_spaces", "solvers", "flax", "orbax"):
    sys.modules[name] = None  # any import of these fails: the artifact needs plain JAX only
import jax, numpy as np
folder, images, labels = sys.argv[1:4]
exported = jax.export.deserialize(bytearray(open(folder + "/model.stablehlo", "rb").read()))
npz = np.load(folder + "/weights.npz")
weights = [npz[f"w{i}"] for i in range(len(npz.files))]
logits = np.asarray(exported.call(weights, np.load(images)))
print(float(np.mean(logits.argmax(-1) == np.load(labels))))
"""


@pytest.fixture(scope="module")
def searched(tmp_path_factory, tiny_supernet: tuple[Path, dict]) -> Path:
    root = tmp_path_factory.mktemp("export")
    search = ["search", "--space", "mobilenet:cifar", "--budget", "100M-flops", "--objectives", "acc,macs"]
    search += ["--evaluator", f"supernet:{tiny_supernet[0]}", "--strategy", "nsga2", "--evaluations", "8"]
    search += ["--population", "4", "--batch-size", "4", "--out", str(root / "run"), "--json"]
    assert main(search) == 0
    return root


def test_exported_models_reproduce_their_accuracy_with_plain_jax(
    searched: Path, tmp_path: Path, capsys
) -> None:
    capsys.readouterr()
    assert (
        main(["export", str(searched / "run"), "--top", "2", "--out", str(tmp_path / "models"), "--json"])
        == 0
    )
    members = json.loads(capsys.readouterr().out)["members"]
    assert 1 <= len(members) <= 2
    # the search priced the archs of the checkpoint's network (width 0.25), the one exported
    logged = {e.arch.fingerprint: dict(e.costs) for e in read_runlog(searched / "run" / "runlog.jsonl")}
    for m in members:
        arch = json.loads((Path(m["folder"]) / "arch.json").read_text())
        costs = json.loads((Path(m["folder"]) / "costs.json").read_text())
        full_width = make_space("mobilenet:cifar", (32,)).costs(Arch(arch)).macs
        assert logged[Arch(arch).fingerprint]["macs"] == costs["macs"] < full_width / 4
    data = load("digits", size=8, seed=0)
    np.save(tmp_path / "x.npy", data.x_test)
    np.save(tmp_path / "y.npy", data.y_test)
    for m in members:
        folder = Path(m["folder"])
        assert {p.name for p in folder.iterdir()} >= {"arch.json", "costs.json", "metrics.json", "checkpoint"}
        proc = subprocess.run(
            [sys.executable, "-c", PLAIN_JAX, str(folder), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp_path,
        )
        assert float(proc.stdout) == pytest.approx(m["test_accuracy"], abs=1e-9)
    # nasx predict on the first member
    capsys.readouterr()
    assert main(["predict", members[0]["folder"], "--input", str(tmp_path / "x.npy"), "--json"]) == 0
    classes = np.asarray(json.loads(capsys.readouterr().out)["classes"])
    assert np.mean(classes == data.y_test) == pytest.approx(members[0]["test_accuracy"])


def test_a_run_without_a_supernet_cannot_be_exported(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert (
        main(
            [
                "search",
                "--space",
                "mobilenet",
                "--budget",
                "300M-flops",
                "--evaluations",
                "8",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["export", str(run)]) == 2
    assert "no weights to export" in capsys.readouterr().err


def test_predict_with_a_missing_input_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["predict", str(tmp_path), "--input", "x.npy"]) == 2
    assert "holds no exported model" in capsys.readouterr().err
