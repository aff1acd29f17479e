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
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from nasx.errors import ArchFormatError, NasxError
from nasx.space import Arch

__all__ = [
    "Evaluation",
    "RunLog",
    "RunLogError",
    "read_runlog",
    "read_run_config",
    "recover_runlog",
    "cut_torn_tail",
    "RUNLOG_NAME",
]

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


class RunLogError(NasxError, ValueError):
    """A damaged file of a run folder: a run-log line other than a torn last one (the message names
    the line), or a ``config.json`` that is not a JSON object."""


_STATUSES = ("ok", "failed", "rejected")


def read_runlog(path: str | Path) -> list[Evaluation]:
    """Every complete record of a run log, in order; a torn last line (killed mid-write) is dropped.

    Raises:
      RunLogError: a line other than a torn last one is not a record (the file is left as it is).
    """
    return list(_records(Path(path)))


def _records(path: Path) -> Iterator[Evaluation]:
    if not path.exists():
        return
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RunLogError(f'run log "{path}" cannot be read ({e.strerror or e})') from None
    lines = data.split(b"\n")
    torn = lines.pop()  # what follows the last newline: empty, or a record killed mid-write
    if torn.strip():
        lines.append(torn)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield _parse(line)
        except _BadRecord as e:
            if number == len(lines) and torn.strip():
                log.warning("%s: dropping a torn last line (the run was killed mid-write)", path)
                return
            raise RunLogError(
                f'run log "{path}" line {number}: {e}; the file was left as it is: delete or repair that '
                f"line to keep the other records (sed -i '{number}d' {shlex.quote(str(path))}), or start "
                "a new run with another --out"
            ) from None


class _BadRecord(Exception):
    """A line that is not a run-log record (why, for the message)."""


def _number_or_none(value: object) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _parse(line: bytes) -> Evaluation:
    """One run-log line as an `Evaluation`, every field checked."""
    try:
        record = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise _BadRecord("not text (binary bytes)") from None
    except json.JSONDecodeError as e:
        raise _BadRecord(f"not JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(record, dict):
        raise _BadRecord(f"a JSON {type(record).__name__}, not a record (an object)")
    index = record.get("index")
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise _BadRecord(f'"index" is {index!r}; expected an integer >= 0')
    if not isinstance(record.get("arch"), dict):
        raise _BadRecord(f'"arch" is {record.get("arch")!r}; expected an object of choices')
    for key in ("costs", "scores"):
        value = record.get(key, {})
        if not isinstance(value, dict) or not all(_number_or_none(v) for v in value.values()):
            raise _BadRecord(f'"{key}" is {value!r}; expected an object of numbers')
    objectives = record.get("objectives", [])
    if not isinstance(objectives, list) or not all(_number_or_none(v) for v in objectives):
        raise _BadRecord(f'"objectives" is {objectives!r}; expected a list of numbers')
    status = record.get("status", "ok")
    if status not in _STATUSES:
        raise _BadRecord(f'"status" is {status!r}; expected one of {", ".join(_STATUSES)}')
    error = record.get("error")
    if error is not None and not isinstance(error, str):
        raise _BadRecord(f'"error" is {error!r}; expected a string')
    try:
        return Evaluation.from_dict(record)
    except ArchFormatError as e:
        raise _BadRecord(f'"arch": {e}') from None


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


def read_run_config(path: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a run folder (`path`: the file), checked to be a JSON object.

    Raises:
      RunLogError: the file is not UTF-8 JSON, or not an object (the file is left as it is).
    """
    path = Path(path)
    fix = (
        "the file was left as it is: repair it, or delete it and resume with the run's options (the "
        "run log is checked against them), or start a new run with another --out"
    )
    try:
        config = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as e:
        raise RunLogError(f'run config "{path}" cannot be read ({e.strerror or e})') from None
    except UnicodeDecodeError:
        raise RunLogError(f'run config "{path}" is not text (binary bytes); {fix}') from None
    except json.JSONDecodeError as e:
        raise RunLogError(
            f'run config "{path}" is not JSON ({e.msg} at line {e.lineno} column {e.colno}); {fix}'
        ) from None
    if not isinstance(config, dict):
        raise RunLogError(f'run config "{path}" is a JSON {type(config).__name__}, not an object; {fix}')
    return config
