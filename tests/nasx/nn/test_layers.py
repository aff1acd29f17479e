"""Elastic layers: a masked call equals the sliced standalone layer; quantization is as specified."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nasx.nn import (
    BatchNorm,
    BatchNormContext,
    Conv,
    Dense,
    SqueezeExcite,
    avg_pool,
    fake_quant,
    kernel_mask,
    prefix_mask,
    quantize,
)

RTOL = 1e-5


def _x(shape: tuple[int, ...], seed: int = 0) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape, dtype=np.float32))


def _zero_tail(x: jax.Array, active: int) -> jax.Array:
    return x * prefix_mask(active, x.shape[-1])[None, None, None, :]


def test_masks() -> None:
    np.testing.assert_array_equal(prefix_mask(3, 5), [1, 1, 1, 0, 0])
    k = np.asarray(kernel_mask(3, 7))
    assert k.sum() == 9 and k[2:5, 2:5].all()
    assert np.asarray(kernel_mask(7, 7)).all()


@pytest.mark.parametrize(("stride", "kernel", "bits"), [(1, 3, 32), (2, 5, 32), (1, 3, 8), (2, 7, 4)])
def test_masked_conv_equals_sliced_conv(stride: int, kernel: int, bits: int) -> None:
    conv = Conv(8, 12, 7, stride=stride, rngs=nnx.Rngs(0))
    x = _zero_tail(_x((2, 9, 9, 8)), 5)  # inputs past the active width are zero, as in a supernet
    masked = conv(
        x, in_mask=prefix_mask(5, 8), out_mask=prefix_mask(6, 12), kernel_size=kernel, bits=jnp.asarray(bits)
    )
    small = conv.sliced(np.arange(5), np.arange(6), kernel, bits, rngs=nnx.Rngs(1))
    assert small.kernel[...].shape == (kernel, kernel, 5, 6)
    out = small(x[..., :5])
    np.testing.assert_allclose(masked[..., :6], out, rtol=RTOL, atol=1e-5)
    assert not np.asarray(masked[..., 6:]).any()


def test_masked_depthwise_conv_equals_sliced() -> None:
    conv = Conv(10, 10, 5, groups=10, stride=2, rngs=nnx.Rngs(0))
    x = _zero_tail(_x((2, 8, 8, 10)), 4)
    masked = conv(x, out_mask=prefix_mask(4, 10), kernel_size=3)
    small = conv.sliced(np.arange(4), np.arange(4), 3, rngs=nnx.Rngs(1))
    assert small.groups == 4 and small.kernel[...].shape == (3, 3, 1, 4)
    np.testing.assert_allclose(masked[..., :4], small(x[..., :4]), rtol=RTOL, atol=1e-6)


def test_gathered_input_channels() -> None:
    """Non-prefix channel sets (a NASNet concat) slice by index."""
    conv = Conv(6, 4, 1, use_bias=True, rngs=nnx.Rngs(0))
    keep = np.array([0, 2, 5])
    in_mask = jnp.zeros(6).at[keep].set(1.0)
    x = _x((1, 3, 3, 6)) * in_mask[None, None, None, :]
    small = conv.sliced(keep, np.arange(4), rngs=nnx.Rngs(1))
    np.testing.assert_allclose(conv(x, in_mask=in_mask), small(x[..., keep]), rtol=RTOL, atol=1e-6)


def test_dense_and_squeeze_excite() -> None:
    dense = Dense(8, 5, rngs=nnx.Rngs(0))
    v = _x((3, 8)) * prefix_mask(6, 8)[None, :]
    small = dense.sliced(np.arange(6), np.arange(4), 8, rngs=nnx.Rngs(1))
    full = dense(v, in_mask=prefix_mask(6, 8), out_mask=prefix_mask(4, 5), bits=8)
    np.testing.assert_allclose(full[:, :4], small(v[:, :6]), rtol=RTOL, atol=1e-6)

    se = SqueezeExcite.create(16, 8, rngs=nnx.Rngs(0))
    x = _zero_tail(_x((2, 4, 4, 16)), 12)
    masked = se(x, mask=prefix_mask(12, 16), squeeze_mask=prefix_mask(3, 8))
    small_se = se.sliced(np.arange(12), np.arange(3), rngs=nnx.Rngs(1))
    np.testing.assert_allclose(masked[..., :12], small_se(x[..., :12]), rtol=RTOL, atol=1e-6)


def test_batchnorm_modes() -> None:
    bn = BatchNorm(6)
    bn.key = "bn"
    x = _x((4, 3, 3, 6)) * 2 + 1
    ctx = BatchNormContext()
    y = bn(x, mask=prefix_mask(4, 6), ctx=ctx)
    mean, var = ctx.recorded["bn"]
    np.testing.assert_allclose(mean, x.mean(axis=(0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(var, x.var(axis=(0, 1, 2)), rtol=1e-4)
    assert not np.asarray(y[..., 4:]).any()
    again = bn(x, ctx=BatchNormContext({"bn": (mean, var)}))
    standalone = bn.sliced(np.arange(4), (np.asarray(mean), np.asarray(var)))
    np.testing.assert_allclose(again[..., :4], standalone(x[..., :4]), rtol=RTOL, atol=1e-6)
    with pytest.raises(ValueError, match="no stored statistics"):
        bn(x)


def test_avg_pool_ignores_padding() -> None:
    x = jnp.ones((1, 5, 5, 1))
    np.testing.assert_allclose(avg_pool(x, 3), 1.0)  # border windows average only real pixels
    y = _x((1, 6, 6, 2))
    np.testing.assert_allclose(
        avg_pool(y, 2, 2, "valid"), y.reshape(1, 3, 2, 3, 2, 2).mean(axis=(2, 4)), rtol=1e-6
    )


def test_fake_quant_32_bits_is_exact_and_4_bits_has_at_most_16_levels() -> None:
    w = _x((3, 3, 8, 5))
    assert fake_quant(w, 32) is w
    np.testing.assert_array_equal(fake_quant(w, jnp.asarray(32)), w)
    q = np.asarray(fake_quant(w, jnp.asarray(4)))
    for channel in range(5):
        assert len(np.unique(q[..., channel])) <= 16
    codes, scale = quantize(w, 4)
    assert np.abs(np.asarray(codes)).max() <= 7 and scale.shape == (1, 1, 1, 5)
    assert np.abs(q - np.asarray(w)).max() <= np.asarray(scale).max() / 2 + 1e-6


def test_fake_quant_gradient_is_straight_through() -> None:
    w = _x((4, 3))
    grad = jax.grad(lambda v: jnp.sum(fake_quant(v, jnp.asarray(4)) * 3.0))(w)
    np.testing.assert_allclose(grad, 3.0)
