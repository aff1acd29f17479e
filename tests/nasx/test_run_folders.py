"""Output folders (`nasx.outputs`): checked before any work, locked while written, files written whole.

Every command with ``--out`` is tried with an unwritable path, a file, a folder of something else and
``--resume`` without a run: exit 2, one line naming the path, nothing created. Two processes on one
folder: the second is refused with the holder's pid, and a ``kill -9`` of the holder frees it. A
``kill -9`` in the middle of an atomic write leaves the previous file; one in the middle of
``nasx benchmark nb201`` leaves a folder the rerun completes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from nasx import outputs
from nasx.errors import RunFolderError
from nasx.outputs import OutputBusyError

REPO = Path(__file__).resolve().parents[2]
UNWRITABLE = "/proc/nasx-test/run"

COMMANDS = {
    "search": ["search", "--space", "nb201", "--budget", "100M-flops", "--evaluations", "6"],
    "train-supernet": [
        "train-supernet",
        "--space",
        "mobilenet:cifar",
        "--width-mult",
        "0.25",
        "--steps",
        "4",
    ],
    "train": ["train", "--arch", "nb201-resnet", "--space", "nb201", "--steps", "2"],
    "profile": ["profile", "--space", "mobilenet:cifar", "--width-mult", "0.25", "--repeats", "1"],
    "sweep": ["sweep", "--space", "nb201", "--budgets", "100M-flops", "--evaluations", "4"],
}
RESUMABLE = ("search", "train-supernet", "train")


def _prepare(tmp_path: Path, case: str) -> Path:
    out = tmp_path / "out"
    if case == "file":
        out.write_text("not a folder\n")
    elif case == "foreign":
        out.mkdir()
        (out / "notes.txt").write_text("someone else's\n")
    elif case == "empty":
        out.mkdir()
    return out


def _one_line_error(code: int, err: str, culprit: str) -> None:
    assert code == 2, err
    assert err.startswith("nasx: error:") and len(err.strip().splitlines()) == 1, err
    assert culprit in err and "Traceback" not in err


def _snapshot(path: Path) -> list[str]:
    if not path.exists():
        return []
    if path.is_file():
        return [path.read_text()]
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


CASES = [
    (command, case)
    for command in COMMANDS
    for case in ("unwritable", "file", "foreign")
    + (("resume-missing", "resume-empty") if command in RESUMABLE else ())
]


@pytest.mark.parametrize(("command", "case"), CASES)
def test_bad_out_is_one_line_and_leaves_nothing(cli, tmp_path: Path, command: str, case: str) -> None:
    out = Path(UNWRITABLE) if case == "unwritable" else _prepare(tmp_path, case)
    before = _snapshot(out)
    argv = [*COMMANDS[command], "--out", str(out)]
    if case.startswith("resume"):
        argv.append("--resume")
    if command == "profile" and case == "file":
        argv += ["--resolution", "8"]  # the table's own check: not JSON
    code, _, err = cli(*argv)
    _one_line_error(code, err, str(out))
    expected = {
        "unwritable": "cannot be created",
        "file": "not valid JSON" if command == "profile" else "is a file",
        "foreign": "is a folder" if command == "profile" else "holds no nasx",
        "resume-missing": "to resume",
        "resume-empty": "to resume",
    }[case]
    assert expected in err
    assert _snapshot(out) == before  # nothing created, nothing left behind (no .lock)


def _training_run(tmp_path: Path) -> Path:
    """What `nasx export` recognises as a `nasx train` folder (it is checked before it is read)."""
    run = tmp_path / "trained"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"kind": "standalone-training"}))
    return run


@pytest.mark.parametrize("case", ["unwritable", "file", "foreign"])
def test_export_bad_out_is_one_line(cli, tmp_path: Path, case: str) -> None:
    out = Path(UNWRITABLE) if case == "unwritable" else _prepare(tmp_path, case)
    code, _, err = cli("export", str(_training_run(tmp_path)), "--out", str(out))
    _one_line_error(code, err, str(out))


@pytest.mark.parametrize("case", ["unwritable", "file", "foreign"])
def test_benchmark_bad_out_is_one_line(cli, nb201_csv: Path, tmp_path: Path, case: str) -> None:
    out = Path(UNWRITABLE) if case == "unwritable" else _prepare(tmp_path, case)
    code, _, err = cli("benchmark", "nb201", "--table", str(nb201_csv), "-n", "4", "--out", str(out))
    _one_line_error(code, err, str(out))


# --- the library: check, claim, kinds ------------------------------------------------------------


def test_a_folder_of_another_kind_is_refused_by_name(tmp_path: Path) -> None:
    with outputs.claim(tmp_path / "run", "search") as folder:
        (folder / "runlog.jsonl").write_text("")
    with pytest.raises(RunFolderError, match=r"holds a nasx search run \(search\), not a training run"):
        outputs.check(tmp_path / "run", "train")
    # a folder written before folders had a .lock is recognised by its files
    legacy = tmp_path / "legacy"
    (legacy / "checkpoints" / "100").mkdir(parents=True)
    (legacy / "metrics.jsonl").write_text("")
    with pytest.raises(
        RunFolderError, match=r"already holds a supernet training run \(a checkpoint at step 100\)"
    ):
        outputs.check(legacy, "train-supernet")
    assert outputs.check(legacy, "train-supernet", resume=True) == legacy.resolve()
    with pytest.raises(RunFolderError, match="holds a nasx supernet training run"):
        outputs.check(legacy, "benchmark")


def test_a_run_killed_before_its_first_checkpoint_restarts_but_does_not_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints" / "2.orbax-checkpoint-tmp").mkdir(parents=True)  # a save a kill cut short
    (run / "metrics.jsonl").write_text("")
    with pytest.raises(RunFolderError, match="no checkpoint yet"):
        outputs.check(run, "train-supernet", resume=True)
    assert outputs.check(run, "train-supernet") == run.resolve()


def test_claim_removes_the_folder_it_created_when_the_job_fails_before_writing(tmp_path: Path) -> None:
    class Invalid(Exception):
        pass

    with pytest.raises(Invalid), outputs.claim(tmp_path / "new" / "run", "search"):
        raise Invalid
    assert not (tmp_path / "new" / "run").exists()
    with pytest.raises(Invalid), outputs.claim(tmp_path / "kept", "search") as folder:
        (folder / "config.json").write_text("{}")
        raise Invalid
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "config.json"]


# --- the lock: a second process is refused; kill -9 frees it -------------------------------------

HOLD = """
import sys, time
from nasx import outputs
with outputs.claim(sys.argv[1], "search"):
    print("held", flush=True)
    time.sleep(600)
