"""Analytic cost model: MACs, params, weight bytes, peak activation memory, layer count.

Costs come from an architecture's spec alone, never from building a network, so they run
anywhere in microseconds and the MP solver can use them as constants. Conventions:

* ``macs``: multiply-accumulates of convolution and fully-connected layers at batch 1. This is
  what the NASNet, MobileNet, OFA and DeepMAD papers call "FLOPs" or "MAdds", and what a budget
  such as ``600M-flops`` constrains. Pooling, BN, activations and additions are not counted.
* ``params``: trainable parameters (conv/FC weights and biases, BN scale and shift); BN running
  statistics are not parameters.
* ``weight_bytes``: bytes to store the parameters when each layer's weights are quantized to its
  chosen bits: packed ``bits``-bit integers plus one float32 scale per output channel for
  ``bits < 32``; biases and BN parameters stay float32 (``bits = 32`` is plain float32).
* ``activation_bytes``: peak bytes of float32 activations alive at once during inference at
  batch 1 (a layer's input and output plus any tensors held for later, such as a residual
  block's input or a cell's hidden states).
* ``layers``: weight layers on the longest path from input to output (a ResNet-50 has 50,
  a MobileNetV2 53); shortcut projections and squeeze-excitation layers are not counted.

Composition: ``a + b`` is "a then b" (counts add, peak memory is the larger peak) and
``n * c`` is c repeated n times.

A `Layer` describes one layer as plain data (op, channels, kernel, stride, input side, groups,
bits, activation, ...) and a `Block` is a sequence of them run as one unit (an MBConv block). A
space that lists its blocks per architecture (``space.blocks(arch)``) gets their analytic costs
from `Layer.costs` and their measured latency from a latency table (`nasx.hardware.latency`), both keyed
by the same descriptors.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "FLOAT_BYTES",
    "Costs",
    "Layer",
    "Block",
    "LAYER_OPS",
    "conv2d",
    "dense",
    "out_size",
    "weight_tensor_bytes",
]

FLOAT_BYTES = 4
"""Activations, biases, BN parameters and quantization scales are float32."""


@dataclass(frozen=True, slots=True)
class Costs:
    """Costs of a network or of a part of one (see the module docstring for conventions)."""

    macs: int = 0
    params: int = 0
    weight_bytes: int = 0
    activation_bytes: int = 0
    layers: int = 0
    latency_ms: float | None = None

    def __add__(self, other: Costs) -> Costs:
        return Costs(  # positional: this runs millions of times in a search
            self.macs + other.macs,
            self.params + other.params,
            self.weight_bytes + other.weight_bytes,
            max(self.activation_bytes, other.activation_bytes),
            self.layers + other.layers,
            _add_optional(self.latency_ms, other.latency_ms),
        )

    def __rmul__(self, n: int) -> Costs:
        if n == 0:
            return Costs()
        return Costs(
            macs=n * self.macs,
            params=n * self.params,
            weight_bytes=n * self.weight_bytes,
            activation_bytes=self.activation_bytes,
            layers=n * self.layers,
            latency_ms=None if self.latency_ms is None else n * self.latency_ms,
        )

    def replace(self, **changes: int | float | None) -> Costs:
        return dataclasses.replace(self, **changes)

    def holding(self, extra_bytes: int) -> Costs:
        """The same part run while `extra_bytes` of other activations stay alive."""
        return Costs(
            self.macs,
            self.params,
            self.weight_bytes,
            self.activation_bytes + extra_bytes,
            self.layers,
            self.latency_ms,
        )

    def to_dict(self) -> dict[str, int | float]:
        d = {
            "macs": self.macs,
            "params": self.params,
            "weight_bytes": self.weight_bytes,
            "activation_bytes": self.activation_bytes,
            "layers": self.layers,
        }
        if self.latency_ms is not None:
            d["latency_ms"] = self.latency_ms
        return d


def _add_optional(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def out_size(in_size: int, kernel: int, stride: int, padding: str = "same") -> int:
    """Output side length: ``ceil(in/stride)`` for SAME padding, TF/PyTorch VALID otherwise."""
    if padding == "same":
        return -(-in_size // stride)
    return (in_size - kernel) // stride + 1


def weight_tensor_bytes(n_weights: int, n_out_channels: int, bits: int) -> int:
    """Bytes of a weight tensor at `bits`: packed integers plus a float32 scale per output channel."""
    if bits >= 32:
        return FLOAT_BYTES * n_weights
    return math.ceil(n_weights * bits / 8) + FLOAT_BYTES * n_out_channels


@functools.cache  # pure; the same layer recurs across architectures
def conv2d(
    c_in: int,
    c_out: int,
    kernel: int | tuple[int, int],
    in_size: int,
    *,
    stride: int = 1,
    padding: str = "same",
    groups: int = 1,
    bits: int = 32,
    bias: bool = False,
    bn: bool = True,
    layers: int = 1,
) -> Costs:
    """A (grouped) 2-D convolution, optionally followed by batch norm, on a square input.

    Args:
      c_in, c_out: input and output channels.
      kernel: side, or (height, width) for asymmetric kernels such as 1x7.
      in_size: input side in pixels.
      stride, padding: ``"same"`` (output ``ceil(in/stride)``) or ``"valid"``.
      groups: ``c_in`` for a depthwise convolution.
      bits: weight bits (32 = float32).
      bias, bn: whether the layer has a bias / a following BN (scale and shift).
      layers: how many layers it counts for on the main path (0 for a shortcut projection).
    """
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    size = out_size(in_size, max(kh, kw), stride, padding)
    n_weights = (c_in // groups) * c_out * kh * kw
    extra = (c_out if bias else 0) + (2 * c_out if bn else 0)
    return Costs(
        macs=n_weights * size * size,
        params=n_weights + extra,
        weight_bytes=weight_tensor_bytes(n_weights, c_out, bits) + FLOAT_BYTES * extra,
        activation_bytes=FLOAT_BYTES * (c_in * in_size * in_size + c_out * size * size),
        layers=layers,
    )


@functools.cache
def dense(n_in: int, n_out: int, *, bits: int = 32, bias: bool = True, layers: int = 1) -> Costs:
    """A fully-connected layer on a vector of `n_in` features."""
    n_weights = n_in * n_out
    extra = n_out if bias else 0
    return Costs(
        macs=n_weights,
        params=n_weights + extra,
        weight_bytes=weight_tensor_bytes(n_weights, n_out, bits) + FLOAT_BYTES * extra,
        activation_bytes=FLOAT_BYTES * (n_in + n_out),
        layers=layers,
    )


LAYER_OPS = ("conv", "dense", "se", "pool")
"""The ops a `Layer` can be."""


class Layer(NamedTuple):
    """One layer of a network as the cost model and a latency table see it: plain, hashable data.

    Ops (see `LAYER_OPS`):

    * ``"conv"``: a (grouped) convolution `c_in` -> `c_out` on an `in_size` px square input, then
      batch norm if `bn`, activation `act` ("" = none) and, if `residual`, the addition of the
      block input (`c_out` channels at the output size);
    * ``"dense"``: fully-connected `c_in` -> `c_out` on a pooled vector (bias if `bias`), then `act`;
    * ``"se"``: squeeze-excitation of `c_in` channels at `in_size` px through a squeeze width of
      `c_out`: global pool, dense + `act`, dense + gate (hard-sigmoid after relu, sigmoid after
      swish), rescale; both dense layers have biases and count for no layer;
    * ``"pool"``: global average pool of `c_in` channels at `in_size` px (no cost).
    """

    op: str
    c_in: int
    c_out: int
    in_size: int = 1
    kernel: int = 1
    stride: int = 1
    groups: int = 1
    bits: int = 32
    act: str = ""
    bn: bool = False
    bias: bool = False
    residual: bool = False

    def costs(self) -> Costs:
        """Analytic costs (`conv2d`, `dense`); a sum over a network's layers gives its MACs, params,
        weight bytes and layer count (not its peak activation memory, which is not a sum)."""
        if self.op == "conv":
            return conv2d(
                self.c_in,
                self.c_out,
                self.kernel,
                self.in_size,
                stride=self.stride,
                groups=self.groups,
                bits=self.bits,
                bias=self.bias,
                bn=self.bn,
            )
        if self.op == "dense":
            return dense(self.c_in, self.c_out, bits=self.bits, bias=self.bias)
        if self.op == "se":
            reduce = conv2d(self.c_in, self.c_out, 1, 1, bits=self.bits, bias=True, bn=False, layers=0)
            return reduce + conv2d(self.c_out, self.c_in, 1, 1, bits=self.bits, bias=True, bn=False, layers=0)
        if self.op == "pool":
            return Costs()
        raise ValueError(f"layer op {self.op!r}: expected one of {', '.join(LAYER_OPS)}")


Block = tuple[Layer, ...]
"""Layers run one after the other as one unit of a network (e.g. an MBConv block); a layer with
``residual`` adds the block's input. A latency table times each distinct block as one program."""
