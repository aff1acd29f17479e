"""The XLA:CPU convolutions: same values and gradients as XLA's (grouped, dense) convolutions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nasx.nn import kernel_mask
from nasx.nn.cpu_conv import dense_conv, depthwise_by_taps

CASES = [
    (9, 3, 1, 1, "same"),
    (9, 5, 2, 1, "same"),
    (10, 7, 2, 1, "same"),
    (11, 3, 1, 2, "same"),
    (8, 3, 2, 1, ((0, 1), (1, 2))),
]


def _x(shape: tuple[int, ...], seed: int = 0) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape, dtype=np.float32))


def _pads(pads, kernel: int, dilation: int):
    return [((kernel - 1) // 2 * dilation,) * 2] * 2 if pads == "same" else pads


def _assert_same_with_gradients(mine, xla, *args) -> None:
    np.testing.assert_allclose(mine(*args), xla(*args), rtol=1e-5, atol=1e-5)
    loss = lambda f: lambda *a: jnp.sum(jnp.sin(f(*a)))  # noqa: E731
    argnums = tuple(range(len(args)))
    for got, want in zip(
        jax.grad(loss(mine), argnums)(*args), jax.grad(loss(xla), argnums)(*args), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("side", "kernel", "stride", "dilation", "pads"), CASES)
def test_depthwise_by_taps_equals_xla_grouped_conv_with_gradients(
    side, kernel, stride, dilation, pads
) -> None:
    """The CPU depthwise path (tap sums, with its own gradient) computes XLA's grouped conv."""
    pads = _pads(pads, kernel, dilation)
    x, w = _x((2, side, side, 6)), _x((kernel, kernel, 1, 6), seed=1)
    taps = kernel_mask(3, kernel)

    def grouped(x, w, taps):
        return jax.lax.conv_general_dilated(
            x,
            w * taps[:, :, None, None],
            (stride, stride),
            pads,
            rhs_dilation=(dilation, dilation),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            feature_group_count=6,
        )

    def by_taps(x, w, taps):
        return depthwise_by_taps(x, w, stride, pads, dilation, taps)

    _assert_same_with_gradients(by_taps, grouped, x, w, taps)


@pytest.mark.parametrize(("kernel", "stride", "archs"), [(7, 1, 0), (7, 1, 3), (5, 2, 3), (3, 1, 3)])
def test_depthwise_gradients_hold_a_few_activations_not_one_per_tap(kernel, stride, archs) -> None:
    """Compiled with its gradients (under a vmap over architectures, as supernet training runs it),
    a layer needs a few activations' worth of scratch memory, not one per kernel tap: as a sum of
    unrolled slices XLA:CPU kept all k^2 of them alive (53x the input at 7x7, 72x with 3
    architectures; the cifar mobilenet supernet's train step asked for 81 GB); now 3-5x."""
    pads = _pads("same", kernel, 1)
    x, w = _x((8, 16, 16, 32)), _x((kernel, kernel, 1, 32), seed=1)

    def loss(x, w, scale):
        return jnp.sum(jnp.sin(depthwise_by_taps(x * scale[None, None, None, :], w, stride, pads, 1)))

    if archs:
        scales = jnp.ones((archs, 32))
        total = lambda x, w, s: jnp.sum(jax.vmap(lambda a: loss(x, w, a))(s))  # noqa: E731
    else:
        scales, total = jnp.ones((32,)), loss
    compiled = jax.jit(jax.grad(total, (0, 1))).lower(x, w, scales).compile()
    activations = x.size * 4 * max(archs, 1)
    assert compiled.memory_analysis().temp_size_in_bytes < 12 * activations


def test_depthwise_exports_for_any_batch_size() -> None:
    """A forward pass serialized with a symbolic batch size (as `nasx export` writes models)."""
    w = _x((7, 7, 1, 6), seed=1)

    def conv(x):
        return depthwise_by_taps(x, w, 2, _pads("same", 7, 1), 1)

    (batch,) = jax.export.symbolic_shape("b")
    exported = jax.export.export(jax.jit(conv))(jax.ShapeDtypeStruct((batch, 9, 9, 6), jnp.float32))
    x = _x((5, 9, 9, 6))
    np.testing.assert_allclose(exported.call(x), jax.jit(conv)(x), rtol=1e-6, atol=1e-6)


DENSE_CASES = [
    (8, 1, 1, 1, "same"),
    (8, 1, 2, 1, "same"),
    (9, 3, 1, 1, "same"),
    (9, 3, 2, 1, "same"),
    (10, 5, 1, 1, "same"),
    (10, 5, 2, 1, "same"),
    (11, 3, 1, 2, "same"),
    (8, 3, 2, 1, ((0, 1), (1, 2))),
]


def _xla_dense(stride, pads, dilation):
    def conv(x, w):
        return jax.lax.conv_general_dilated(
            x,
            w,
            (stride, stride),
            pads,
            rhs_dilation=(dilation, dilation),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )

    return conv


@pytest.mark.parametrize(("side", "kernel", "stride", "dilation", "pads"), DENSE_CASES)
def test_dense_conv_equals_xla_conv_with_gradients(side, kernel, stride, dilation, pads) -> None:
    """Its hand-written gradients (canonical forms) are autodiff's of XLA's convolution.

    Grouped convolutions are not covered: `nasx.nn.Conv` keeps XLA's for them."""
    pads = _pads(pads, kernel, dilation)
    x, w = _x((2, side, side, 3)), _x((kernel, kernel, 3, 5), seed=1)
    _assert_same_with_gradients(
        lambda x, w: dense_conv(x, w, stride, pads, dilation), _xla_dense(stride, pads, dilation), x, w
    )


def test_dense_conv_gradients_inside_a_switch_in_a_map() -> None:
    """Where it is used: a branch of a ``lax.switch`` in a ``lax.map`` body (NB201's proxies)."""
    pads = _pads("same", 3, 1)
    xs, w = _x((3, 1, 9, 9, 3)), _x((3, 3, 3, 3), seed=1)

    def loss(conv):
        def one(x):
            y = jax.lax.switch(1, [lambda x, w: x, lambda x, w: conv(x, w)], x, w)
            return jnp.sum(jnp.sin(y))

        return lambda xs, w: jnp.sum(jax.lax.map(one, xs))

    mine = jax.jit(jax.grad(loss(lambda x, w: dense_conv(x, w, 1, pads, 1)), (0, 1)))(xs, w)
    xla = jax.jit(jax.grad(loss(_xla_dense(1, pads, 1)), (0, 1)))(xs, w)
    for got, want in zip(mine, xla, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
