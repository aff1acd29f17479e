"""`Stack`: n layers of one structure with stacked weights, run by ``jax.lax.scan``.

A supernet of 15 identical cells unrolled is 15 copies of the cell in the compiled program;
XLA's compile time grows with that (minutes on a CPU for a training step). A `Stack` keeps the
n layers' weights in one array per parameter (leading axis n) and runs them with ``lax.scan``,
so the body is compiled once. Batch-norm statistics cross the scan boundary explicitly: each
step gets a fresh `BatchNormContext` and returns what it recorded, stacked along axis 0 under
the layers' keys, so re-calibration and extraction work as for unstacked layers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nasx.nn.layers import BatchNorm, BatchNormContext

__all__ = ["Stack"]


def _stack(*xs: jax.Array) -> jax.Array:
    """Stacked on the host (jnp.stack would compile one program per distinct shape), except
    under tracing (`nnx.eval_shape`, `supernet.build`'s size check), where only shapes exist."""
    if any(isinstance(x, jax.core.Tracer) for x in xs):
        return jnp.stack(xs)
    return jnp.asarray(np.stack(xs))


class Stack(nnx.Module):
    """``len(layers)`` modules of identical structure; `scan` runs them in order."""

    def __init__(self, layers: Sequence[nnx.Module]) -> None:
        if not layers:
            raise ValueError("Stack needs at least one layer")
        graphdef, _ = nnx.split(layers[0])
        states = [nnx.split(layer)[1] for layer in layers]
        self.layers = nnx.merge(graphdef, jax.tree.map(_stack, *states))
        self.n = len(layers)
        self.scan_on_cpu = False
        """Scan on CPU too: set by `nasx.supernet.functional` with canonical convolution gradients,
        which remove the reason to unroll there (see `scan`)."""

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> nnx.Module:
        """Layer `i` as an ordinary module (outside jit: for extraction)."""
        graphdef, state = nnx.split(self.layers)
        return nnx.merge(graphdef, jax.tree.map(lambda a: a[i], state))

    def layer_stats(self, stats: dict, i: int) -> dict:
        """`stats` with this stack's stacked entries replaced by layer `i`'s (for extraction)."""
        return {**stats, **{k: (stats[k][0][i], stats[k][1][i]) for k in self.batchnorm_keys()}}

    def batchnorm_keys(self) -> list[str]:
        return [node.key for _, node in nnx.iter_graph(self.layers) if isinstance(node, BatchNorm)]

    def scan(
        self,
        fn: Callable[[nnx.Module, Any, BatchNormContext, Any], Any],
        carry: Any,
        ctx: BatchNormContext,
        xs: Any = None,
        *,
        unroll: bool | None = None,
    ) -> Any:
        """``carry = fn(layer_i, carry, ctx_i, xs[i])`` for i = 0..n-1.

        With ``unroll=False`` the layers run in ``lax.scan`` (the body compiles once); with
        ``unroll=True`` in a Python loop over static slices (the same numbers). The default
        scans on GPU/TPU, and on CPU only with `scan_on_cpu`: XLA:CPU runs convolution gradients
        inside a loop body 5-10x slower than at the top level (`nasx.nn.cpu_conv`) unless the
        convolutions give canonical gradients (``Conv.canonical_grads``). Scanned, the NB201
        supernet's train step compiles in 12 s instead of 186 s (benchmarks/compile.py); unrolled,
        activation proxies (naswot, zen) see every ReLU at the top level of the program.

        Statistics recorded by layer i go to ``ctx.recorded[key][i]``; given statistics are
        read from ``ctx.given[key][i]``. `fn` must return a carry of the same structure.
        """
        if unroll is None:
            unroll = jax.default_backend() == "cpu" and not self.scan_on_cpu
        graphdef, state = nnx.split(self.layers)
        given = None if ctx.given is None else {k: ctx.given[k] for k in self.batchnorm_keys()}

        def body(c: Any, inputs: Any) -> tuple[Any, Any]:
            layer_state, layer_stats, x = inputs
            local = BatchNormContext(layer_stats)
            c = fn(nnx.merge(graphdef, layer_state), c, local, x)
            return c, (local.recorded if layer_stats is None else None)

        if unroll:
            outputs = []
            for i in range(self.n):
                carry, out = body(carry, jax.tree.map(lambda a, i=i: a[i], (state, given, xs)))
                outputs.append(out)
            recorded = None if given is not None else jax.tree.map(lambda *a: jnp.stack(a), *outputs)
        else:
            carry, recorded = jax.lax.scan(body, carry, (state, given, xs))
        if ctx.given is None:
            ctx.recorded.update(recorded)
        return carry
