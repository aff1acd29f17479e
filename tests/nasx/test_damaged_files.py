"""Every file nasx reads is checked: damage is one line naming the file (and line or step), never a
traceback; a damaged checkpoint step falls back to the previous intact one, with a warning.

Each case writes the damaged file for real (cut, deleted, garbage, NaN), runs the real reader or
command, and asserts the error type or exit status 2, a message naming the culprit, and no traceback.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nasx.checkpoint import CheckpointDamagedError, Checkpointer
from nasx.errors import ArchFormatError, InvalidArchError, NasxError
from nasx.export.load import ModelFileError, load_model
from nasx.hardware.latency import LatencyTable, LatencyTableFormatError, ProfileSettings, load_table
from nasx.jobs.predict import PredictInputError, PredictRequest, predict
from nasx.runlog import RunLogError, read_run_config, read_runlog, recover_runlog
from nasx.train import TrainConfig, run_steps
from search_spaces import load_arch, make_space

SEARCH = ["search", "--space", "mobilenet", "--budget", "300M-flops", "--evaluator", "params"]
SEARCH += ["--evaluations", "8", "--batch-size", "4", "--json"]


def _one_line_error(code: int, err: str, *names: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("nasx: error:")]
    assert len(lines) == 1, err
    for name in names:
        assert name in lines[0], (name, lines[0])


# --- run logs and config.json ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def search_run(tmp_path_factory) -> Path:
    """A finished 8-evaluation search (analytic scores: no network is built)."""
    from nasx.cli import main

    out = tmp_path_factory.mktemp("damaged") / "run"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([*SEARCH, "--out", str(out)]) == 0
    return out


def _lines(run: Path) -> list[str]:
    return (run / "runlog.jsonl").read_text().splitlines()


def _with_line(run: Path, tmp_path: Path, number: int, text: str | bytes) -> Path:
    """A copy of `run` whose run-log line `number` (from 1) is `text`."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    lines = (copy / "runlog.jsonl").read_bytes().split(b"\n")
    lines[number - 1] = text if isinstance(text, bytes) else text.encode()
    (copy / "runlog.jsonl").write_bytes(b"\n".join(lines))
    return copy


RECORD_DAMAGE = {
    "garbage": (3, "garbage }{", "not JSON"),
    "binary": (3, bytes(range(128, 256)), "not text"),
    "a list": (2, "[1, 2]", "JSON list"),
    "index not a number": (3, json.dumps({"index": "x", "arch": {}}), '"index"'),
    "arch not an object": (3, json.dumps({"index": 2, "arch": 5}), '"arch"'),
    "arch value a list": (3, json.dumps({"index": 2, "arch": {"s1.depth": [1]}}), "s1.depth"),
    "score a string": (3, json.dumps({"index": 2, "arch": {}, "scores": {"params": "high"}}), '"scores"'),
    "unknown status": (3, json.dumps({"index": 2, "arch": {}, "status": "maybe"}), '"status"'),
    "bad complete last line": (8, "garbage", "not JSON"),  # complete (newline-ended): damage, not a tear
}


@pytest.mark.parametrize("case", RECORD_DAMAGE, ids=list(RECORD_DAMAGE))
def test_damaged_run_log_names_the_line_and_is_left_as_it_is(
    search_run: Path, tmp_path: Path, case: str
) -> None:
    number, text, why = RECORD_DAMAGE[case]
    run = _with_line(search_run, tmp_path, number, text)
    log = run / "runlog.jsonl"
    before = log.read_bytes()
    for read in (read_runlog, recover_runlog):
        with pytest.raises(RunLogError, match=f"line {number}: .*{why}") as e:
            read(log)
        assert str(log) in str(e.value) and f"sed -i '{number}d'" in str(e.value)
    assert log.read_bytes() == before


def test_damaged_run_log_in_report_and_resume_is_one_line(search_run: Path, tmp_path: Path, cli) -> None:
    run = _with_line(search_run, tmp_path, 3, "garbage }{")
    before = (run / "runlog.jsonl").read_bytes()
    _one_line_error(*cli("report", str(run))[::2], "runlog.jsonl", "line 3")
    _one_line_error(*cli(*SEARCH, "--out", str(run), "--resume")[::2], "runlog.jsonl", "line 3")
    assert (run / "runlog.jsonl").read_bytes() == before


