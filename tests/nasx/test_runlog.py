"""The run log: appended and flushed per record, read back exactly, torn last line tolerated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nasx.runlog import Evaluation, RunLog, RunLogError, read_runlog
from nasx.space import Arch


def _evaluation(i: int, score: float | None = 1.5) -> Evaluation:
    return Evaluation(
        index=i,
        arch=Arch({"a": i, "b": "x"}),
        costs={"macs": 10 * i, "params": i},
        scores={"synflow": score if score is not None else float("nan")},
        objectives=(score,),
        status="ok" if score is not None else "rejected",
    )


def test_round_trip_and_nan_as_null(tmp_path: Path) -> None:
    path = tmp_path / "runlog.jsonl"
    with RunLog(path) as log:
        log.append(_evaluation(0))
        log.append(_evaluation(1, None))
    records = read_runlog(path)
    assert [r.index for r in records] == [0, 1]
    assert records[0] == _evaluation(0)
    assert records[1].scores == {"synflow": None} and records[1].objectives == (None,)
    assert json.loads(path.read_text().splitlines()[0])["fingerprint"] == Arch({"a": 0, "b": "x"}).fingerprint


def test_each_record_is_on_disk_before_close(tmp_path: Path) -> None:
    path = tmp_path / "runlog.jsonl"
    log = RunLog(path)
    log.append(_evaluation(0))
    assert len(read_runlog(path)) == 1  # readable while the writer is still open
    log.close()


def test_torn_last_line_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "runlog.jsonl"
    with RunLog(path) as log:
        log.extend([_evaluation(0), _evaluation(1)])
    path.write_text(path.read_text() + '{"index": 2, "arch": {"a"')
    assert [r.index for r in read_runlog(path)] == [0, 1]


def test_corruption_before_the_end_raises(tmp_path: Path) -> None:
    path = tmp_path / "runlog.jsonl"
    path.write_text("garbage\n" + json.dumps(_evaluation(0).to_dict()) + "\n")
    with pytest.raises(RunLogError, match=f'run log "{path}" line 1: not JSON'):
        read_runlog(path)