"""


def _holder(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLD), str(folder)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_is_refused_naming_the_holder_and_a_kill_9_frees_the_folder(
    cli, tmp_path: Path
) -> None:
    folder = tmp_path / "run"
    proc = _holder(folder)
    try:
        with (
            pytest.raises(OutputBusyError, match=f"pid {proc.pid}") as refused,
            outputs.claim(folder, "search"),
        ):
            pass
        assert str(folder) in str(refused.value)
        with pytest.raises(OutputBusyError, match=f"pid {proc.pid}"):  # busy, not "nothing to resume"
            outputs.check(folder, "search", resume=True)
        code, _, err = cli(*COMMANDS["search"], "--out", str(folder))
        _one_line_error(code, err, f"pid {proc.pid}")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with outputs.claim(folder, "search") as claimed:  # the OS dropped the dead holder's lock
        assert json.loads((claimed / ".lock").read_text())["pid"] == os.getpid()


def test_an_output_file_is_locked_beside_it_and_the_lock_file_goes_with_the_lock(tmp_path: Path) -> None:
    table = tmp_path / "lut.json"
    with outputs.claim_file(table) as path:
        assert path == table.resolve() and (tmp_path / ".lut.json.lock").exists()
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                f"from nasx import outputs\nwith outputs.claim_file({str(table)!r}): pass",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert (
            probe.returncode == 1
            and "OutputBusyError" in probe.stderr
            and f"pid {os.getpid()}" in probe.stderr
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# --- atomic writes -------------------------------------------------------------------------------


def test_a_failed_atomic_write_keeps_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    outputs.write_json(path, {"version": 1})
    with pytest.raises(ZeroDivisionError), outputs.atomic(path) as f:
        f.write(b'{"version": 2, "half')
        _ = 1 / 0
    assert json.loads(path.read_text()) == {"version": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]  # no temporary left


WRITE_AND_WAIT = """
import sys, time
from nasx import outputs
with outputs.atomic(sys.argv[1]) as f:
    f.write(b"x" * 1_000_000)
    f.flush()
    print("writing", flush=True)
    time.sleep(600)
