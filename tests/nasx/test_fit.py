"""Training one network from scratch (`nasx.fit`): it learns, resumes exactly, re-calibrates its
batch norms to the statistics numpy measures, and stops on a diverging loss."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nasx.data import load
from nasx.errors import NonFiniteLossError, RunFolderError
from nasx.fit import FitConfig, fit, model_accuracy, recalibrate, steps_for_epochs
from nasx.jobs.fit import fresh_model
from nasx.nn.layers import BatchNorm
from nasx.sampling import extreme


@pytest.fixture(scope="module")
def data():
    return load("digits", size=8)


@pytest.fixture(scope="module")
def model(toy):
    return fresh_model(toy, extreme(toy, "largest"), seed=0)


def _config(**changes) -> FitConfig:
    base = {
        "steps": 60,
        "batch_size": 32,
        "warmup_steps": 5,
        "checkpoint_every": 20,
        "log_every": 10,
        "seed": 2,
    }
    return FitConfig(**{**base, **changes})


def test_a_fresh_model_has_the_analytic_size_and_learns_digits(toy, model, data) -> None:
    from nasx.supernet import count_params

    assert count_params(model) == toy.costs(extreme(toy, "largest")).params
    before = model_accuracy(model, *data.split("val"))
    result = fit(model, data, _config(steps=120))
    after = {split: model_accuracy(result.model, *data.split(split)) for split in ("val", "test")}
    assert before < 0.3 and after["val"] > 0.7 and after["test"] > 0.7, (before, after)
    assert result.step == 120 and result.seconds > 0


def test_resume_after_a_kill_equals_an_uninterrupted_run(model, data, tmp_path: Path) -> None:
    config = _config()
    whole = fit(model, data, config, out_dir=tmp_path / "whole")
    stop = {"at": 30}

    def crash(step: int, _: dict) -> None:
        if step == stop["at"]:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(model, data, config, out_dir=tmp_path / "cut", on_step=crash)
    with pytest.raises(RunFolderError, match="--resume"):
        fit(model, data, config, out_dir=tmp_path / "cut")
    resumed = fit(model, data, config, out_dir=tmp_path / "cut", resume=True)
    for a, b in zip(jax_leaves(whole.model), jax_leaves(resumed.model), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert [h["step"] for h in resumed.history] == [h["step"] for h in whole.history]
    with pytest.raises(RunFolderError, match="differs in: config"):
        fit(
            model, data, dataclasses.replace(config, learning_rate=0.2), out_dir=tmp_path / "cut", resume=True
        )


def jax_leaves(model: nnx.Module) -> list[np.ndarray]:
    import jax

    return [np.asarray(a) for a in jax.tree.leaves(nnx.state(model))]


def test_a_diverging_loss_stops_with_a_named_error(model, data, tmp_path: Path) -> None:
    with pytest.raises(NonFiniteLossError, match="lower --lr"):
        fit(model, data, _config(learning_rate=1e30, warmup_steps=1), out_dir=tmp_path / "nan")
    assert (tmp_path / "nan" / "checkpoints").is_dir()  # what was written is kept


def test_recalibration_stores_the_statistics_of_all_images(model, data) -> None:
    """Pooled over four batches (means of means, the law of total variance), the stored statistics
    equal those measured on all the images in one batch (a second code path)."""
    images = data.x_train[:1000]
    copy = nnx.clone(model)
    recalibrate(copy, images, batch_size=250)
    stem = next(bn for _, bn in nnx.iter_graph(copy) if isinstance(bn, BatchNorm))
    ref = nnx.clone(model)
    recalibrate(ref, images, batch_size=1000)
    ref_stem = next(bn for _, bn in nnx.iter_graph(ref) if isinstance(bn, BatchNorm))
    # float32 convolutions of batches of 250 and of 1000 round differently: about 1e-4
    np.testing.assert_allclose(np.asarray(stem.mean[...]), np.asarray(ref_stem.mean[...]), atol=3e-4)
    np.testing.assert_allclose(np.asarray(stem.var[...]), np.asarray(ref_stem.var[...]), rtol=2e-3, atol=3e-4)
    assert not np.allclose(np.asarray(stem.var[...]), 1.0)
    assert jnp.all(jnp.isfinite(stem.var[...]))


def test_epochs_become_steps() -> None:
    assert steps_for_epochs(1, 54000, 128) == 422
    assert steps_for_epochs(2.5, 100, 32) == 8
    assert steps_for_epochs(0.001, 10, 128) == 1
