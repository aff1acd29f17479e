"""Convolutions for XLA:CPU, whose own lowering of some convolutions is many times too slow.

Two cases, each measured on 2 cores (other backends keep `jax.lax.conv_general_dilated`):

* **Depthwise** (`depthwise_by_taps`): XLA:CPU runs a convolution with
  ``feature_group_count == channels`` as a dense one, channels times the work. Here it is a sum
  over kernel taps of strided slices times per-channel weights, gradients too.
* **Dense, gradients** (`dense_conv`): reverse-mode autodiff of a convolution emits convolutions
  with transposed dimension numbers (kernel ``HWOI`` for the input gradient, batch as features
  for the weight gradient). At the top level of a program XLA:CPU rewrites them into fast forms;
  inside a nested computation (a ``lax.switch`` branch, a ``lax.map`` or ``scan`` body) it does
  not, and runs them 5-10x slower: 64x32x32x16, 3x3, input gradient 158 ms at the top level
  against 978 ms in a switch, both gradients 1.3 s against 10.5 s. `dense_conv` keeps XLA's
  forward convolution and gives its gradients in canonical forms: the input gradient a forward
  convolution (``HWIO``) of the dilated output gradient with the flipped kernel, the weight
  gradient one matrix product per kernel tap, 1.1 s in a switch.

Both are `jax.custom_vjp`: forward-mode autodiff (`jax.jvp`) cannot pass them (inside a
``lax.map`` or ``switch`` it fails only when lowered). `nasx.nn.Conv` uses the depthwise one on
CPU always, and `dense_conv` only when asked (``canonical_grads``, set for a whole network by
``nasx.supernet.functional(..., canonical_conv_grads=True)``), so that forward-mode users
(`nasx.proxies.synflow`) keep XLA's convolution and `jax.jvp`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

__all__ = ["dense_conv", "depthwise_by_taps"]

_LAYOUT = ("NHWC", "HWIO", "NHWC")


def dense_conv(
    x: jax.Array, w: jax.Array, stride: int, pads: list[tuple[int, int]], dilation: int
) -> jax.Array:
    """``conv_general_dilated(x, w)`` (NHWC, HWIO, one group) with canonical-form gradients."""
    return _dense(x, w, stride, tuple(map(tuple, pads)), dilation)


def _conv(x: jax.Array, w: jax.Array, stride: int, pads, dilation: int) -> jax.Array:
    return jax.lax.conv_general_dilated(
        x, w, (stride, stride), pads, rhs_dilation=(dilation, dilation), dimension_numbers=_LAYOUT
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _dense(x: jax.Array, w: jax.Array, stride: int, pads: tuple, dilation: int) -> jax.Array:
    return _conv(x, w, stride, pads, dilation)


def _dense_fwd(x, w, stride, pads, dilation):
    return _conv(x, w, stride, pads, dilation), (x, w)


def _dilated_cotangent(dy: jax.Array, w_shape, x_shape, stride: int, pads, dilation: int) -> jax.Array:
    """`dy` spread over the stride grid and padded so that a stride-1 'valid' pass of the flipped
    kernel over it lands on the input's grid (the transpose of a strided, padded convolution)."""
    (kh, kw), (h, wd), (oh, ow) = w_shape[:2], x_shape[1:3], dy.shape[1:3]
    lo_h, lo_w = (kh - 1) * dilation - pads[0][0], (kw - 1) * dilation - pads[1][0]
    hi_h = h + (kh - 1) * dilation - lo_h - ((oh - 1) * stride + 1)
    hi_w = wd + (kw - 1) * dilation - lo_w - ((ow - 1) * stride + 1)
    zero = jnp.zeros((), dy.dtype)
    return jax.lax.pad(dy, zero, ((0, 0, 0), (lo_h, hi_h, stride - 1), (lo_w, hi_w, stride - 1), (0, 0, 0)))


