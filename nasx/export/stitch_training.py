"""Stitched configurations run segment by segment: evaluation, and training of the stitching layers.

Every segment of the anchors and every stitching layer is compiled on its own, the graph
definition a static argument, so segments of one structure share a compilation and a family
compiles about once per anchor however many configurations chain its segments (compiling each
configuration whole costs one compile per configuration, which dominates on CPU). Training
back-propagates by hand through the frozen segments of a configuration's tail: one jitted
vector-Jacobian product per segment.

References:
  Pan, Cai & Zhuang, "Stitchable Neural Networks", CVPR 2023. SN-Net trains anchors and stitches
  together, sampling one stitch per step; here the anchors stay fixed (they remain exactly the
  searched models) and every stitch takes part in every step.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from nasx.data import Dataset, batch_indices
from nasx.export.stitch_layers import Configuration, Stitch, StitchedNetworks

__all__ = ["SegmentRunner", "train_stitches", "evaluate_configurations", "padded"]


@functools.partial(jax.jit, static_argnums=0)
def _forward(graphdef: nnx.GraphDef, state: nnx.State, x: jax.Array) -> jax.Array:
    return nnx.merge(graphdef, state)(x)


@functools.partial(jax.jit, static_argnums=0)
def _input_grad(graphdef: nnx.GraphDef, state: nnx.State, x: jax.Array, g: jax.Array) -> jax.Array:
    return jax.vjp(lambda x: nnx.merge(graphdef, state)(x), x)[1](g)[0]


@functools.partial(jax.jit, static_argnums=0)
def _param_grad(graphdef: nnx.GraphDef, state: nnx.State, x: jax.Array, g: jax.Array) -> nnx.State:
    return jax.vjp(lambda s: nnx.merge(graphdef, s)(x), state)[1](g)[0]


@functools.partial(jax.jit, static_argnums=0)
def _loss_grad(
    graphdef: nnx.GraphDef, state: nnx.State, x: jax.Array, y: jax.Array
) -> tuple[jax.Array, jax.Array]:
    def loss(x: jax.Array) -> jax.Array:
        logits = nnx.merge(graphdef, state)(x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    return jax.value_and_grad(loss)(x)


class SegmentRunner:
    """Every segment of the anchors and every stitching layer as (graphdef, state), run one by one."""

    def __init__(self, anchors: Sequence[Sequence[nnx.Module]], stitches: Sequence[Stitch]) -> None:
        self.anchors = [[nnx.split(m) for m in segments] for segments in anchors]
        self.stitches = [nnx.split(m) for m in stitches]

    def boundary_outputs(self, anchor: int, x: jax.Array) -> list[jax.Array]:
        """The anchor's output at every boundary and, last, its logits."""
        outs = []
        for graphdef, state in self.anchors[anchor]:
            x = _forward(graphdef, state, x)
            outs.append(x)
        return outs

    def tail(self, config: Configuration) -> list[tuple[nnx.GraphDef, nnx.State]]:
        """The stitch and back segments of a stitched `config`."""
        return [self.stitches[config.stitch], *self.anchors[config.back][config.back_boundary + 1 :]]


def padded(x: np.ndarray, size: int) -> np.ndarray:
    """`x` zero-padded to `size` rows (one batch shape: one compile per segment)."""
    return np.concatenate([x, np.zeros((size - len(x), *x.shape[1:]), x.dtype)]) if len(x) < size else x


def train_stitches(
    net: StitchedNetworks,
    data: Dataset,
    steps: int,
    *,
    batch_size: int = 64,
    learning_rate: float = 0.01,
    seed: int = 0,
) -> list[float]:
    """Train the stitching layers `steps` SGD steps (Nesterov momentum) on their configurations' loss.

    The anchors stay frozen (stored batch-norm statistics). Each step runs every stitched
    configuration on one batch; returns their mean loss per step.
    """
    stitched = [c for c in net.configurations if not c.is_anchor]
    if steps <= 0 or not stitched:
        return []
    runner = SegmentRunner(net.anchors, net.stitches)
    states = [state for _, state in runner.stitches]
    tx = optax.sgd(learning_rate, momentum=0.9, nesterov=True)

    @jax.jit
    def update(grads: list[nnx.State], opt_state: optax.OptState, states: list[nnx.State]):
        updates, opt_state = tx.update(grads, opt_state, states)
        return optax.apply_updates(states, updates), opt_state

    opt_state, history = tx.init(states), []
    fronts = sorted({c.front for c in stitched})
    for step in range(steps):
        rows = batch_indices(len(data.x_train), batch_size, seed, step)
        x, y = jnp.asarray(data.x_train[rows]), jnp.asarray(data.y_train[rows])
        acts = {k: runner.boundary_outputs(k, x) for k in fronts}
        grads, losses = list(states), []
        for c in stitched:
            modules = [(runner.stitches[c.stitch][0], states[c.stitch])]
            modules += runner.anchors[c.back][c.back_boundary + 1 :]
            inputs = [acts[c.front][c.front_boundary]]
            for graphdef, state in modules[:-1]:
                inputs.append(_forward(graphdef, state, inputs[-1]))
            loss, g = _loss_grad(*modules[-1], inputs[-1], y)
            for (graphdef, state), h in zip(modules[-2:0:-1], inputs[-2:0:-1], strict=True):
                g = _input_grad(graphdef, state, h, g)
            grads[c.stitch] = _param_grad(*modules[0], inputs[0], g)
            losses.append(float(loss))
        states, opt_state = update(grads, opt_state, states)
        history.append(float(np.mean(losses)))
    for stitch, state in zip(net.stitches, states, strict=True):
        nnx.update(stitch, state)
    return history


def evaluate_configurations(
    net: StitchedNetworks, data: Dataset, *, batch_size: int = 64, split: str = "val"
) -> np.ndarray:
    """Accuracy of every configuration on `data`'s `split`, sharing each anchor's activations."""
    runner = SegmentRunner(net.anchors, net.stitches)
    fronts = sorted({c.front for c in net.configurations})
    correct = np.zeros(len(net.configurations))
    x_eval, y_eval = data.split(split)
    for start in range(0, len(x_eval), batch_size):
        y = y_eval[start : start + batch_size]
        x = jnp.asarray(padded(x_eval[start : start + batch_size], batch_size))
        acts = {k: runner.boundary_outputs(k, x) for k in fronts}
        for n, c in enumerate(net.configurations):
            if c.is_anchor:
                logits = acts[c.front][-1]
            else:
                logits = acts[c.front][c.front_boundary]
                for graphdef, state in runner.tail(c):
                    logits = _forward(graphdef, state, logits)
            correct[n] += np.sum(np.asarray(logits).argmax(-1)[: len(y)] == y)
    return correct / len(x_eval)
