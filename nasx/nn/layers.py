"""Elastic flax.nnx layers: one set of weights, any active width, kernel size and bit-width.

Every supernet in nasx is built from these. A layer holds the weights of its largest form; a call
may pass masks (float vectors, computed from the architecture's traced int32 arrays) that switch
off trailing channels (nested prefixes, as in OFA and SortedNet), a smaller kernel size that keeps
the centre of the kernel (OFA), and a bit-width for symmetric fake quantization. Called without
them, a layer is an ordinary layer: that is what `sliced` returns, a standalone copy holding only
the active weights, so an extracted network computes exactly what the masked supernet computes.

Batch norm takes a `BatchNormContext` that says where statistics come from: the current batch
(training; recorded per layer so a caller can re-calibrate a subnet), statistics given per layer
(a re-calibrated subnet), or the layer's own stored statistics (a standalone, extracted model).

References:
  Cai et al., "Once-for-All: Train One Network and Specialize it for Efficient Deployment",
  ICLR 2020 (elastic width, kernel and depth). Valipour et al., "SortedNet", 2023 (nested
  sub-networks).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nasx.nn.cpu_conv import dense_conv, depthwise_by_taps
from nasx.nn.quant import fake_quant

__all__ = [
    "BatchNormContext",
    "Conv",
    "Dense",
    "BatchNorm",
    "SqueezeExcite",
    "normal_init",
    "is_float",
    "prefix_mask",
    "kernel_mask",
    "relu",
    "relu6",
    "hard_sigmoid",
    "hard_swish",
    "swish",
    "ACTIVATIONS",
    "avg_pool",
    "max_pool",
    "global_avg_pool",
]

EPS = 1e-5


# --- masks --------------------------------------------------------------------------------------
def prefix_mask(active: jax.Array | int, size: int) -> jax.Array:
    """``[1, ..., 1, 0, ..., 0]`` of length `size` with `active` ones (nested channel prefixes)."""
    return (jnp.arange(size) < active).astype(jnp.float32)


def kernel_mask(active: jax.Array | int, size: int) -> jax.Array:
    """``size x size`` mask keeping the centred ``active x active`` taps (odd sizes)."""
    centre = (size - 1) // 2
    keep = (jnp.abs(jnp.arange(size) - centre) <= (jnp.asarray(active) - 1) // 2).astype(jnp.float32)
    return keep[:, None] * keep[None, :]


def normal_init(rngs: nnx.Rngs, shape: tuple[int, ...], std: float) -> jax.Array:
    """Gaussian weights drawn on the host from a seed split off `rngs`.

    Drawing with ``jax.random`` compiles one program per distinct shape (seconds for a supernet
    with dozens of layer shapes); NumPy seeded from the JAX key is as reproducible and instant.
    """
    key = rngs.params()
    if isinstance(key, jax.core.Tracer):  # under nnx.eval_shape: only shapes matter
        return jax.random.normal(key, shape) * std
    seed = np.asarray(jax.random.key_data(key))
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape, dtype=np.float32) * std)


def is_float(bits: jax.Array | int | None) -> bool:
    """Whether `bits` is statically the exact float path (no fake quantization traced)."""
    return isinstance(bits, int) and bits >= 32


def _pair(k: int | Sequence[int]) -> tuple[int, int]:
    return (k, k) if isinstance(k, int) else (int(k[0]), int(k[1]))


# --- activations and pooling --------------------------------------------------------------------
def relu(x: jax.Array) -> jax.Array:
    return jnp.maximum(x, 0.0)


def relu6(x: jax.Array) -> jax.Array:
    return jnp.clip(x, 0.0, 6.0)


def hard_sigmoid(x: jax.Array) -> jax.Array:
    return relu6(x + 3.0) / 6.0


def hard_swish(x: jax.Array) -> jax.Array:
    return x * hard_sigmoid(x)


def swish(x: jax.Array) -> jax.Array:
    return x * jax.nn.sigmoid(x)


ACTIVATIONS = {"relu": relu, "relu6": relu6, "h_swish": hard_swish, "swish": swish}
"""Activation by the names the search-space skeletons use."""


def _pool_padding(size: int, stride: int, padding: str | int) -> tuple[tuple[int, int], ...]:
    p = (size - 1) // 2 if padding == "same" else (0 if padding == "valid" else int(padding))
    return ((0, 0), (p, p), (p, p), (0, 0))


def avg_pool(x: jax.Array, size: int, stride: int = 1, padding: str | int = "same") -> jax.Array:
    """Average pool over NHWC that divides by the taps inside the image (count_include_pad=False)."""
    window, strides, pads = (1, size, size, 1), (1, stride, stride, 1), _pool_padding(size, stride, padding)
    total = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, strides, pads)
    return total / _tap_counts(x.shape[1], x.shape[2], size, stride, pads[1][0])


def _tap_counts(h: int, w: int, size: int, stride: int, pad: int) -> np.ndarray:
    """How many taps of each pooling window fall inside the image (computed on the host: XLA
    would otherwise constant-fold a reduce-window over ones at compile time, seconds each)."""

    def counts(n: int) -> np.ndarray:
        starts = np.arange(0, n + 2 * pad - size + 1, stride) - pad
        return (np.minimum(starts + size, n) - np.maximum(starts, 0)).astype(np.float32)

    return np.outer(counts(h), counts(w))[None, :, :, None]


def max_pool(x: jax.Array, size: int, stride: int = 1, padding: str | int = "same") -> jax.Array:
    window, strides, pads = (1, size, size, 1), (1, stride, stride, 1), _pool_padding(size, stride, padding)
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, window, strides, pads)


def global_avg_pool(x: jax.Array) -> jax.Array:
    return jnp.mean(x, axis=(1, 2))


# --- layers -------------------------------------------------------------------------------------
class Conv(nnx.Module):
    """2-D convolution over NHWC with elastic channels, kernel size and bits.

    Padding ``"same"`` is symmetric, ``(k - 1) // 2 * dilation`` per side (output
    ``ceil(n / stride)`` for odd k), so a centre-cropped kernel is exactly the smaller kernel.
    ``groups == in_features`` makes a depthwise convolution.

    With ``canonical_grads`` a dense (one-group, not pointwise) convolution on XLA:CPU is
    `nasx.nn.cpu_conv.dense_conv`: the same values, gradients 5-10x faster inside a
    ``lax.switch`` or loop body, but reverse-mode autodiff only (`jax.jvp` cannot pass it).
    `nasx.supernet.functional` sets it for a whole network; other backends ignore it.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: int | Sequence[int],
        *,
        stride: int = 1,
        padding: str | int = "same",
        groups: int = 1,
        dilation: int = 1,
        use_bias: bool = False,
        bits: int = 32,
        canonical_grads: bool = False,
        rngs: nnx.Rngs,
    ) -> None:
        kh, kw = _pair(kernel_size)
        fan_in = kh * kw * (in_features // groups)
        shape = (kh, kw, in_features // groups, out_features)
        self.kernel = nnx.Param(normal_init(rngs, shape, np.sqrt(2.0 / fan_in)))
        self.bias = nnx.Param(jnp.zeros((out_features,))) if use_bias else None
        self.in_features, self.out_features = in_features, out_features
        self.kernel_size, self.stride, self.padding = (kh, kw), stride, padding
        self.groups, self.dilation, self.bits = groups, dilation, bits
        self.canonical_grads = canonical_grads

    @property
    def depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.in_features

    def __call__(
        self,
        x: jax.Array,
        *,
        in_mask: jax.Array | None = None,
        out_mask: jax.Array | None = None,
        kernel_size: jax.Array | int | None = None,
        bits: jax.Array | int | None = None,
    ) -> jax.Array:
        bits = self.bits if bits is None else bits
        w, taps = self.kernel[...], None
        if kernel_size is not None:
            taps = kernel_mask(kernel_size, self.kernel_size[0])
        cpu_depthwise = self.depthwise and jax.default_backend() == "cpu"
        if is_float(bits):
            # Masks go on the activations where they can: the weights stay shared by every
            # architecture, so a vmap over architectures batches only activations (XLA:CPU runs a
            # convolution with per-architecture weights as a grouped one, many times slower).
            if in_mask is not None and not self.depthwise:
                x = x * in_mask.reshape(1, 1, 1, -1)
            if taps is not None and not cpu_depthwise:
                w, taps = w * taps[:, :, None, None], None
        else:  # the quantization scale must see exactly the active weights
            if taps is not None:
                w, taps = w * taps[:, :, None, None], None
            if in_mask is not None and not self.depthwise:
                w = w * in_mask[None, None, :, None]
            w = fake_quant(w, bits)
        kh, kw = self.kernel_size
        if self.padding == "same":
            pads = [((kh - 1) // 2 * self.dilation,) * 2, ((kw - 1) // 2 * self.dilation,) * 2]
        else:
            p = 0 if self.padding == "valid" else int(self.padding)
            pads = [(p, p), (p, p)]
        if cpu_depthwise:
            y = depthwise_by_taps(x, w, self.stride, pads, self.dilation, taps)
        elif (kh, kw) == (1, 1) and self.groups == 1 and pads == [(0, 0), (0, 0)]:
            # a pointwise conv is a matrix product (XLA:CPU's conv gradients are far slower)
            y = x[:, :: self.stride, :: self.stride, :] @ w[0, 0]
        elif self.groups == 1 and self.canonical_grads and jax.default_backend() == "cpu":
            y = dense_conv(x, w, self.stride, pads, self.dilation)
        else:
            y = jax.lax.conv_general_dilated(
                x,
                w,
                window_strides=(self.stride, self.stride),
                padding=pads,
                rhs_dilation=(self.dilation, self.dilation),
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
                feature_group_count=self.groups,
            )
        if out_mask is not None:
            y = y * out_mask.reshape(1, 1, 1, -1)
        if self.bias is not None:
            b = self.bias[...]
            y = y + (b if out_mask is None else b * out_mask)[None, None, None, :]
        return y

    def sliced(
        self,
        in_index: np.ndarray,
        out_index: np.ndarray,
        kernel_size: int | None = None,
        bits: int = 32,
        *,
        rngs: nnx.Rngs,
    ) -> Conv:
        """A standalone conv holding only the active weights (channel indices, centred kernel)."""
        k = self.kernel_size[0] if kernel_size is None else int(kernel_size)
        crop = (self.kernel_size[0] - k) // 2
        w = np.asarray(self.kernel[...])
        if crop:
            w = w[crop : w.shape[0] - crop, crop : w.shape[1] - crop]
        if not self.depthwise:
            w = w[:, :, np.asarray(in_index)]
        w = w[..., np.asarray(out_index)]
        n_in = len(out_index) if self.depthwise else len(in_index)
        out = Conv(
            n_in,
            len(out_index),
            (w.shape[0], w.shape[1]),
            stride=self.stride,
            padding=self.padding,
            groups=n_in if self.depthwise else 1,
            dilation=self.dilation,
            use_bias=self.bias is not None,
            bits=int(bits),
            rngs=rngs,
        )
        out.kernel[...] = jnp.asarray(w)
        if self.bias is not None:
            out.bias[...] = jnp.asarray(np.asarray(self.bias[...])[np.asarray(out_index)])
        return out


class Dense(nnx.Module):
    """Fully-connected layer with elastic input/output features and bits."""

    def __init__(
        self, in_features: int, out_features: int, *, use_bias: bool = True, bits: int = 32, rngs: nnx.Rngs
    ) -> None:
        self.kernel = nnx.Param(normal_init(rngs, (in_features, out_features), 1.0 / np.sqrt(in_features)))
        self.bias = nnx.Param(jnp.zeros((out_features,))) if use_bias else None
        self.in_features, self.out_features, self.bits = in_features, out_features, bits

    def __call__(
        self,
        x: jax.Array,
        *,
        in_mask: jax.Array | None = None,
        out_mask: jax.Array | None = None,
        bits: jax.Array | int | None = None,
    ) -> jax.Array:
        bits = self.bits if bits is None else bits
        w = self.kernel[...]
        if is_float(bits):  # masks on activations: weights stay unbatched (see `Conv`)
            y = (x if in_mask is None else x * in_mask[None, :]) @ w
        else:
            y = x @ fake_quant(w if in_mask is None else w * in_mask[:, None], bits)
        if out_mask is not None:
            y = y * out_mask[None, :]
        if self.bias is not None:
            b = self.bias[...]
            y = y + (b if out_mask is None else b * out_mask)[None, :]
        return y

    def sliced(self, in_index: np.ndarray, out_index: np.ndarray, bits: int = 32, *, rngs: nnx.Rngs) -> Dense:
        w = np.asarray(self.kernel[...])[np.asarray(in_index)][:, np.asarray(out_index)]
        out = Dense(len(in_index), len(out_index), use_bias=self.bias is not None, bits=int(bits), rngs=rngs)
        out.kernel[...] = jnp.asarray(w)
        if self.bias is not None:
            out.bias[...] = jnp.asarray(np.asarray(self.bias[...])[np.asarray(out_index)])
        return out


class BatchNormContext:
    """Where batch-norm statistics come from during one forward pass (a trace-time object).

    * ``BatchNormContext()``: normalize with the current batch's statistics and record them in
      `recorded` (keyed by each layer's `key`), as in training or when re-calibrating a subnet.
    * ``BatchNormContext(stats)``: normalize with the given per-layer ``(mean, var)``.
    * passing no context: a layer uses its own stored statistics (standalone models).
    """

    def __init__(self, stats: dict[str, tuple[jax.Array, jax.Array]] | None = None) -> None:
        self.given = stats
        self.recorded: dict[str, tuple[jax.Array, jax.Array]] = {}


class BatchNorm(nnx.Module):
    """Batch norm with elastic channels; statistics per `BatchNormContext`.

    A supernet's batch norms have no running statistics (they are wrong for every subnet but
    one): each subnet is re-calibrated instead. `sliced` returns a standalone layer that stores
    the statistics it is given.
    """

    def __init__(self, num_features: int, *, stats: bool = False, rngs: nnx.Rngs | None = None) -> None:
        del rngs
        self.scale = nnx.Param(jnp.ones((num_features,)))
        self.bias = nnx.Param(jnp.zeros((num_features,)))
        self.mean = nnx.BatchStat(jnp.zeros((num_features,))) if stats else None
        self.var = nnx.BatchStat(jnp.ones((num_features,))) if stats else None
        self.num_features = num_features
        self.key = ""  # set by `name_batchnorms`: the layer's path in its network

    def __call__(
        self, x: jax.Array, *, mask: jax.Array | None = None, ctx: BatchNormContext | None = None
    ) -> jax.Array:
        if ctx is None:
            if self.mean is None:
                raise ValueError(f"batch norm {self.key!r} has no stored statistics; pass a BatchNormContext")
            mean, var = self.mean[...], self.var[...]
        elif ctx.given is None:
            axes = tuple(range(x.ndim - 1))
            mean = jnp.mean(x, axis=axes)
            var = jnp.mean(jnp.square(x - jnp.mean(x, axis=axes, keepdims=True)), axis=axes)
            ctx.recorded[self.key] = (mean, var)
        else:
            mean, var = ctx.given[self.key]
        scale, bias = jax.lax.rsqrt(var + EPS) * self.scale[...], self.bias[...]
        if mask is not None:  # on the per-channel vectors: no pass over the activations
            scale, bias = scale * mask, bias * mask
        shape = (1,) * (x.ndim - 1) + (-1,)  # per channel, explicit rank (rank promotion is an error)
        return (x - mean.reshape(shape)) * scale.reshape(shape) + bias.reshape(shape)

    def sliced(self, index: np.ndarray, stats: tuple[np.ndarray, np.ndarray] | None) -> BatchNorm:
        """A standalone batch norm of the `index` channels, storing `stats` (mean, var)."""
        index = np.asarray(index)
        out = BatchNorm(len(index), stats=True)
        out.scale[...] = jnp.asarray(np.asarray(self.scale[...])[index])
        out.bias[...] = jnp.asarray(np.asarray(self.bias[...])[index])
        if stats is not None:
            out.mean[...] = jnp.asarray(np.asarray(stats[0])[index])
            out.var[...] = jnp.asarray(np.asarray(stats[1])[index])
        out.key = self.key
        return out


class SqueezeExcite(nnx.Module):
    """Squeeze-and-excitation: pool, 1x1 reduce (bias) + ReLU, 1x1 expand (bias) + gate, rescale.

    The 1x1 convolutions act on a pooled vector, so they are `Dense` layers (same weights and
    costs as the 1x1 convs with bias the cost model counts). Build with `SqueezeExcite.create`.

    References:
      Hu, Shen & Sun, "Squeeze-and-Excitation Networks", CVPR 2018.
    """

    def __init__(self, reduce: Dense, expand: Dense, gate: str = "hard_sigmoid") -> None:
        self.reduce, self.expand, self.gate = reduce, expand, gate

    @staticmethod
    def create(
        channels: int, squeeze: int, *, gate: str = "hard_sigmoid", bits: int = 32, rngs: nnx.Rngs
    ) -> SqueezeExcite:
        return SqueezeExcite(
            Dense(channels, squeeze, bits=bits, rngs=rngs),
            Dense(squeeze, channels, bits=bits, rngs=rngs),
            gate,
        )

    def __call__(
        self,
        x: jax.Array,
        *,
        mask: jax.Array | None = None,
        squeeze_mask: jax.Array | None = None,
        bits: jax.Array | int | None = None,
    ) -> jax.Array:
        s = global_avg_pool(x)
        s = relu(self.reduce(s, in_mask=mask, out_mask=squeeze_mask, bits=bits))
        s = self.expand(s, in_mask=squeeze_mask, out_mask=mask, bits=bits)
        g = hard_sigmoid(s) if self.gate == "hard_sigmoid" else jax.nn.sigmoid(s)
        return x * g[:, None, None, :]

    def sliced(
        self, index: np.ndarray, squeeze_index: np.ndarray, bits: int = 32, *, rngs: nnx.Rngs
    ) -> SqueezeExcite:
        return SqueezeExcite(
            self.reduce.sliced(index, squeeze_index, bits, rngs=rngs),
            self.expand.sliced(squeeze_index, index, bits, rngs=rngs),
            self.gate,
        )
