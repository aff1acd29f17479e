"""Evaluating subnets of a trained supernet: batch-norm re-calibration, then accuracy.

A supernet's batch-norm statistics are not stored: each subnet's are measured on a few hundred
training images (`calibrate`), because statistics shared by all subnets are wrong for every
subnet but one. A batch of architectures is evaluated with one ``vmap``-ed, jitted call.

References:
  Yu et al., "BigNAS", ECCV 2020 (batch-norm calibration of child models).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from nasx.data import Dataset
from nasx.devices import over_devices
from nasx.space import Arch, SearchSpace
from nasx.supernet import Apply, Stats

__all__ = ["calibration_images", "make_evaluator", "accuracy", "calibrate"]


def calibration_images(data: Dataset, n: int = 256, seed: int = 0) -> np.ndarray:
    """A fixed, seeded sample of `n` training images for batch-norm re-calibration."""
    order = np.random.default_rng([seed, 7]).permutation(len(data.x_train))
    return data.x_train[order[: min(n, len(order))]]


def calibrate(apply: Apply, params: nnx.State, arch: jax.Array, x_calib: jax.Array) -> Stats:
    """Batch-norm statistics of one (encoded) subnet, measured on `x_calib`."""
    return apply(params, arch, x_calib)[1]


def make_evaluator(apply: Apply, mesh: Mesh | None = None):
    """``logits(params, archs, x_calib, x) -> (n_archs, n_images, classes)``, jitted once.

    Each architecture is re-calibrated on `x_calib` and then run on `x` with those statistics.
    With a `mesh` (`nasx.devices.local_mesh`) the architectures are split over its devices.
    """

    def logits(params: nnx.State, archs: jax.Array, x_calib: jax.Array, x: jax.Array) -> jax.Array:
        def one(arch: jax.Array) -> jax.Array:
            return apply(params, arch, x, calibrate(apply, params, arch, x_calib))[0]

        return jax.vmap(one)(archs)

    return jax.jit(logits) if mesh is None else over_devices(logits, mesh)


def accuracy(
    apply: Apply,
    params: nnx.State,
    space: SearchSpace,
    archs: Sequence[Arch],
    data: Dataset,
    *,
    calib_images: int = 256,
    batch_size: int = 512,
    evaluator=None,
    split: str = "val",
) -> np.ndarray:
    """Accuracy of each architecture (re-calibrated) on `data`'s `split`, as a float array.

    Searches and supernet scoring read the validation split (the default); the test split is
    for reporting what was chosen.
    """
    evaluator = evaluator or make_evaluator(apply)
    encoded = jnp.asarray(np.stack([space.encode(a) for a in archs]))
    x_calib = jnp.asarray(calibration_images(data, calib_images))
    correct = np.zeros(len(archs))
    x_eval, y_eval = data.split(split)
    n = len(x_eval)
    for start in range(0, n, batch_size):
        x = x_eval[start : start + batch_size]
        y = y_eval[start : start + batch_size]
        pad = batch_size - len(x) if n > batch_size else 0  # keep one shape: one compile
        if pad:
            x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
        predictions = np.asarray(jnp.argmax(evaluator(params, encoded, x_calib, jnp.asarray(x)), axis=-1))
        correct += (predictions[:, : len(y)] == y[None, :]).sum(axis=1)
    return correct / n
