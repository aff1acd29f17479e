"""Symmetric per-output-channel weight quantization, and its straight-through fake version.

At ``bits`` b a weight tensor becomes integers in ``[-(2^(b-1) - 1), 2^(b-1) - 1]`` times one float32
scale per output channel (``max |w| / (2^(b-1) - 1)``), so 4 bits give at most 15 levels per
channel. ``bits >= 32`` is the exact float path. `fake_quant` rounds in the forward pass and passes
the gradient straight through, so a supernet trains every bit-width with one set of weights.

References:
  Bengio, Léonard & Courville, "Estimating or Propagating Gradients Through Stochastic Neurons",
  2013 (straight-through estimator); Jacob et al., "Quantization and Training of Neural Networks
  for Efficient Integer-Arithmetic-Only Inference", CVPR 2018.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["quantize", "dequantize", "fake_quant"]


def _levels(bits: jax.Array | int) -> jax.Array:
    return 2.0 ** (jnp.asarray(bits, jnp.float32) - 1.0) - 1.0


def quantize(w: jax.Array, bits: jax.Array | int) -> tuple[jax.Array, jax.Array]:
    """Integer codes (as float32) and per-output-channel scales; the last axis is the output."""
    levels = _levels(bits)
    amax = jnp.max(jnp.abs(w), axis=tuple(range(w.ndim - 1)), keepdims=True)
    scale = amax / levels
    safe = jnp.where(scale > 0, scale, 1.0)
    codes = jnp.clip(jnp.round(w / safe), -levels, levels)
    return codes, scale


def dequantize(codes: jax.Array, scale: jax.Array) -> jax.Array:
    return codes * scale


def fake_quant(w: jax.Array, bits: jax.Array | int) -> jax.Array:
    """`w` rounded to `bits` in the forward pass, identity in the backward pass (STE).

    ``bits`` may be a Python int (32 skips the work) or a traced int32 (inside one compiled
    supernet every layer's bit-width is data).
    """
    if isinstance(bits, int) and bits >= 32:
        return w
    q = dequantize(*quantize(w, bits))
    q = w + jax.lax.stop_gradient(q - w)
    return jnp.where(jnp.asarray(bits) >= 32, w, q)
