"""`Stack`: scanned and unrolled runs equal a loop over the layers, statistics included."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nasx.nn import BatchNorm, BatchNormContext, Conv, Stack
from nasx.supernet import name_batchnorms


class Block(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.conv = Conv(4, 4, 3, rngs=rngs)
        self.bn = BatchNorm(4)

    def __call__(self, x: jax.Array, ctx: BatchNormContext | None) -> jax.Array:
        return jax.nn.relu(self.bn(self.conv(x), ctx=ctx)) + x


class Net(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.stack = Stack([Block(rngs) for _ in range(3)])
        name_batchnorms(self)


def test_scan_unroll_and_loop_agree() -> None:
    net = Net(nnx.Rngs(0))
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 5, 5, 4), dtype=np.float32))
    results = {}
    for unroll in (True, False):
        ctx = BatchNormContext()
        y = net.stack.scan(lambda layer, h, c, _: layer(h, c), x, ctx, unroll=unroll)
        results[unroll] = (y, ctx.recorded)
    (key,) = results[True][1]
    assert key == "stack/layers/bn" and results[True][1][key][0].shape == (3, 4)
    np.testing.assert_allclose(
        results[True][0], results[False][0], rtol=1e-5, atol=1e-6
    )  # atol: entries near 0
    np.testing.assert_allclose(results[True][1][key][0], results[False][1][key][0], rtol=1e-5)

    h, stats = x, results[True][1]
    for i in range(3):  # the layers one by one, as extraction sees them
        layer = net.stack[i]
        bn = layer.bn.sliced(np.arange(4), net.stack.layer_stats(stats, i)[key])
        h = jax.nn.relu(bn(layer.conv(h))) + h
    again = net.stack.scan(lambda layer, g, c, _: layer(g, c), x, BatchNormContext(stats))
    np.testing.assert_allclose(h, again, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h, results[True][0], rtol=1e-5, atol=1e-6)