def _taps(xp: jax.Array, w_shape, stride: int, dilation: int, out_hw: tuple[int, int]):
    """The strided slice of the padded input `xp` that kernel tap (i, j) meets, for every tap."""
    oh, ow = out_hw
    for i in range(w_shape[0]):
        for j in range(w_shape[1]):
            r, c = i * dilation, j * dilation
            yield xp[:, r : r + stride * (oh - 1) + 1 : stride, c : c + stride * (ow - 1) + 1 : stride, :]


def _dense_bwd(stride, pads, dilation, residuals, dy):
    x, w = residuals
    dyp = _dilated_cotangent(dy, w.shape, x.shape, stride, pads, dilation)
    dx = _conv(dyp, jnp.swapaxes(w[::-1, ::-1], 2, 3), 1, ((0, 0), (0, 0)), dilation)
    xp = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    dw = [
        jnp.tensordot(tap, dy, axes=((0, 1, 2), (0, 1, 2)))
        for tap in _taps(xp, w.shape, stride, dilation, dy.shape[1:3])
    ]
    return dx, jnp.stack(dw).reshape(w.shape)


_dense.defvjp(_dense_fwd, _dense_bwd)


def depthwise_by_taps(
    x: jax.Array,
    w: jax.Array,
    stride: int,
    pads: list[tuple[int, int]],
    dilation: int,
    taps: jax.Array | None = None,
) -> jax.Array:
    """Depthwise convolution as a sum over kernel taps of strided slices times per-channel weights.

    XLA:CPU lowers a convolution with ``feature_group_count == channels`` to a dense one
    (channels times the work): measured on 2 cores at 64x16x16x96 with a 7x7 kernel, 99 ms
    forward and 346 ms with gradients, against 4.4 ms and 143 ms this way. Other backends keep
    the grouped convolution. `taps` (``kh x kw``, optional) scales each tap: an elastic kernel
    size as a mask on the small weight tensor only.
    """
    if taps is not None:
        w = w * taps[:, :, None, None]
    return _depthwise(x, w, stride, tuple(map(tuple, pads)), dilation)


def _tap_sum(xp: jax.Array, w: jax.Array, stride: int, dilation: int, out_hw: tuple[int, int]) -> jax.Array:
    """``sum_ij xp[:, i*d + s*h, j*d + s*w, c] * w[i, j, 0, c]`` over the output grid."""
    taps = _taps(xp, w.shape, stride, dilation, out_hw)
    terms = [
        tap * w_ij[None, None, None, :] for tap, w_ij in zip(taps, w.reshape(-1, w.shape[-1]), strict=True)
    ]
    return functools.reduce(jnp.add, terms)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _depthwise(x: jax.Array, w: jax.Array, stride: int, pads: tuple, dilation: int) -> jax.Array:
    return _depthwise_fwd(x, w, stride, pads, dilation)[0]


def _depthwise_fwd(x, w, stride, pads, dilation):
    kh, kw = w.shape[0], w.shape[1]
    xp = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    oh = (xp.shape[1] - dilation * (kh - 1) - 1) // stride + 1
    ow = (xp.shape[2] - dilation * (kw - 1) - 1) // stride + 1
    return _tap_sum(xp, w, stride, dilation, (oh, ow)), (x, w)


def _depthwise_bwd(stride, pads, dilation, residuals, dy):
    """Gradients as tap sums too (autodiff of the slices pads every tap to the input's size):
    the input's is the flipped kernel run over the stride-dilated output gradient."""
    x, w = residuals
    dyp = _dilated_cotangent(dy, w.shape, x.shape, stride, pads, dilation)
    dx = _tap_sum(dyp, w[::-1, ::-1], 1, dilation, x.shape[1:3])
    xp = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    dw = [jnp.sum(tap * dy, axis=(0, 1, 2)) for tap in _taps(xp, w.shape, stride, dilation, dy.shape[1:3])]
    return dx, jnp.stack(dw).reshape(w.shape)


_depthwise.defvjp(_depthwise_fwd, _depthwise_bwd)
