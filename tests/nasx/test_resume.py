"""`nasx search --resume` after a real ``kill -9`` of the search process: nothing lost, nothing
evaluated twice, and the finished run log is the uninterrupted run's, byte for byte."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from nasx.cli import main

EVALUATIONS = 600
SEARCH = ["search", "--space", "mobilenet", "--budget", "300M-flops", "--seed", "5"]
SEARCH += ["--evaluations", str(EVALUATIONS), "--batch-size", "8", "--json"]


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_kill_9_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path: Path, capsys) -> None:
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "nasx.cli", *SEARCH, "--out", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    log = killed / "runlog.jsonl"
    deadline = time.monotonic() + 120
    while len(_lines(log)) < 40 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    survived = len(_lines(log))
    assert 40 <= survived < EVALUATIONS, f"the kill came at {survived} records: the test proves nothing"

    assert main([*SEARCH, "--out", str(killed), "--resume"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert main([*SEARCH, "--out", str(tmp_path / "whole")]) == 0
    whole = json.loads(capsys.readouterr().out)

    records = [json.loads(line) for line in _lines(log)]
    assert [r["index"] for r in records] == list(range(EVALUATIONS))  # nothing lost or repeated
    assert log.read_text() == (tmp_path / "whole" / "runlog.jsonl").read_text()
    # every record that survived the kill was read back, not evaluated again (a torn last line is
    # evaluated again: it was never complete)
    assert survived - 1 <= resumed["resumed"] <= survived
    assert resumed["best"] == whole["best"] and resumed["evaluated"] == EVALUATIONS
