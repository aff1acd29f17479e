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

The depthwise convolution and its gradients run over the batch a few images at a time (a loop
over chunks of about 1 MiB of input), the kernel taps unrolled within a chunk: the forward pass and
the input gradient as one fused sum of the k^2 shifted windows, the weight gradient as one
variadic reduction of the k^2 window-times-gradient products. Over the whole batch at once,
XLA:CPU materialized every shifted window as a buffer the size of the activation whenever it had
a second user (the weight gradient's per-tap reductions, which it does not fuse with their
windows; common-subexpression elimination joining the forward's windows to the backward's), and
kept all k^2 from the forward pass to the backward: a 7x7 layer held ~50 activations of its input,
and the cifar mobilenet supernet's train step (64 images x 4 subnets, 32 px) asked for 81 GB
of scratch memory (13.8 GB now; XLA's grouped convolution would take 20 GB). Within a chunk such
buffers are small and stay in cache, and the whole is ~2x faster than a loop over the taps.

Both are `jax.custom_vjp`: forward-mode autodiff (`jax.jvp`) cannot pass them (inside a
``lax.map`` or ``switch`` it fails only when lowered). `nasx.nn.Conv` uses the depthwise one on
CPU always, and `dense_conv` only when asked (``canonical_grads``, set for a whole network by
``nasx.supernet.functional(..., canonical_conv_grads=True)``), so that forward-mode users
(`nasx.proxies.synflow`) keep XLA's convolution and `jax.jvp`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

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
    (channels times the work): measured on 2 cores at 64x16x16x96 with a 7x7 kernel, 101 ms
    forward and 510 ms with gradients, against 10 ms and 47 ms this way. Other backends keep
    the grouped convolution. `taps` (``kh x kw``, optional) scales each tap: an elastic kernel
    size as a mask on the small weight tensor only. The batch is processed in chunks (module
    docstring): with its gradients, a 7x7 layer needs scratch memory of a few activations.
    """
    if taps is not None:
        w = w * taps[:, :, None, None]
    return _depthwise(x, w, stride, tuple(map(tuple, pads)), dilation)


_CHUNK_BYTES = 1 << 20


def _chunk_count(n: int, image_bytes: int) -> int:
    """Chunks to split `n` images into: the fewest of at most ~`_CHUNK_BYTES` that divide `n`, and
    at least 2: a loop of one iteration is inlined, and then the forward pass and the gradients
    share their windows again (module docstring). A symbolic batch size (`jax.export` of a forward
    pass for any batch) is one chunk: without gradients no window has a second user."""
    if not isinstance(n, int) or not isinstance(image_bytes, int):
        return 1
    fewest = max(2, -(-n * image_bytes // _CHUNK_BYTES))
    return next(m for m in range(min(fewest, n), n + 1) if n % m == 0)


def _over_chunks(
    fn: Callable[..., jax.Array],
    arrays: tuple[jax.Array, ...],
    m: int,
    carry: jax.Array,
    combine: Callable[[jax.Array, jax.Array, jax.Array | int], jax.Array],
) -> jax.Array:
    """``fn`` on chunk t of every array (images t, t + m, t + 2m, ...: a batch split over devices
    stays split), folded into `carry` by ``combine(carry, result, t)``, for t < m."""
    if m == 1:
        return combine(carry, fn(*arrays), 0)
    split = [a.reshape(a.shape[0] // m, m, *a.shape[1:]) for a in arrays]

    def step(t: jax.Array, carry: jax.Array) -> jax.Array:
        chunk = [jax.lax.dynamic_index_in_dim(a, t, axis=1, keepdims=False) for a in split]
        return combine(carry, fn(*chunk), t)

    return jax.lax.fori_loop(0, m, step, carry)


def _per_chunk(
    fn: Callable[..., jax.Array],
    arrays: tuple[jax.Array, ...],
    out_shape: tuple[int, ...],
    dtype: jnp.dtype,
    image_bytes: int,
) -> jax.Array:
    """``fn`` mapped over chunks of the batch (axis 0 of `arrays` and of the result)."""
    n = out_shape[0]
    m = _chunk_count(n, image_bytes)
    if m == 1:
        return fn(*arrays)

    def put(out: jax.Array, y: jax.Array, t: jax.Array) -> jax.Array:
        return jax.lax.dynamic_update_index_in_dim(out, y, t, axis=1)

    out = jnp.zeros((n // m, m, *out_shape[1:]), dtype)
    return _over_chunks(fn, arrays, m, out, put).reshape(out_shape)


def _tap_sum(xp: jax.Array, w: jax.Array, stride: int, dilation: int, out_hw: tuple[int, int]) -> jax.Array:
    """``sum_ij xp[:, i*d + s*h, j*d + s*w, c] * w[i, j, 0, c]`` over the output grid."""
    taps = _taps(xp, w.shape, stride, dilation, out_hw)
    terms = [
        tap * w_ij[None, None, None, :] for tap, w_ij in zip(taps, w.reshape(-1, w.shape[-1]), strict=True)
    ]
    return functools.reduce(jnp.add, terms)


def _tap_products(xp: jax.Array, dy: jax.Array, w_shape, stride: int, dilation: int) -> jax.Array:
    """``sum_nhw xp[n, i*d + s*h, j*d + s*w, c] * dy[n, h, w, c]`` for every tap (i, j), in one
    variadic reduction (k^2 separate ones would each read their window from memory again)."""
    products = [tap * dy for tap in _taps(xp, w_shape, stride, dilation, dy.shape[1:3])]
    zeros = [jnp.zeros((), dy.dtype)] * len(products)
    sums = jax.lax.reduce(products, zeros, lambda a, b: [u + v for u, v in zip(a, b, strict=True)], (0, 1, 2))
    return jnp.stack(sums).reshape(w_shape)


def _image_bytes(x: jax.Array, pads) -> int:
    h, w = x.shape[1] + sum(pads[0]), x.shape[2] + sum(pads[1])
    return h * w * x.shape[3] * x.dtype.itemsize


def _pad(x: jax.Array, pads) -> jax.Array:
    return jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _depthwise(x: jax.Array, w: jax.Array, stride: int, pads: tuple, dilation: int) -> jax.Array:
    return _depthwise_fwd(x, w, stride, pads, dilation)[0]


def _depthwise_fwd(x, w, stride, pads, dilation):
    kh, kw = w.shape[0], w.shape[1]
    oh = (x.shape[1] + sum(pads[0]) - dilation * (kh - 1) - 1) // stride + 1
    ow = (x.shape[2] + sum(pads[1]) - dilation * (kw - 1) - 1) // stride + 1
    y = _per_chunk(
        lambda xc: _tap_sum(_pad(xc, pads), w, stride, dilation, (oh, ow)),
        (x,),
        (x.shape[0], oh, ow, x.shape[3]),
        jnp.result_type(x, w),
        _image_bytes(x, pads),
    )
    return y, (x, w)


def _depthwise_bwd(stride, pads, dilation, residuals, dy):
    """Gradients as tap sums too (autodiff of the slices pads every tap to the input's size):
    the input's is the flipped kernel run over the stride-dilated output gradient."""
    x, w = residuals
    flipped, image_bytes = w[::-1, ::-1], _image_bytes(x, pads)

    def input_grad(dyc: jax.Array) -> jax.Array:
        dyp = _dilated_cotangent(dyc, w.shape, x.shape, stride, pads, dilation)
        return _tap_sum(dyp, flipped, 1, dilation, x.shape[1:3])

    dx = _per_chunk(input_grad, (dy,), x.shape, jnp.result_type(dy, w), image_bytes)
    m = _chunk_count(x.shape[0], image_bytes)
    dw = _over_chunks(
        lambda xc, dyc: _tap_products(_pad(xc, pads), dyc, w.shape, stride, dilation),
        (x, dy),
        m,
        jnp.zeros(w.shape, jnp.result_type(x, dy)),
        lambda total, part, _: total + part,
    )
    return dx, dw


_depthwise.defvjp(_depthwise_fwd, _depthwise_bwd)
