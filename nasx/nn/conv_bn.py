"""`ConvBN`: convolution, masked batch norm and an optional activation, the unit of the CNN supernets.

Inactive channels stay exactly 0 through it: the conv has no bias, the masked batch norm zeroes
the inactive outputs, and every activation maps 0 to 0. Its inputs come from such units (or sums
of them), so their inactive channels are already 0 and a float conv ignores `in_mask`; a
quantized conv takes it, on its weights, so the quantization scales see only active weights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import numpy as np
from flax import nnx

from nasx.nn.layers import ACTIVATIONS, BatchNorm, BatchNormContext, Conv, is_float

if TYPE_CHECKING:
    from nasx.supernet import Stats

__all__ = ["ConvBN"]


class ConvBN(nnx.Module):
    """Conv -> masked BN (-> activation `act`, a name of `nasx.nn.layers.ACTIVATIONS`).

    Attributes:
      conv: the convolution (no bias).
      bn: its batch norm.
      act: the activation after the batch norm, or None.
    """

    def __init__(self, conv: Conv, bn: BatchNorm, act: str | None = None) -> None:
        self.conv, self.bn, self.act = conv, bn, act

    @staticmethod
    def create(
        c_in: int,
        c_out: int,
        kernel: int,
        *,
        stride: int = 1,
        groups: int = 1,
        act: str | None = None,
        rngs: nnx.Rngs,
    ) -> ConvBN:
        """A new unit mapping `c_in` to `c_out` channels (``groups == c_in``: depthwise)."""
        conv = Conv(c_in, c_out, kernel, stride=stride, groups=groups, rngs=rngs)
        return ConvBN(conv, BatchNorm(c_out), act)

    def __call__(
        self,
        x: jax.Array,
        ctx: BatchNormContext | None,
        *,
        in_mask: jax.Array | None = None,
        out_mask: jax.Array | None = None,
        kernel_size: jax.Array | int | None = None,
        bits: jax.Array | int | None = None,
    ) -> jax.Array:
        """The unit on `x` with active input/output channels `in_mask`/`out_mask` (None: all)."""
        y = self.conv(x, in_mask=None if is_float(bits) else in_mask, kernel_size=kernel_size, bits=bits)
        y = self.bn(y, mask=out_mask, ctx=ctx)
        return y if self.act is None else ACTIVATIONS[self.act](y)

    def sliced(
        self,
        in_index: np.ndarray,
        out_index: np.ndarray,
        stats: Stats,
        *,
        kernel_size: int | None = None,
        bits: int,
        rngs: nnx.Rngs,
    ) -> ConvBN:
        """The standalone unit of inputs `in_index` and outputs `out_index`, centred kernel of
        `kernel_size` (None: the whole), weights at `bits`, batch norm with its `stats`."""
        conv = self.conv.sliced(in_index, out_index, kernel_size, bits, rngs=rngs)
        return ConvBN(conv, self.bn.sliced(out_index, stats[self.bn.key]), self.act)
