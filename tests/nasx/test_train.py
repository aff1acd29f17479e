"""Supernet training on the embedded digits: accuracy of the extremes, resume after a crash."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from nasx.data import Dataset, load
from nasx.errors import RunFolderError
from nasx.evaluate import accuracy
from nasx.sampling import extreme
from nasx.supernet import functional
from nasx.train import TrainConfig, train
from search_spaces import mobilenet
from search_spaces.mobilenet.supernet import MobileNetSupernet

SPACE = mobilenet.space("cifar", bits=(32,), width_mult=0.25)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    # the digits' native 8 px: 16 times fewer pixels than 32 px, so a few hundred steps take ~1.5 min on 2 cores
    return load("digits", size=8, seed=0)


def test_largest_and_smallest_subnets_learn_digits(tiny_supernet: tuple[Path, dict]) -> None:
    """The session's supernet (200 steps of `nasx train-supernet`, tests/conftest.py), its
    checkpoint loaded back and its extreme subnets re-calibrated and scored on held-out digits."""
    from nasx.jobs.trained import load_supernet

    network, supernet, params, _, data = load_supernet(str(tiny_supernet[0]))
    assert network == SPACE and data.x_test.shape[1:3] == (8, 8)
    _, _, apply = functional(supernet)
    largest, smallest = extreme(SPACE, "largest"), extreme(SPACE, "smallest")
    acc = accuracy(apply, params, SPACE, [largest, smallest], data, split="test")
    assert acc[0] >= 0.90, f"largest subnet: {acc[0]:.1%} test accuracy"
    assert acc[1] >= 0.80, f"smallest subnet: {acc[1]:.1%} test accuracy"
    assert tiny_supernet[1]["test_accuracy"] == pytest.approx({"largest": acc[0], "smallest": acc[1]})
    val = accuracy(apply, params, SPACE, [largest, smallest], data)  # the default: validation
    assert tiny_supernet[1]["val_accuracy"] == pytest.approx({"largest": val[0], "smallest": val[1]})
    assert len(data.x_val) > 0 and not np.array_equal(val, acc)


def _tiny_config(**changes) -> TrainConfig:
    base = {
        "steps": 12,
        "batch_size": 32,
        "archs_per_step": 2,
        "checkpoint_every": 4,
        "log_every": 2,
        "seed": 1,
    }
    return TrainConfig(**{**base, **changes})


class Crash(Exception):
    pass


def test_resume_after_a_crash_equals_an_uninterrupted_run(toy, digits: Dataset, tmp_path: Path) -> None:
    small = dataclasses.replace(
        digits,
        x_train=digits.x_train[:256],
        y_train=digits.y_train[:256],
        x_test=digits.x_test[:64],
        y_test=digits.y_test[:64],
    )
    config = _tiny_config()
    whole = train(MobileNetSupernet(toy, rngs=nnx.Rngs(0)), small, config)

    def crash_at_10(step: int, _metrics: dict) -> None:
        if step == 10:
            raise Crash  # dies between the checkpoints of steps 8 and 12

    run = tmp_path / "run"
    with pytest.raises(Crash):
        train(MobileNetSupernet(toy, rngs=nnx.Rngs(0)), small, config, out_dir=run, on_step=crash_at_10)
    with pytest.raises(RunFolderError, match="--resume"):
        train(MobileNetSupernet(toy, rngs=nnx.Rngs(0)), small, config, out_dir=run)
    resumed = train(MobileNetSupernet(toy, rngs=nnx.Rngs(7)), small, config, out_dir=run, resume=True)

    for a, b in zip(jax.tree.leaves(whole.params), jax.tree.leaves(resumed.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    steps = [r["step"] for r in resumed.history]
    assert steps == sorted(set(steps)) == [2, 4, 6, 8, 10, 12]  # no step logged twice

    with pytest.raises(RunFolderError, match="differs in: config"):
        train(
            MobileNetSupernet(toy, rngs=nnx.Rngs(0)),
            small,
            _tiny_config(learning_rate=0.5),
            out_dir=run,
            resume=True,
        )
