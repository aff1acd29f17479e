"""The run log: one JSON line per evaluated architecture, appended and flushed as it happens.

A search never keeps results only in memory: every evaluation (or failure) is written to
``RUN_DIR/runlog.jsonl`` and flushed to disk before the strategy sees it, so a crash or a kill
loses at most the evaluation in flight. Reading tolerates a torn last line (a kill mid-write).

A record::

    {"index": 7, "arch": {...}, "fingerprint": "3f2a...", "costs": {"macs": ..., ...},
     "scores": {"synflow": 41.2}, "objectives": [41.2], "status": "ok"}

Records hold no wall-clock times, so a seeded run writes the same log byte for byte.

``status`` is ``"ok"``, ``"failed"`` (the evaluation raised) or ``"rejected"`` (the evaluator gave no
finite objective, e.g. DeepMAD entropy beyond the effectiveness bound); ``"error"`` says why.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from nasx.space import Arch

__all__ = ["Evaluation", "RunLog", "read_runlog", "recover_runlog", "cut_torn_tail", "RUNLOG_NAME"]

RUNLOG_NAME = "runlog.jsonl"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluation:
    """One evaluated architecture: its costs, its scores and the objectives told to the strategy."""

    index: int
    arch: Arch
    costs: Mapping[str, float]
    scores: Mapping[str, float]
    objectives: tuple[float | None, ...]
    status: str = "ok"
    error: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "arch": self.arch.to_dict(),
            "fingerprint": self.arch.fingerprint,
            "costs": dict(self.costs),
            "scores": dict(self.scores),
            "objectives": list(self.objectives),
            "status": self.status,
        }
        if self.error is not None:
            out["error"] = self.error
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evaluation:
        known = {"index", "arch", "fingerprint", "costs", "scores", "objectives", "status", "error"}
        return cls(
            index=int(data["index"]),
            arch=Arch(data["arch"]),
            costs=dict(data.get("costs", {})),
            scores=dict(data.get("scores", {})),
            objectives=tuple(data.get("objectives", ())),
            status=str(data.get("status", "ok")),
            error=data.get("error"),
            extra={k: v for k, v in data.items() if k not in known},
        )


def _finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN/inf: a failed value is written as null."""
    if value is None:
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


class RunLog:
    """Append-only writer of a run log; use as a context manager.

    Every `append` writes one line, flushes it and asks the OS to put it on disk (``fsync``), so
    a record that `append` returned from survives a kill of the process.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO = self.path.open("a", encoding="utf-8")

    def append(self, evaluation: Evaluation) -> None:
        record = evaluation.to_dict()
        record["scores"] = {k: _finite_or_none(v) for k, v in record["scores"].items()}
        record["objectives"] = [_finite_or_none(v) for v in record["objectives"]]
        self._file.write(json.dumps(record, sort_keys=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def extend(self, evaluations: Sequence[Evaluation]) -> None:
        for e in evaluations:
            self.append(e)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_runlog(path: str | Path) -> list[Evaluation]:
    """Every complete record of a run log, in order; a torn last line (killed mid-write) is dropped."""
    return list(_records(Path(path)))


def _records(path: Path) -> Iterator[Evaluation]:
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield Evaluation.from_dict(json.loads(line))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            if number == len(lines):
                log.warning("%s: dropping a torn last line (the run was killed mid-write)", path)
                return
            raise


def cut_torn_tail(path: str | Path) -> None:
    """Cut off what follows the last newline of a JSON-lines file: a record killed mid-write (every
    record is written with its newline), so appends stay valid. Nothing else is touched."""
    path = Path(path)
    if path.exists():
        data = path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            log.warning("%s: dropping a torn last line (the run was killed mid-write)", path)
            with path.open("r+b") as f:
                f.truncate(end)


def recover_runlog(path: str | Path) -> list[Evaluation]:
    """The complete records of a run log, after cutting off a torn last line so appends stay valid."""
    cut_torn_tail(path)
    return read_runlog(path)
