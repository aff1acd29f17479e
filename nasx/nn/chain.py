"""`Chain`: the layers of a standalone network run in order, as one module sharing their weights."""

from __future__ import annotations

from collections.abc import Sequence

import jax
from flax import nnx

__all__ = ["Chain"]


class Chain(nnx.Module):
    """Layers of a standalone network run in order, each as ``layer(x, None)`` (stored BN statistics)."""

    def __init__(self, layers: Sequence[nnx.Module]) -> None:
        self.layers = nnx.List(layers)

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers:
            x = layer(x, None)
        return x
