"""Orbax checkpoints of a training state (any pytree) plus JSON metadata (space, config).

Saves are atomic (Orbax commits a step only when fully written) and waited for, so a run killed
at any moment resumes from its last complete checkpoint.

A committed step can still be damaged afterwards (a file truncated or deleted by a full disk, a
bad copy): reading it is checked, and any Orbax/TensorStore failure becomes one
`CheckpointDamagedError` line naming the folder and the step. Reading the latest step (no `step`
given) falls back to the newest intact earlier step, with a warning; a run that then saves again
first moves the damaged steps aside (``STEP.damaged``), so they are neither overwritten nor in the way.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from nasx.errors import NasxError

__all__ = ["Checkpointer", "CheckpointError", "CheckpointDamagedError"]

log = logging.getLogger(__name__)


class CheckpointError(NasxError, FileNotFoundError):
    """A checkpoint folder is missing or holds no complete checkpoint."""


class CheckpointDamagedError(CheckpointError, ValueError):
    """A checkpoint step cannot be read: a file of it is truncated, missing or not what was written."""


def _reason(error: BaseException) -> str:
    """The first line of the root cause of an Orbax/TensorStore failure (``raise ... from``: the
    outer errors wrap it, and run to hundreds of lines), kept short."""
    seen = {id(error)}
    while (inner := error.__cause__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        error = inner
    lines = str(error).strip().splitlines()
    first = lines[0] if lines else ""
    first = first if len(first) <= 200 else first[:197] + "..."
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def _is_resource_error(error: BaseException) -> bool:
    """Out of memory while restoring is not damage: let it through to the caller."""
    return isinstance(error, MemoryError) or "RESOURCE_EXHAUSTED" in str(error)


class Checkpointer:
    """Keeps the last `max_to_keep` checkpoints of a run in `directory` (made absolute)."""

    def __init__(self, directory: str | Path, *, max_to_keep: int = 2) -> None:
        self.directory = Path(directory).expanduser().resolve()
        self._manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        )
        self._damaged: set[int] = set()  # steps found damaged by a fallback: moved aside before a save

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def steps(self) -> list[int]:
        """Every committed step, newest first."""
        return sorted(self._manager.all_steps(), reverse=True)

    def save(self, step: int, state: Any, meta: dict[str, Any]) -> None:
        """Write `state` and `meta` as step `step` and wait until it is on disk.

        Raises:
          CheckpointError: the folder already holds step `step` or a later one (Orbax would skip
            the save without a word).
        """
        self._set_damaged_aside()
        saved = self._manager.save(
            step, args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        )
        self._manager.wait_until_finished()
        if not saved:
            raise CheckpointError(
                f'checkpoint "{self.directory}" already holds step {self.latest_step()}, not before '
                f"step {step}; resume the run (--resume) or use another --out"
            )

    def restore(
        self, like: Any, step: int | None = None, *, below: int | None = None
    ) -> tuple[int, Any, dict[str, Any]]:
        """(step, state, meta) of `step`, shaped like the pytree `like`.

        Without `step`, the latest step (at most `below`, if given); if it is damaged, the newest
        intact earlier one (a warning names the damaged step).

        Raises:
          CheckpointError: no committed step.
          CheckpointDamagedError: `step` (or, without `step`, every step) cannot be read.
        """
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)

        def read(s: int) -> tuple[int, Any, dict[str, Any]]:
            restored = self._manager.restore(
                s,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
                ),
            )
            return s, restored.state, self._checked_meta(restored.meta, s)

        return self._read(read, step, below)

    def meta(self, step: int | None = None) -> dict[str, Any]:
        """Only the metadata of a checkpoint (no arrays are read); without `step`, that of the latest
        step whose metadata reads (falling back as `restore` does)."""
        return self.read_meta(step)[1]

    def read_meta(self, step: int | None = None) -> tuple[int, dict[str, Any]]:
        """(step, metadata) as `meta` reads them: the step says which one was read."""

        def read(s: int) -> tuple[int, dict[str, Any]]:
            restored = self._manager.restore(s, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
            return s, self._checked_meta(restored.meta, s)

        return self._read(read, step)

    def _checked_meta(self, meta: Any, step: int) -> dict[str, Any]:
        if not isinstance(meta, dict):
            raise CheckpointDamagedError(
                f'checkpoint "{self.directory}" step {step}: its metadata is a {type(meta).__name__}, '
                "not a JSON object"
            )
        return dict(meta)

    def _read(self, read: Any, step: int | None, below: int | None = None) -> Any:
        if step is not None:
            if step not in self._manager.all_steps():
                raise CheckpointError(
                    f'checkpoint "{self.directory}" has no step {step}; it holds steps '
                    f"{', '.join(map(str, sorted(self.steps()))) or 'none'}"
                )
            return self._attempt(read, step)
        steps = [s for s in self.steps() if below is None or s <= below]
        if not steps:
            raise CheckpointError(f'no complete checkpoint in "{self.directory}"')
        failures: list[CheckpointDamagedError] = []
        for s in steps:
            try:
                value = self._attempt(read, s)
            except CheckpointDamagedError as e:
                failures.append(e)
                self._damaged.add(s)
                continue
            if failures:
                log.warning(
                    "%s; falling back to step %d, the newest intact one", "; ".join(map(str, failures)), s
                )
            return value
        raise CheckpointDamagedError(
            f"{'; '.join(map(str, failures))}; no earlier intact checkpoint to fall back to: train again "
            "with another --out (or restore the folder from a copy)"
        )

    def _attempt(self, read: Any, step: int) -> Any:
        try:
            return read(step)
        except CheckpointDamagedError:
            raise
        except Exception as e:  # Orbax and TensorStore raise every kind: ValueError, OSError, KeyError...
            if _is_resource_error(e):
                raise
            raise CheckpointDamagedError(
                f'checkpoint "{self.directory}" step {step} is damaged ({_reason(e)})'
            ) from None

    def _set_damaged_aside(self) -> None:
        """Move the steps a fallback found damaged to ``STEP.damaged`` (Orbax no longer lists them,
        so the steps after the one resumed from can be written again)."""
        if not self._damaged:
            return
        for s in sorted(self._damaged):
            folder = self.directory / str(s)
            if folder.exists():
                target = self.directory / f"{s}.damaged"
                k = 2
                while target.exists():
                    target, k = self.directory / f"{s}.damaged-{k}", k + 1
                folder.rename(target)
                log.warning('checkpoint "%s" step %d was damaged: moved to %s', self.directory, s, target)
        self._damaged.clear()
        self._manager.reload()

    def close(self) -> None:
        self._manager.close()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
