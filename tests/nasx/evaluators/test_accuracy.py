"""Evaluators: a short training of each architecture is a pure function of its steps."""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx

from nasx.data import load
from nasx.evaluators import TrainingEvaluator
from nasx.supernet import functional
from search_spaces.mobilenet.supernet import MobileNetSupernet


def test_training_evaluator_is_a_pure_function_of_the_steps(toy) -> None:
    """Two rounds of 3 steps train exactly as one of 6 (what an ASHA trial relies on)."""
    _, params, apply = functional(MobileNetSupernet(toy, rngs=nnx.Rngs(0)))
    trainer = TrainingEvaluator(toy, apply, params, load("synthetic", size=8, seed=0), steps=6, batch_size=16)
    arch = toy.sample(np.random.default_rng(1))
    whole = trainer.advance(trainer.start(arch), 6)
    halves = trainer.advance(trainer.advance(trainer.start(arch), 3), 3)
    assert whole["step"] == halves["step"] == 6
    for a, b in zip(jax.tree.leaves(whole["params"]), jax.tree.leaves(halves["params"]), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert trainer.accuracy(whole) == trainer([arch])[0]["acc"]
