"""Where jobs write: output folders checked before any work, locked while written, files replaced whole.

Every job with an ``--out`` folder (search, train-supernet, train, export, benchmark, sweep) calls
`claim` before it loads data or compiles anything::

    with claim(out, "search", resume=False) as folder:
        ...  # only this process writes `folder` until the block ends

`claim` refuses, with one `RunFolderError` line naming the folder and the fix, an ``--out`` that is
a file, cannot be created or written, is a non-empty folder that is not a nasx run of that kind, or
(for the kinds resumed with ``--resume``) holds a run when none is resumed or none when one is. It
then holds an exclusive ``flock`` on ``FOLDER/.lock`` (which records the kind and the holder's pid)
until the block ends; a second process writing the same folder is refused (`OutputBusyError`). The
OS drops the lock when its holder dies, ``kill -9`` included, so a crashed run never blocks a rerun.
`claim_file` does the same for a job whose output is one file (``nasx profile --out LUT.json``).

`write_text`, `write_json`, `write_bytes` and `atomic` write a file as a temporary one renamed over
it (``os.replace``), so a killed process leaves the previous version or the new one, never half.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from nasx.errors import RunFolderError

__all__ = [
    "KINDS",
    "LOCK_NAME",
    "FolderKind",
    "OutputBusyError",
    "check",
    "claim",
    "claim_file",
    "atomic",
    "write_bytes",
    "write_text",
    "write_json",
]

LOCK_NAME = ".lock"
"""The lock file of a claimed folder (kept: it also records which kind of run the folder holds)."""


class OutputBusyError(RunFolderError):
    """Another process is writing the same output folder (or file) right now."""


@dataclass(frozen=True)
class FolderKind:
    """A kind of output folder and how to recognize one written before folders had a ``.lock``.

    Attributes:
      name: the kind (the command that writes it).
      label: what the folder holds, for messages (``search run``).
      marks: names (files or folders) only a folder of this kind holds.
      resumable: the job takes ``--resume``: a started run must be resumed, and only one can be.
    """

    name: str
    label: str
    marks: tuple[str, ...]
    resumable: bool = False


_TRAINING_MARKS = ("checkpoints", "metrics.jsonl")

KINDS: dict[str, FolderKind] = {
    k.name: k
    for k in (
        FolderKind("search", "search run", ("runlog.jsonl", "config.json", "front.json", "best.json"), True),
        FolderKind("train-supernet", "supernet training run", _TRAINING_MARKS, True),
        FolderKind("train", "training run", (*_TRAINING_MARKS, "arch.json"), True),
        FolderKind("export", "exported model or family", ("family.json", "members", "model.stablehlo")),
        FolderKind("benchmark", "benchmark run", ("proxy_scores.jsonl", "report.json")),
        FolderKind("sweep", "sweep", ("sweep.json", "ray")),
    )
}
"""The kinds `claim` knows, by name."""


def _started(kind: FolderKind, folder: Path) -> str | None:
    """What makes `folder` a run to resume (for messages), or None: a search's run log, a training
    run's committed checkpoint (an Orbax step folder, named by its step)."""
    if kind.name == "search":
        return "a run log" if (folder / "runlog.jsonl").is_file() else None
    steps = [int(p.name) for p in _entries(folder / "checkpoints") if p.name.isdigit()]
    return f"a checkpoint at step {max(steps)}" if steps else None


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


def _lock_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def _kind_of(folder: Path, kind: FolderKind) -> str | None:
    """The kind of run `folder` holds according to its lock file, else its files (None: no nasx run)."""
    recorded = _lock_record(folder / LOCK_NAME).get("kind")
    if isinstance(recorded, str) and recorded in KINDS:
        return recorded
    names = {p.name for p in _entries(folder)}
    if names & set(kind.marks):
        return kind.name
    for other in KINDS.values():
        if names & set(other.marks):
            return other.name
    if kind.name == "export" and any(_is_member_folder(p) for p in _entries(folder)):
        return kind.name
    return None