"""


def test_a_kill_9_mid_write_leaves_the_previous_file_and_the_next_claim_sweeps_the_temporary(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    with outputs.claim(run, "benchmark"):
        outputs.write_json(run / "report.json", {"complete": True})
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WRITE_AND_WAIT), str(run / "report.json")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads((run / "report.json").read_text()) == {"complete": True}
    assert [p.name for p in run.iterdir() if p.name.endswith(".tmp")] == [f".report.json.{proc.pid}.tmp"]
    (run / "01-member").mkdir()
    (run / "01-member" / ".weights.npz.99.tmp").write_bytes(b"half")  # an export member's
    (run / "ray").mkdir()
    (run / "ray" / ".trial.99.tmp").write_bytes(b"Ray's own")  # not ours: left alone
    with outputs.claim(run, "benchmark"):
        assert not [p for p in run.rglob("*.tmp") if p.parent.name != "ray"]
        assert (run / "ray" / ".trial.99.tmp").exists()


# --- kill -9 of a real command, then the rerun ---------------------------------------------------


def test_kill_9_during_benchmark_nb201_then_the_rerun_completes_from_the_score_log(
    cli, nb201_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bench"
    argv = ["benchmark", "nb201", "--table", str(nb201_csv), "-n", "8", "--proxies", "synflow"]
    argv += ["--proxy-batch", "8", "--batch-size", "2", "--no-search", "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "nasx.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    scores = out / "proxy_scores.jsonl"
    deadline = time.monotonic() + 300
    while not (scores.exists() and scores.read_text().count("\n") >= 2) and proc.poll() is None:
        assert time.monotonic() < deadline, "no score was written in 5 minutes"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    survived = scores.read_text().count("\n")
    assert proc.returncode == -signal.SIGKILL and 2 <= survived < 8, f"killed with {survived} of 8 scores"
    assert not (out / "report.json").exists()

    code, stdout, err = cli(*argv, "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert report["proxies"]["n"] == 8 and json.loads((out / "report.json").read_text()) == report
    lines = scores.read_text().splitlines()
    cells = [json.loads(line)["cell"] for line in lines]
    assert len(cells) == len(set(cells)) == 8  # the killed run's scores kept, none computed twice


def test_kill_9_during_profile_leaves_a_whole_table_and_the_rerun_resumes_it(cli, tmp_path: Path) -> None:
    """`nasx profile --out` saves its table atomically after every block and resumes it: a kill -9
    mid-run leaves a table that parses (no half-written file), and the rerun completes it, keeping
    the blocks measured before the kill."""
    from nasx.hardware.latency import LatencyTable

    table = tmp_path / "table.json"
    argv = [*COMMANDS["profile"], "--out", str(table)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "nasx.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    deadline = time.monotonic() + 300
    while not table.exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "profile saved no block in 5 minutes"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "profile finished before the kill"
    before = LatencyTable.from_json(json.loads(table.read_text())).entries  # whole, not torn

    code, _, err = cli(*argv)
    assert code == 0, err
    after = LatencyTable.from_json(json.loads(table.read_text())).entries
    assert len(after) > len(before) and all(after[b] == ms for b, ms in before.items())
    assert not (tmp_path / ".table.json.lock").exists()
