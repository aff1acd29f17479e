"""The XLA:CPU depthwise convolution: same values and gradients as XLA's grouped convolution."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nasx.nn import kernel_mask
from nasx.nn.cpu_conv import depthwise_by_taps

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