def _is_member_folder(path: Path) -> bool:
    """``01-89eb94648e7cafc2``: a standalone export's member folder."""
    rank, _, rest = path.name.partition("-")
    return path.is_dir() and rank.isdigit() and bool(rest)


def _display(flag: str, path: Path) -> str:
    return f'{flag} "{path}"' if flag else f'"{path}"'


def check(
    out: str | Path, kind: str, *, resume: bool = False, flag: str = "--out", _locked: bool = False
) -> Path:
    """`out` made absolute, if a run of `kind` may be written there; nothing is created or locked.

    Raises:
      OutputBusyError: another process is writing the folder (holds its lock).
      RunFolderError: `out` is a file, a non-empty folder holding no nasx run of `kind` (or one of
        another kind), holds a started run and `resume` is False (for resumable kinds), or holds
        none and `resume` is True.
    """
    spec = KINDS[kind]
    folder = Path(out).expanduser().resolve()
    where = _display(flag, folder)
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(
            f"{where} is a file, not a folder; remove it or choose another {flag or 'folder'}"
        )
    if not _locked:
        _refuse_if_held(folder / LOCK_NAME, where)
    contents = [p for p in _entries(folder) if p.name != LOCK_NAME]
    found = _kind_of(folder, spec) if folder.is_dir() else None
    if found is not None and found != kind:
        raise RunFolderError(
            f"{where} holds a nasx {KINDS[found].label} ({found}), not a {spec.label}; choose another "
            f"{flag or 'folder'}"
        )
    if contents and found is None:
        shown = ", ".join(p.name for p in contents[:3]) + (", ..." if len(contents) > 3 else "")
        raise RunFolderError(
            f"{where} is not empty ({shown}) and holds no nasx {spec.label}; choose a new or empty "
            f"{flag or 'folder'}"
        )
    if spec.resumable:
        started = _started(spec, folder) if folder.is_dir() else None
        if started and not resume:
            raise RunFolderError(
                f"{where} already holds a {spec.label} ({started}); add --resume to continue it or "
                f"choose another {flag or 'folder'}"
            )
        if resume and not started:
            if not folder.exists():
                why = "it does not exist"
            elif not contents:
                why = "it is empty"
            else:
                why = (
                    "no run log yet" if kind == "search" else "no checkpoint yet: it stopped before the first"
                )
            raise RunFolderError(
                f"{where} holds no {spec.label} to resume ({why}); drop --resume to start one"
            )
    return folder


@contextlib.contextmanager
def claim(out: str | Path, kind: str, *, resume: bool = False, flag: str = "--out") -> Iterator[Path]:
    """Check `out` (`check`), create it, and hold its lock until the block ends; yields the folder.

    A folder this call created is removed again if the block fails before writing anything in it.

    Raises:
      RunFolderError: see `check`; also a folder that cannot be created or written.
      OutputBusyError: another process holds the folder's lock.
    """
    folder = check(out, kind, resume=resume, flag=flag)
    where = _display(flag, folder)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunFolderError(
            f"{where} cannot be created ({e.strerror or type(e).__name__}: {e.filename or folder}); "
            f"choose a folder you can write"
        ) from None
    lock_path = folder / LOCK_NAME
    had_lock = lock_path.exists()
    failed = True
    with _Lock(lock_path, where, kind):
        try:
            check(folder, kind, resume=resume, flag=flag, _locked=True)  # again: nobody else writes now
            _remove_stale_temporaries(folder)
            yield folder
            failed = False
        finally:
            if failed and (created or not had_lock) and not _entries_but_lock(folder):
                lock_path.unlink(missing_ok=True)
                if created:
                    with contextlib.suppress(OSError):
                        folder.rmdir()


