"""Zero-cost proxies of architectures on a supernet at initialization, a chunk per compiled call.

Scores are measured on a *proxy network*: a space with the same choices as the searched one but
a small skeleton (CIFAR-size input, a width multiplier, or the NASNet practice of scoring cells
in a small macro network). `nasx.evaluators.project` maps an architecture of the searched space
onto it; costs and budgets are always those of the searched space.

References:
  Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from nasx.evaluators.analytic import project
from nasx.space import Arch, SearchSpace

__all__ = ["ProxyEvaluator", "ProxyFn"]

ProxyFn = Callable[..., jax.Array]
"""``fn(params, archs (n, d) int32, x, y, key) -> (n,) scores``, jitted once."""


class ProxyEvaluator:
    """Zero-cost proxies of architectures on a supernet at initialization.

    Architectures are projected onto the proxy space, deduplicated, encoded and scored in chunks
    of `chunk` (the last chunk padded), so all calls share one compiled function per proxy. Each
    proxy reads the first `images[name]` images of `x` (its reference minibatch size), or all.
    Scores are cached by projected architecture: archs that differ only in choices the proxy
    network does not have (e.g. the NASNet macro) are scored once.
    """

    def __init__(
        self,
        proxy_space: SearchSpace,
        params,
        proxies: Mapping[str, ProxyFn],
        x: jax.Array,
        y: jax.Array,
        key: jax.Array,
        *,
        chunk: int = 16,
        images: Mapping[str, int] | None = None,
    ) -> None:
        self.proxy_space = proxy_space
        self.params = params
        self.proxies = dict(proxies)
        self.x, self.y, self.key = jnp.asarray(x), jnp.asarray(y), key
        self.chunk = chunk
        self.images = dict(images or {})
        self._cache: dict[str, dict[str, float]] = {}

    def __call__(self, archs: Sequence[Arch]) -> list[dict[str, float]]:
        projected = [project(a, self.proxy_space) for a in archs]
        todo = list({p.fingerprint: p for p in projected if p.fingerprint not in self._cache}.values())
        for start in range(0, len(todo), self.chunk):
            part = todo[start : start + self.chunk]
            padded = part + [part[0]] * (self.chunk - len(part))  # one shape: one compile
            encoded = jnp.asarray(np.stack([self.proxy_space.encode(a) for a in padded]), jnp.int32)
            values = {}
            for name, fn in self.proxies.items():
                n = self.images.get(name, len(self.x))
                values[name] = np.asarray(fn(self.params, encoded, self.x[:n], self.y[:n], self.key))[
                    : len(part)
                ]
            for i, p in enumerate(part):
                self._cache[p.fingerprint] = {name: float(v[i]) for name, v in values.items()}
        return [dict(self._cache[p.fingerprint]) for p in projected]