def test_torn_last_line_is_still_dropped_and_cut_on_resume(search_run: Path, tmp_path: Path, cli) -> None:
    run = tmp_path / "run"
    shutil.copytree(search_run, run)
    log = run / "runlog.jsonl"
    log.write_text(log.read_text() + '{"index": 8, "arch": {"s1.de')  # killed mid-write: no newline
    assert len(read_runlog(log)) == 8
    more = [a if a != "8" else "10" for a in SEARCH]  # --evaluations 10: resumable
    code, _, err = cli(*more, "--out", str(run), "--resume")
    assert code == 0, err
    assert [json.loads(line)["index"] for line in _lines(run)] == list(range(10))


@pytest.mark.parametrize(
    ("content", "why"),
    [(b'{"space": "nb201", ', "not JSON"), (b"[1, 2]", "JSON list"), (bytes(range(128, 256)), "not text")],
    ids=["cut", "list", "binary"],
)
def test_damaged_run_config_names_the_file(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(RunLogError, match=why) as e:
        read_run_config(path)
    assert str(path) in str(e.value)
    assert path.read_bytes() == content


# --- architecture files ---------------------------------------------------------------------------

ARCH_DAMAGE = {
    "binary": (bytes(range(256)), ArchFormatError, "not text"),
    "cut JSON": (b'{"edge.0->1": ', ArchFormatError, "not valid JSON"),
    "empty": (b"", ArchFormatError, "not valid JSON"),
    "a list": (b"[1, 2]", ArchFormatError, "got list"),
    "arch not an object": (b'{"arch": 5}', ArchFormatError, '"arch" is 5'),
    "variant not a name": (b'{"variant": 5, "arch": {}}', ArchFormatError, '"variant"'),
    "unknown op": (b'{"arch": {"edge.0->1": "nope"}}', InvalidArchError, "nope"),
}


@pytest.mark.parametrize("case", ARCH_DAMAGE, ids=list(ARCH_DAMAGE))
def test_damaged_arch_file_names_the_file(tmp_path: Path, case: str, cli) -> None:
    content, kind, why = ARCH_DAMAGE[case]
    path = tmp_path / "arch.json"
    path.write_bytes(content)
    with pytest.raises(kind, match=why) as e:
        load_arch("nb201", str(path))
    assert f'architecture file "{path}"' in str(e.value)
    _one_line_error(*cli("cost", "--space", "nb201", "--arch", str(path))[::2], str(path))


# --- latency tables -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def table_json() -> dict:
    space = make_space("mobilenet:cifar")
    entries = {b: 0.01 + 1e-7 * sum(layer.costs().macs for layer in b) for b in space.distinct_blocks(32)}
    table = LatencyTable(
        ProfileSettings("mobilenet:cifar", 32),
        "cpu",
        "0.test",
        entries,
        {b: (v, v) for b, v in entries.items()},
    )
    return table.to_json()


def _set(path: tuple, value: object):
    def mutate(data: dict) -> None:
        for key in path[:-1]:
            data = data[key]
        data[path[-1]] = value

    return mutate


TABLE_DAMAGE = {
    "NaN latency": (_set(("entries", 3, "latency_ms"), float("nan")), 'entry 3: "latency_ms" is nan'),
    "NaN sample": (
        _set(("entries", 5, "samples_ms"), [1.0, float("nan")]),
        'entry 5: "samples_ms" holds nan',
    ),
    "negative sample": (_set(("entries", 5, "samples_ms"), [-1.0]), 'entry 5: "samples_ms" holds -1.0'),
    "NaN overhead": (_set(("overhead_ms",), float("nan")), '"overhead_ms" is nan'),
    "infinite overhead": (_set(("overhead_ms",), float("inf")), '"overhead_ms" is inf'),
    "NaN resolution": (_set(("settings", "resolution"), float("nan")), 'settings "resolution" is nan'),
    "batch 0": (_set(("settings", "batch"), 0), 'settings "batch" is 0'),
    "NaN width": (_set(("settings", "width_mult"), float("nan")), 'settings "width_mult" is nan'),
    "bits a string": (_set(("settings", "bits"), "32"), "settings \"bits\" is '32'"),
    "entries an object": (_set(("entries",), {"a": 1}), '"entries" is a dict'),
    "repeated entry": (lambda d: d["entries"].append(d["entries"][0]), "the same block as entry 0"),
}


@pytest.mark.parametrize("case", TABLE_DAMAGE, ids=list(TABLE_DAMAGE))
def test_damaged_latency_table_names_the_entry(tmp_path: Path, table_json: dict, case: str, cli) -> None:
    mutate, why = TABLE_DAMAGE[case]
    data = json.loads(json.dumps(table_json))
    mutate(data)
    path = tmp_path / "lut.json"
    path.write_text(json.dumps(data))  # json writes NaN and Infinity as Python reads them back
    with pytest.raises(LatencyTableFormatError) as e:
        load_table(path)
    assert str(path) in str(e.value) and why in str(e.value)
    budget = ["--budget", "100M-flops", "--evaluator", "params", "--evaluations", "2"]
    code, _, err = cli("search", "--space", "mobilenet:cifar", *budget, "--latency-table", str(path))
    _one_line_error(code, err, str(path))


# --- exported models and predict inputs -----------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A model folder as `nasx export` writes one: ``model.stablehlo`` (jax.export, any batch) and
    ``weights.npz`` (w0, w1), here of a linear classifier of 6x6x1 images into 3 classes."""
    folder = tmp_path_factory.mktemp("model")

    def forward(weights, x):
        w, b = weights
        return x.reshape(x.shape[0], -1) @ w + b[None, :]

    weights = [np.linspace(-1, 1, 36 * 3, dtype=np.float32).reshape(36, 3), np.zeros(3, np.float32)]
    specs = (
        [jax.ShapeDtypeStruct(w.shape, w.dtype) for w in weights],
        jax.ShapeDtypeStruct(jax.export.symbolic_shape("b, 6, 6, 1"), jnp.float32),
    )
    exported = jax.export.export(jax.jit(forward), platforms=("cpu",))(*specs)
    (folder / "model.stablehlo").write_bytes(exported.serialize())
    np.savez(folder / "weights.npz", w0=weights[0], w1=weights[1])
    return folder


@pytest.fixture
def images(tmp_path: Path) -> Path:
    path = tmp_path / "images.npy"
    np.save(path, np.random.default_rng(0).normal(size=(4, 6, 6, 1)).astype(np.float32))
    return path


def test_intact_model_predicts(model_dir: Path, images: Path, cli) -> None:
    done = predict(PredictRequest(model_dir, images))
    assert done.logits.shape == (4, 3) and done.classes.shape == (4,)
    code, out, err = cli("predict", str(model_dir), "--input", str(images))
    assert code == 0, err
    assert len(out.splitlines()) == 4


def _cut(path: Path, keep: float) -> None:
    path.write_bytes(path.read_bytes()[: int(len(path.read_bytes()) * keep)])


MODEL_DAMAGE = {
    "weights cut": (lambda d: _cut(d / "weights.npz", 0.5), "weights.npz", "damaged or not an .npz"),
    "weights empty": (lambda d: _cut(d / "weights.npz", 0), "weights.npz", "damaged or not an .npz"),
    "weights missing": (lambda d: (d / "weights.npz").unlink(), "weights.npz", "does not exist"),
    "weights a .npy": (
        lambda d: np.save(d / "weights.npy", np.zeros(3)) or (d / "weights.npy").rename(d / "weights.npz"),
        "weights.npz",
        "single .npy",
    ),
    "weights NaN": (
        lambda d: np.savez(
            d / "weights.npz", w0=np.full((36, 3), np.nan, np.float32), w1=np.zeros(3, np.float32)
        ),
        "weights.npz",
        "w0 holds 108 NaN",
    ),
    "weights of another export": (
        lambda d: np.savez(d / "weights.npz", w0=np.zeros((36, 4), np.float32), w1=np.zeros(3, np.float32)),
        "weights.npz",
        "different exports",
    ),
    "weights one too few": (
        lambda d: np.savez(d / "weights.npz", w0=np.zeros((36, 3), np.float32)),
        "weights.npz",
        "holds 1 arrays but",
    ),
    "model cut": (
        lambda d: _cut(d / "model.stablehlo", 0.5),
        "model.stablehlo",
        "damaged or not a serialized",
    ),
    "model empty": (lambda d: _cut(d / "model.stablehlo", 0), "model.stablehlo", "is empty"),
    "model garbage": (
        lambda d: (d / "model.stablehlo").write_bytes(bytes(range(256)) * 4),
        "model.stablehlo",
        "damaged",
    ),
}


@pytest.mark.parametrize("case", MODEL_DAMAGE, ids=list(MODEL_DAMAGE))
def test_damaged_exported_model_names_the_file(
    model_dir: Path, images: Path, tmp_path: Path, case: str, cli
) -> None:
    damage, name, why = MODEL_DAMAGE[case]
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    damage(folder)
    with pytest.raises(ModelFileError, match=why) as e:
        load_model(folder)
    assert str(folder / name) in str(e.value)
    _one_line_error(*cli("predict", str(folder), "--input", str(images))[::2], name)


def _npy(tmp_path: Path, array: np.ndarray) -> Path:
    path = tmp_path / "input.npy"
    np.save(path, array, allow_pickle=True)
    return path


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


BAD_INPUTS = {
    "object array": (lambda t: _npy(t, np.array([{"a": 1}, None], dtype=object)), "Python objects"),
    "not an array": (lambda t: _written(t / "notes.npy", b"hello"), "not a .npy array"),
    "an .npz": (lambda t: _npz(t / "x.npz", x=np.zeros((2, 6, 6, 1))), ".npz archive (arrays: x)"),
    "a folder": (lambda t: t, "is a folder"),
    "missing": (lambda t: t / "nope.npy", "does not exist"),
    "NaN images": (lambda t: _npy(t, np.full((2, 6, 6, 1), np.nan, np.float32)), "72 NaN or infinite"),
    "infinite pixel": (
        lambda t: _npy(t, np.where(np.arange(72).reshape(2, 6, 6, 1) == 40, np.inf, 0).astype(np.float32)),
        "the first in image 1",
    ),
    "strings": (lambda t: _npy(t, np.array(["a", "b"])), "dtype <U1"),
    "booleans": (lambda t: _npy(t, np.zeros((2, 6, 6, 1), bool)), "dtype bool"),
    "complex": (lambda t: _npy(t, np.zeros((2, 6, 6, 1), np.complex64)), "dtype complex64"),
    "wrong size": (lambda t: _npy(t, np.zeros((2, 8, 8, 1), np.float32)), "shape (2, 8, 8, 1); expected"),
    "no channel axis": (lambda t: _npy(t, np.zeros((5, 6, 6), np.float32)), "images[..., None]"),
    "2-D": (lambda t: _npy(t, np.zeros((6, 6), np.float32)), "shape (6, 6); expected"),
    "no images": (lambda t: _npy(t, np.zeros((0, 6, 6, 1), np.float32)), "holds no images"),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_predict_input_is_one_line(model_dir: Path, tmp_path: Path, case: str, cli) -> None:
    make, why = BAD_INPUTS[case]
    path = make(tmp_path)
    with pytest.raises(PredictInputError, match=re.escape(why)):
        predict(PredictRequest(model_dir, path))
    _one_line_error(*cli("predict", str(model_dir), "--input", str(path))[::2], str(path))


@pytest.mark.parametrize(
    ("array", "why"),
    [
        (np.arange(72, dtype=np.uint8).reshape(2, 6, 6, 1), "holds uint8 images (values 0 to 71)"),
        (np.zeros((6, 6, 1), np.float32), "read as one HWC image"),
    ],
    ids=["integers", "one HWC image"],
)
def test_odd_predict_input_runs_with_a_warning(
    model_dir: Path, tmp_path: Path, array: np.ndarray, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="nasx.jobs.predict"):
        done = predict(PredictRequest(model_dir, _npy(tmp_path, array)))
    assert done.logits.shape == ((array.shape[0] if array.ndim == 4 else 1), 3)
    assert [r.getMessage() for r in caplog.records if why in r.getMessage()]


# --- checkpoints ----------------------------------------------------------------------------------


def _damage_step(folder: Path, step: int, how: str) -> None:
    """Cut (or delete) the largest array file of checkpoint `step`, or cut its metadata."""
    if how == "meta":
        (folder / str(step) / "meta" / "metadata").write_text('{"spa')
        return
    data = max((folder / str(step) / "state").rglob("d/*"), key=lambda p: p.stat().st_size)
    if how == "cut":
        data.write_bytes(data.read_bytes()[:100])
    else:
        data.unlink()


def _train(out: Path, *, steps: int = 4, resume: bool = False) -> dict:
    """`nasx.train.run_steps` on a toy state (a real Orbax checkpoint every 2 steps, no network)."""
    config = TrainConfig(steps=steps, checkpoint_every=2, log_every=1)

    def advance(state, step):
        return {"w": state["w"] + 1.0}, {"loss": 1.0 / (step + 1)}

    state, _ = run_steps(
        {"w": jnp.zeros(3)}, advance, config, meta={"space": "toy"}, out_dir=out, resume=resume
    )
    return state


@pytest.mark.parametrize("how", ["cut", "delete", "meta"])
def test_damaged_latest_checkpoint_falls_back_and_training_resumes(
    tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    _train(tmp_path, steps=4)
    folder = tmp_path / "checkpoints"
    _damage_step(folder, 4, how)
    with caplog.at_level(logging.WARNING, logger="nasx.checkpoint"), Checkpointer(folder) as ckpt:
        step, state, _ = ckpt.restore({"w": jnp.zeros(3)})
    assert step == 2 and float(state["w"][0]) == 2.0
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert f'"{folder}" step 4 is damaged' in warning and "falling back to step 2" in warning
    # resumed from step 2: steps 3 and 4 run again, the damaged step 4 is set aside, not overwritten
    state = _train(tmp_path, steps=4, resume=True)
    assert float(state["w"][0]) == 4.0
    assert (folder / "4.damaged").is_dir()
    with Checkpointer(folder) as ckpt:
        assert ckpt.steps() == [4, 2] and ckpt.restore({"w": jnp.zeros(3)})[0] == 4


def test_every_checkpoint_damaged_is_one_error(tmp_path: Path) -> None:
    _train(tmp_path, steps=4)
    folder = tmp_path / "checkpoints"
    _damage_step(folder, 4, "cut")
    _damage_step(folder, 2, "delete")
    with pytest.raises(CheckpointDamagedError) as e, Checkpointer(folder) as ckpt:
        ckpt.restore({"w": jnp.zeros(3)})
    message = str(e.value)
    assert "step 4 is damaged" in message and "step 2 is damaged" in message and "\n" not in message
    assert "no earlier intact checkpoint" in message
    with pytest.raises(CheckpointDamagedError, match="step 4 is damaged"), Checkpointer(folder) as ckpt:
        ckpt.restore({"w": jnp.zeros(3)}, step=4)  # a step asked by number: no fallback


@pytest.fixture
def damaged_supernet(tiny_supernet: tuple[Path, dict], tmp_path: Path):
    """``damaged_supernet(*steps)``: a copy of the tiny supernet run with those checkpoint steps cut."""

    def make(*steps: int) -> Path:
        out = tmp_path / "supernet"
        shutil.copytree(tiny_supernet[0], out)
        for step in steps:
            _damage_step(out / "checkpoints", step, "cut")
        return out

    return make


def test_supernet_with_a_damaged_latest_step_loads_the_previous(
    damaged_supernet, caplog: pytest.LogCaptureFixture
) -> None:
    from nasx.jobs.trained import load_supernet

    out = damaged_supernet(200)
    with caplog.at_level(logging.WARNING, logger="nasx.checkpoint"):
        trained = load_supernet(str(out))
    assert trained.meta["step"] == 100
    assert any("step 200 is damaged" in r.getMessage() for r in caplog.records)


def test_search_on_a_damaged_supernet_warns_once(damaged_supernet, cli) -> None:
    """The checkpoint is read twice (the space, then the weights); the fallback is said once."""
    out = damaged_supernet(200)
    search = ["search", "--space", "mobilenet:cifar", "--budget", "100M-flops", "--evaluations", "2"]
    code, _, err = cli(*search, "--evaluator", f"supernet:{out}", "--out", str(out / "search"))
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("nasx: warning:")]
    assert len([w for w in warnings if "step 200 is damaged" in w]) == 1, err


def test_supernet_with_every_step_damaged_is_one_line(damaged_supernet, tiny_train_argv, cli) -> None:
    out = damaged_supernet(100, 200)
    search = ["search", "--space", "mobilenet:cifar", "--budget", "100M-flops", "--evaluations", "2"]
    code, _, err = cli(*search, "--evaluator", f"supernet:{out}", "--out", str(out / "search"))
    _one_line_error(code, err, str(out / "checkpoints"), "step 200", "step 100")
    code, _, err = cli(*tiny_train_argv, "--out", str(out), "--resume")
    _one_line_error(code, err, str(out / "checkpoints"), "step 200", "step 100")


def test_errors_here_are_nasx_errors() -> None:
    for kind in (
        RunLogError,
        CheckpointDamagedError,
        ModelFileError,
        PredictInputError,
        LatencyTableFormatError,
    ):
        assert issubclass(kind, NasxError)
