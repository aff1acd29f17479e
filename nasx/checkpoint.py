"""Orbax checkpoints of a training state (any pytree) plus JSON metadata (space, config).

Saves are atomic (Orbax commits a step only when fully written) and waited for, so a run killed
at any moment resumes from its last complete checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from nasx.errors import NasxError

__all__ = ["Checkpointer", "CheckpointError"]


class CheckpointError(NasxError, FileNotFoundError):
    """A checkpoint folder is missing or holds no complete checkpoint."""


class Checkpointer:
    """Keeps the last `max_to_keep` checkpoints of a run in `directory` (made absolute)."""

    def __init__(self, directory: str | Path, *, max_to_keep: int = 2) -> None:
        self.directory = Path(directory).expanduser().resolve()
        self._manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        )

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: Any, meta: dict[str, Any]) -> None:
        """Write `state` and `meta` as step `step` and wait until it is on disk."""
        self._manager.save(
            step, args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        )
        self._manager.wait_until_finished()

    def restore(self, like: Any, step: int | None = None) -> tuple[int, Any, dict[str, Any]]:
        """(step, state, meta) of `step` (default: the latest), shaped like the pytree `like`."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f'no complete checkpoint in "{self.directory}"')
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()),
        )
        return step, restored.state, dict(restored.meta)

    def meta(self, step: int | None = None) -> dict[str, Any]:
        """Only the metadata of a checkpoint (no arrays are read)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f'no complete checkpoint in "{self.directory}"')
        return dict(self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta)

    def close(self) -> None:
        self._manager.close()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
