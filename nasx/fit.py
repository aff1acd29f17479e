"""Training one network from scratch: the last step of NAS, and how baselines are measured.

`fit` trains a standalone model (an architecture extracted from a freshly initialised supernet,
`nasx.supernet.Supernet.extract`, or any module called as ``model(x, ctx)`` with nasx's
`nasx.nn.layers.BatchNorm`) with the recipe the supernets train with (`nasx.train`): SGD with
Nesterov momentum, linear warm-up then cosine decay, decoupled weight decay, label smoothing,
random-crop (and, where valid, flip) augmentation, batch norm on each batch's statistics during
training and re-calibrated on training images at the end (`recalibrate`).

Batches, augmentation and the step count are pure functions of ``(seed, step)``; Orbax
checkpoints every `FitConfig.checkpoint_every` steps, so a killed run resumed from its folder
continues exactly as an uninterrupted one would. A non-finite loss stops the run with
`NonFiniteLossError` (the checkpoints written so far are kept).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from nasx.data import Dataset, augment, batch_indices
from nasx.nn.layers import BatchNorm, BatchNormContext
from nasx.train import optimizer, run_steps, smoothed_cross_entropy

__all__ = ["FitConfig", "FitResult", "fit", "make_step", "recalibrate", "model_accuracy", "steps_for_epochs"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitConfig:
    """Standalone training settings (the recipe; `nasx.jobs.fit` picks them per dataset).

    Attributes:
      steps: optimizer steps (`steps_for_epochs` converts epochs).
      batch_size: images per step.
      learning_rate: peak of the warm-up + cosine schedule.
      momentum: Nesterov momentum.
      weight_decay: L2 weight decay added to the gradient (as PyTorch's SGD).
      label_smoothing: weight of the uniform distribution mixed into the one-hot labels.
      warmup_steps: linear warm-up from 0 to the peak.
      seed: data order and augmentation.
      checkpoint_every: steps between Orbax checkpoints.
      log_every: steps between lines of ``metrics.jsonl``.
      calib_images: training images the batch-norm statistics are measured on at the end.
    """

    steps: int
    batch_size: int = 128
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup_steps: int = 100
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 50
    calib_images: int = 2048


@dataclass
class FitResult:
    """The trained model (batch norm re-calibrated), the step it ended at, its logged metrics."""

    model: nnx.Module
    step: int
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    """Wall time of the steps run by this call (not of earlier, resumed-from runs)."""


def steps_for_epochs(epochs: float, n_train: int, batch_size: int) -> int:
    """Optimizer steps of `epochs` passes over `n_train` images (at least 1)."""
    return max(1, math.ceil(epochs * n_train / batch_size))


def recalibrate(model: nnx.Module, images: np.ndarray, batch_size: int = 512) -> None:
    """Store in `model`'s batch norms the statistics of `images` (in place).

    Measured in batches of `batch_size` and pooled exactly (means of means; variances by the law
    of total variance), so thousands of images need no more memory than one batch.
    """
    graphdef, state = nnx.split(model)

    @jax.jit
    def measure(state: nnx.State, x: jax.Array) -> dict:
        ctx = BatchNormContext()
        nnx.merge(graphdef, state)(x, ctx)
        return ctx.recorded

    n_full = max(1, len(images) // batch_size) * batch_size if len(images) >= batch_size else len(images)
    parts = [measure(state, jnp.asarray(images[s : s + batch_size])) for s in range(0, n_full, batch_size)]
    for _, bn in nnx.iter_graph(model):
        if isinstance(bn, BatchNorm) and bn.mean is not None:
            means = jnp.stack([p[bn.key][0] for p in parts])
            variances = jnp.stack([p[bn.key][1] for p in parts])
            mean = means.mean(axis=0)
            bn.mean[...] = mean
            bn.var[...] = variances.mean(axis=0) + jnp.mean(jnp.square(means - mean[None]), axis=0)


def model_accuracy(model: nnx.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Top-1 accuracy of `model` (stored batch-norm statistics) on images `x`, labels `y`."""
    graphdef, state = nnx.split(model)
    forward = jax.jit(lambda s, images: jnp.argmax(nnx.merge(graphdef, s)(images), axis=-1))
    correct = 0
    for start in range(0, len(x), batch_size):
        chunk = x[start : start + batch_size]
        pad = batch_size - len(chunk) if len(x) > batch_size else 0  # one shape: one compile
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
        predicted = np.asarray(forward(state, jnp.asarray(chunk)))[: len(chunk) - pad]
        correct += int(np.sum(predicted == y[start : start + batch_size]))
    return correct / max(1, len(x))


def make_step(graphdef, rest, tx, *, flip: bool, label_smoothing: float) -> Callable:
    """The jitted standalone training step ``(params, opt_state, x, y, key) -> (params, opt_state,
    loss, accuracy)``: augment, forward on the batch's statistics, smoothed cross-entropy, update.

    `graphdef`, `rest`: ``nnx.split(model, nnx.Param, ...)``'s graph and non-parameter state;
    `tx`: the optimizer (`nasx.train.optimizer`).
    """

    def loss_fn(params: nnx.State, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        logits = nnx.merge(graphdef, params, rest)(x, BatchNormContext())  # the batch's statistics
        loss = smoothed_cross_entropy(logits, y, label_smoothing)
        return loss, jnp.mean(jnp.argmax(logits, axis=-1) == y)

    @jax.jit
    def step(params, opt_state, x, y, key):
        x = augment(key, x, flip=flip)
        (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, acc

    return step


def fit(
    model: nnx.Module,
    data: Dataset,
    config: FitConfig,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    meta: dict[str, Any] | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> FitResult:
    """Train a copy of `model` on ``data``'s training split; checkpoint to and resume from `out_dir`.

    Args:
      meta: JSON-able description of the run (space, architecture, data) stored with every
        checkpoint; a resumed run must match it.
      on_step: called after every step with (step, metrics), e.g. to drive a progress bar.

    Raises:
      RunFolderError: `out_dir` holds a checkpoint and `resume` is False, or one of another run.
      NonFiniteLossError: the loss became NaN or infinite (lower the learning rate).
    """
    model = nnx.clone(model)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = optimizer(config)
    step_fn = make_step(graphdef, rest, tx, flip=data.flip, label_smoothing=config.label_smoothing)
    base_key = jax.random.key(config.seed)

    def advance(state: dict, step: int) -> tuple[dict, dict[str, float]]:
        index = batch_indices(len(data.x_train), config.batch_size, config.seed, step)
        x, y = jnp.asarray(data.x_train[index]), jnp.asarray(data.y_train[index])
        t0 = time.perf_counter()
        params, opt_state, loss, acc = step_fn(
            state["params"], state["opt_state"], x, y, jax.random.fold_in(base_key, step)
        )
        record = {"loss": float(loss), "train_accuracy": float(acc)}
        record["images_per_s"] = len(index) / (time.perf_counter() - t0)
        return {"params": params, "opt_state": opt_state}, record

    began = time.perf_counter()
    state, history = run_steps(
        {"params": params, "opt_state": tx.init(params)},
        advance,
        config,
        meta=meta,
        out_dir=out_dir,
        resume=resume,
        on_step=on_step,
    )
    seconds = time.perf_counter() - began
    nnx.update(model, state["params"])
    order = np.random.default_rng([config.seed, 7]).permutation(len(data.x_train))
    recalibrate(model, data.x_train[order[: config.calib_images]])
    return FitResult(model=model, step=config.steps, history=history, seconds=seconds)
