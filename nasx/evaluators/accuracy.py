"""Accuracy evaluators: held-out accuracy of each architecture, inherited or briefly trained.

* `AccuracyEvaluator`: each subnet with the weights it inherits from a trained supernet, batch
  norm re-calibrated per subnet (`nasx.evaluate`), ``--evaluator supernet:CKPT``.
* `TrainingEvaluator`: each architecture trained alone for a few steps, ``--evaluator train:STEPS``
  (with Ray Tune, one trial per architecture that ASHA may stop early).

References:
  Cai et al., "Once-for-All: Train One Network and Specialize it for Efficient Deployment",
  ICLR 2020 (subnets evaluated with inherited weights, batch norm re-calibrated).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from nasx.evaluators.analytic import project
from nasx.space import Arch, SearchSpace

__all__ = ["AccuracyEvaluator", "TrainingEvaluator"]


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
