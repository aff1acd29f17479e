"""Dense bit-packing of signed integer weight codes, any width from 1 to 16 bits.

Code ``i`` of a tensor occupies bits ``[i*b, (i+1)*b)`` of its byte buffer, least significant bit
first, in two's complement, so ``n`` codes take exactly ``ceil(n*b/8)`` bytes: what
`nasx.costs.weight_tensor_bytes` counts. The layout is the familiar one at the usual widths:
8-bit codes are int8 bytes, 16-bit codes little-endian int16, 4-bit codes two per byte (low nibble
first); 2-, 3-, 5-, 6-bit ... codes run across byte boundaries with no padding but the last byte's.

`unpack_codes` is written once for NumPy and ``jax.numpy`` (argument `xp`), so the same code
decodes on the host and inside a jitted or ``jax.export``-ed function, where the packed bytes are
an input and the codes never exist outside the computation.
"""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np

from nasx.errors import NasxError

__all__ = ["PackedBitsError", "CodeRangeError", "MAX_BITS", "packed_nbytes", "pack_codes", "unpack_codes"]

MAX_BITS = 16
"""Widest packed code; wider weights are stored as float32 (bits 32)."""


class PackedBitsError(NasxError, ValueError):
    """A bit-width that packed codes cannot have."""


class CodeRangeError(NasxError, ValueError):
    """A code that does not fit its bit-width (or is not an integer)."""


def _check_bits(bits: int) -> int:
    if isinstance(bits, bool) or int(bits) != bits or not 1 <= bits <= MAX_BITS:
        raise PackedBitsError(
            f"bits {bits!r}: packed codes take 1 to {MAX_BITS} bits; store wider weights as float32 (bits 32)"
        )
    return int(bits)


def packed_nbytes(n: int, bits: int) -> int:
    """Bytes of `n` codes at `bits`: ``ceil(n * bits / 8)``."""
    return math.ceil(n * _check_bits(bits) / 8)


def pack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """`codes` (any shape, flattened in C order) as a dense uint8 buffer of `bits`-bit fields.

    Raises:
      PackedBitsError: `bits` is not 1 to 16.
      CodeRangeError: a code is not an integer in ``[-2^(bits-1), 2^(bits-1) - 1]``.
    """
    bits = _check_bits(bits)
    flat = np.asarray(codes).reshape(-1)
    if not np.issubdtype(flat.dtype, np.integer):
        bad = np.flatnonzero(flat != np.round(flat))
        if len(bad):
            raise CodeRangeError(
                f"code {flat[bad[0]]!r} at index {bad[0]} is not an integer; round before packing"
            )
    flat = flat.astype(np.int64)
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    bad = np.flatnonzero((flat < low) | (flat > high))
    if len(bad):
        raise CodeRangeError(
            f"code {int(flat[bad[0]])} at index {bad[0]} does not fit {bits} bits; expected {low} to {high}"
        )
    unsigned = flat & ((1 << bits) - 1)
    if bits % 8 == 0:  # whole bytes, little-endian: int8 / int16
        return (
            np.stack([(unsigned >> (8 * k)) & 0xFF for k in range(bits // 8)], axis=1)
            .astype(np.uint8)
            .reshape(-1)
        )
    fields = (unsigned[:, None] >> np.arange(bits)[None, :]) & 1
    return np.packbits(fields.astype(np.uint8).reshape(-1), bitorder="little")


def unpack_codes(buffer, n: int, bits: int, xp: ModuleType = np):
    """The `n` signed codes (int32, flat) packed at `bits` in the uint8 `buffer`.

    Args:
      buffer: at least ``packed_nbytes(n, bits)`` bytes (NumPy or JAX uint8 array).
      n, bits: how many codes, and their width (static Python ints).
      xp: ``numpy`` or ``jax.numpy``: the array module to compute with.
    """
    bits = _check_bits(bits)
    u = buffer[: packed_nbytes(n, bits)].astype(xp.int32)
    if bits % 8 == 0:  # whole little-endian bytes
        width = bits // 8
        u = u.reshape(n, width)
        unsigned = sum(u[:, k] << (8 * k) for k in range(width))
    elif 8 % bits == 0:  # 1, 2 or 4 bits: whole fields per byte
        shifts = xp.arange(0, 8, bits, dtype=xp.int32)
        unsigned = ((u[:, None] >> shifts[None, :]) & ((1 << bits) - 1)).reshape(-1)[:n]
    else:  # fields straddle bytes: through the bit matrix (8 ints per byte, transient)
        bit = (u[:, None] >> xp.arange(8, dtype=xp.int32)[None, :]) & 1
        fields = bit.reshape(-1)[: n * bits].reshape(n, bits)
        unsigned = (fields << xp.arange(bits, dtype=xp.int32)[None, :]).sum(axis=1)
    signed = xp.where(unsigned >= (1 << (bits - 1)), unsigned - (1 << bits), unsigned)
    return signed.astype(xp.int32)
