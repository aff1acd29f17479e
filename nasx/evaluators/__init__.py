"""Evaluators: turn a batch of architectures into scores for the search loop (`nasx.search`).

* `analytic`: closed-form scores of the arch alone (DeepMAD entropy, params, MACs); no JAX.
* `ProxyEvaluator`: zero-cost proxies (`nasx.proxies`) of the masked supernet at initialization,
  one jitted, vmapped call per chunk of architectures, so every chunk reuses one compile.
* `AccuracyEvaluator`: held-out accuracy of each subnet with the weights it inherits from a
  trained supernet, batch norm re-calibrated per subnet (`nasx.evaluate`).

Scores are measured on a *proxy network*: a space with the same choices as the searched one but
a small skeleton (CIFAR-size input, a width multiplier, or the NASNet practice of scoring cells
in a small macro network). `project` maps an architecture of the searched space onto it; costs
and budgets are always those of the searched space.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from nasx.budget import Budget
from nasx.errors import InfeasibleBudgetError
from nasx.space import Arch, SearchSpace

__all__ = ["analytic", "project", "fill_budget", "ProxyEvaluator", "AccuracyEvaluator", "TrainingEvaluator"]

ProxyFn = Callable[..., jax.Array]
"""``fn(params, archs (n, d) int32, x, y, key) -> (n,) scores``, jitted once."""


def analytic(
    scores: Mapping[str, Callable[[Arch], float]],
) -> Callable[[Sequence[Arch]], list[dict[str, float]]]:
    """An evaluator of closed-form scores, e.g. ``{"entropy": deepmad_score}``."""

    def evaluate(archs: Sequence[Arch]) -> list[dict[str, float]]:
        return [{name: float(fn(a)) for name, fn in scores.items()} for a in archs]

    return evaluate


def project(arch: Arch, space: SearchSpace) -> Arch:
    """`arch` as an architecture of `space` (same choice names, possibly fewer options).

    Each choice keeps its value when `space` allows it, else takes the nearest allowed option
    (numbers) or the first one; choices `space` lacks are dropped (e.g. bits in a float proxy).
    """
    values = {}
    for choice in space.choices:
        if choice.name not in arch:
            continue
        v = arch[choice.name]
        if v not in choice.options:
            numeric = [o for o in choice.options if isinstance(o, (int, float)) and not isinstance(o, bool)]
            if numeric and isinstance(v, (int, float)) and not isinstance(v, bool):
                v = min(numeric, key=lambda o: (abs(o - v), o))
            else:
                v = choice.options[0]
        values[choice.name] = v
    return space.validate(Arch(values))


def fill_budget(
    space: SearchSpace, arch: Arch, budget: Budget, names: Sequence[str], resolution: int | None = None
) -> Arch:
    """`arch` with the choices `names` set to the admitted combination of most MACs (then params).

    NASNet's recipe: a cell is searched, then the network is scaled (cells per stack N, filters
    F) to fill the budget. Exhaustive over the options of `names`, so exact.

    Raises:
      InfeasibleBudgetError: no combination of `names` admits `arch` within `budget`.
    """
    choices = [c for c in space.choices if c.name in names]
    best: tuple[tuple[int, int], Arch] | None = None
    for combo in itertools.product(*(c.options for c in choices)):
        candidate = arch.replace({c.name: v for c, v in zip(choices, combo, strict=True)})
        costs = space.costs(candidate, resolution)
        if budget.admits(costs) and (best is None or (costs.macs, costs.params) > best[0]):
            best = ((costs.macs, costs.params), candidate)
    if best is None:
        raise InfeasibleBudgetError(
            f"no choice of {', '.join(names)} fits this cell into the budget {budget}; raise the budget"
        )
    return best[1]


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


class AccuracyEvaluator:
    """Held-out accuracy of each subnet with inherited, re-calibrated weights (`supernet:CKPT`)."""

    def __init__(self, proxy_space: SearchSpace, apply, params, data, *, chunk: int = 8, mesh=None) -> None:
        """`mesh` (`nasx.devices.local_mesh`): split each chunk of architectures over its devices."""
        from nasx.evaluate import make_evaluator

        self.proxy_space = proxy_space
        self.apply, self.params, self.data = apply, params, data
        self.chunk = chunk
        self._jitted = make_evaluator(apply, mesh)
        self._cache: dict[str, float] = {}

    def __call__(self, archs: Sequence[Arch]) -> list[dict[str, float]]:
        from nasx.evaluate import accuracy

        projected = [project(a, self.proxy_space) for a in archs]
        todo = list({p.fingerprint: p for p in projected if p.fingerprint not in self._cache}.values())
        for start in range(0, len(todo), self.chunk):
            part = todo[start : start + self.chunk]
            padded = part + [part[0]] * (self.chunk - len(part))
            acc = accuracy(
                self.apply, self.params, self.proxy_space, padded, self.data, evaluator=self._jitted
            )
            for i, p in enumerate(part):
                self._cache[p.fingerprint] = float(acc[i])
        return [{"acc": self._cache[p.fingerprint]} for p in projected]


class TrainingEvaluator:
    """Held-out accuracy of each architecture after a short training of its own (``train:STEPS``).

    Every architecture starts from the same initial supernet weights and trains alone (its masked
    subnet, one compiled step for all architectures) for `steps` steps of SGD with a cosine
    schedule, then is evaluated with batch norm re-calibrated. Expensive: meant for Ray Tune,
    where each architecture is a trial that reports after every round of ``steps / rounds`` steps
    and ASHA stops the poor ones early (`start`, `advance`, `accuracy` are the trial's API).
    """

    def __init__(
        self,
        proxy_space: SearchSpace,
        apply,
        params,
        data,
        *,
        steps: int,
        batch_size: int = 64,
        learning_rate: float = 0.05,
        seed: int = 0,
    ) -> None:
        from nasx.evaluate import make_evaluator
        from nasx.train import TrainConfig, make_step, optimizer

        if steps < 1:
            raise ValueError(f"train:{steps}: the number of training steps must be >= 1")
        self.proxy_space, self.apply, self.params, self.data = proxy_space, apply, params, data
        self.steps, self.batch_size, self.seed = steps, batch_size, seed
        config = TrainConfig(steps=steps, batch_size=batch_size, learning_rate=learning_rate, seed=seed)
        self.tx = optimizer(config)
        self._step = make_step(apply, self.tx, flip=data.flip, distill=False)
        self._logits = make_evaluator(apply)

    def start(self, arch: Arch) -> dict:
        """A fresh training state of `arch` (the shared initial weights, step 0)."""
        encoded = jnp.asarray(self.proxy_space.encode(project(arch, self.proxy_space)))[None]
        return {
            "arch": arch,
            "encoded": encoded,
            "params": self.params,
            "opt": self.tx.init(self.params),
            "step": 0,
        }

    def advance(self, state: dict, n: int) -> dict:
        """`state` trained `n` more steps (not past `steps`)."""
        from nasx.data import batch_indices

        params, opt = state["params"], state["opt"]
        key = jax.random.key(self.seed)
        end = min(self.steps, state["step"] + n)
        for step in range(state["step"], end):
            index = batch_indices(len(self.data.x_train), self.batch_size, self.seed, step)
            x, y = jnp.asarray(self.data.x_train[index]), jnp.asarray(self.data.y_train[index])
            params, opt, _ = self._step(params, opt, state["encoded"], x, y, jax.random.fold_in(key, step))
        return {**state, "params": params, "opt": opt, "step": end}

    def accuracy(self, state: dict) -> float:
        from nasx.evaluate import accuracy

        arch = project(state["arch"], self.proxy_space)
        return float(
            accuracy(
                self.apply, state["params"], self.proxy_space, [arch], self.data, evaluator=self._logits
            )[0]
        )

    def __call__(self, archs: Sequence[Arch]) -> list[dict[str, float]]:
        out = []
        for arch in archs:
            state = self.advance(self.start(arch), self.steps)
            out.append({"acc": self.accuracy(state), "steps": float(state["step"])})
        return out
