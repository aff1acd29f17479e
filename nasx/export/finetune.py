"""Fine-tuning one extracted model on its own, before it is exported (``nasx export --finetune N``).

A subnet sliced from a supernet has shared weights that served every architecture; a few steps on
its own usually recover some accuracy. `finetune` trains the standalone model as the supernet was
trained (`nasx.train`): softmax cross-entropy on random-crop (and, where valid, flip) augmented
batches drawn by `nasx.data.batch_indices`, batch norm on the batch's statistics, a quantized
layer's weights fake-quantized with the straight-through gradient (quantization-aware). The
optimizer is SGD with Nesterov momentum and the supernet's weight decay at a constant fine-tuning
rate (as `nasx.export.sorted.finetune_sorted`). Afterwards the batch-norm statistics are
re-measured on the calibration images (`nasx.evaluate.calibration_images`), as for any subnet.

Every batch and augmentation is a pure function of ``(seed, step)``.
"""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from nasx.data import Dataset, augment, batch_indices
from nasx.errors import NasxError
from nasx.evaluate import calibration_images
from nasx.fit import recalibrate
from nasx.nn.layers import BatchNormContext

__all__ = ["FinetuneStepsError", "finetune"]

log = logging.getLogger(__name__)


class FinetuneStepsError(NasxError, ValueError):
    """A negative number of fine-tuning steps."""


def finetune(
    model: nnx.Module,
    data: Dataset,
    steps: int,
    *,
    batch_size: int = 64,
    learning_rate: float = 0.01,
    weight_decay: float = 4e-5,
    seed: int = 0,
) -> tuple[nnx.Module, list[dict[str, float]]]:
    """`model` after `steps` of training on ``data.x_train``, batch norm re-calibrated.

    `model` is not changed; the returned one is a trained copy. Returns it and per-step metrics
    (``step``, ``loss``, ``accuracy`` on the augmented batch).

    Raises:
      FinetuneStepsError: `steps` is negative.
    """
    if steps < 0:
        raise FinetuneStepsError(f"fine-tuning steps {steps}: expected 0 or more (0 = no fine-tuning)")
    model = nnx.clone(model)
    if steps == 0:
        return model, []
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = optax.chain(
        optax.add_decayed_weights(weight_decay), optax.sgd(learning_rate, momentum=0.9, nesterov=True)
    )

    def loss_fn(params: nnx.State, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        logits = nnx.merge(graphdef, params, rest)(x, BatchNormContext())  # the batch's statistics
        loss = optax.softmax_cross_entropy(logits, jax.nn.one_hot(y, logits.shape[-1])).mean()
        return loss, jnp.mean(jnp.argmax(logits, axis=-1) == y)

    @jax.jit
    def step(params, opt_state, x, y, key):
        x = augment(key, x, flip=data.flip)
        (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, accuracy

    opt_state, key, history = tx.init(params), jax.random.key(seed), []
    for i in range(steps):
        index = batch_indices(len(data.x_train), batch_size, seed, i)
        x, y = jnp.asarray(data.x_train[index]), jnp.asarray(data.y_train[index])
        params, opt_state, loss, accuracy = step(params, opt_state, x, y, jax.random.fold_in(key, i))
        history.append({"step": i + 1, "loss": float(loss), "accuracy": float(accuracy)})
        log.info("fine-tuning step %d/%d: loss %.4f", i + 1, steps, history[-1]["loss"])
    nnx.update(model, params)
    recalibrate(model, calibration_images(data))
    return model, history
