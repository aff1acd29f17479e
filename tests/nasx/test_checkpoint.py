"""Orbax checkpoints round-trip a training state and its metadata; missing ones fail clearly."""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from nasx.checkpoint import Checkpointer, CheckpointError


def test_round_trip(tmp_path: Path) -> None:
    params = nnx.state(nnx.Linear(3, 2, rngs=nnx.Rngs(0)))
    tx = optax.sgd(0.1, momentum=0.9)
    state = {"params": params, "opt_state": tx.init(params)}
    with Checkpointer(tmp_path / "ckpt") as ckpt:
        ckpt.save(7, state, {"space": "nb201", "steps": 7})
        assert ckpt.latest_step() == 7
        step, restored, meta = ckpt.restore(state)
    assert step == 7 and meta == {"space": "nb201", "steps": 7}
    np.testing.assert_array_equal(restored["params"]["kernel"][...], params["kernel"][...])
    assert jnp.asarray(restored["opt_state"][0].trace["bias"][...]).shape == (2,)


def test_missing_checkpoint(tmp_path: Path) -> None:
    with (
        Checkpointer(tmp_path / "empty") as ckpt,
        pytest.raises(CheckpointError, match="no complete checkpoint"),
    ):
        ckpt.restore({})