def _refuse_if_held(path: Path, where: str) -> None:
    """`OutputBusyError` if another open file holds the lock `path` (it is not taken here)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # no lock file: nobody holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise _busy(path, where) from None
    finally:
        os.close(fd)  # closing drops a shared lock taken above


def _busy(path: Path, where: str) -> OutputBusyError:
    holder = _lock_record(path).get("pid", "unknown")
    return OutputBusyError(
        f"{where} is being written by another nasx process (pid {holder}); wait for it to end or "
        "choose another output"
    )


def _entries_but_lock(folder: Path) -> list[Path]:
    return [p for p in _entries(folder) if p.name != LOCK_NAME]


@contextlib.contextmanager
def claim_file(path: str | Path, *, flag: str = "--out", example: str = "lut.json") -> Iterator[Path]:
    """Hold the lock of the output file `path` (``.NAME.lock`` beside it, deleted when the block
    ends) until the block ends; yields `path` made absolute.

    Raises:
      RunFolderError: `path` is a folder, or its folder cannot be created or written.
      OutputBusyError: another process is writing `path`.
    """
    file = Path(path).expanduser().resolve()
    where = _display(flag, file)
    if file.is_dir():
        raise RunFolderError(f"{where} is a folder; give a file name, e.g. {file / example}")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunFolderError(
            f"{where}: its folder cannot be created ({e.strerror or type(e).__name__}: "
            f"{e.filename or file.parent}); choose a folder you can write"
        ) from None
    with _Lock(file.with_name(f".{file.name}.lock"), where, "file", remove=True):
        yield file


class _Lock:
    """An exclusive, non-blocking ``flock`` on `path`, recording the holder's pid and `kind`;
    with `remove`, the file is deleted on release (before the lock is dropped)."""

    def __init__(self, path: Path, where: str, kind: str, *, remove: bool = False) -> None:
        self.path, self.where, self.kind, self.remove = path, where, kind, remove
        self.fd: int | None = None

    def __enter__(self) -> _Lock:
        while True:
            fd = self._open_locked()
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # a releasing holder deleted the file we locked: lock the new one
        record = {"kind": self.kind, "pid": os.getpid(), "host": os.uname().nodename, "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        self.fd = fd
        return self

    def _open_locked(self) -> int:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise RunFolderError(
                f"{self.where} cannot be written ({e.strerror or type(e).__name__}: {self.path}); "
                "choose a folder you can write"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunFolderError(f"{self.where} cannot be locked ({e.strerror}: {self.path})") from None
            raise _busy(self.path, self.where) from None
        return fd

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            if self.remove:
                self.path.unlink(missing_ok=True)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


_TEMPORARY = re.compile(r"^\..+\.\d+\.tmp$")
"""The name `atomic` gives its temporary file: ``.NAME.PID.tmp``."""


def _remove_stale_temporaries(folder: Path, depth: int = 2) -> None:
    """Temporary files `atomic` left in `folder` (and its subfolders, to `depth` levels: an export's
    members) when its process was killed; the lock is ours, so no other process is writing them."""
    for p in _entries(folder):
        if _TEMPORARY.match(p.name) and p.is_file():
            p.unlink(missing_ok=True)
        elif (
            depth and p.is_dir() and not p.is_symlink() and p.name not in ("ray", "checkpoints", "checkpoint")
        ):
            _remove_stale_temporaries(p, depth - 1)


@contextlib.contextmanager
def atomic(path: str | Path) -> Iterator[IO[bytes]]:
    """A binary file to write `path` through: on success it replaces `path` whole (``os.replace``);
    on failure, or if the process is killed, `path` keeps its previous content."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically (see `atomic`)."""
    with atomic(path) as f:
        f.write(data)


def write_text(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically (see `atomic`)."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any, *, indent: int | None = 2) -> None:
    """Write `obj` as JSON (and a final newline) to `path` atomically (see `atomic`)."""
    write_text(path, json.dumps(obj, indent=indent) + "\n")
