"""Every local device at work (4 fake CPU devices): sharded population evaluation and
data-parallel training give one device's numbers, for any population size."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nasx.data import load
from nasx.devices import ARCHS, DATA, BatchSplitError, DeviceCountError, local_mesh, over_devices
from nasx.evaluate import make_evaluator
from nasx.proxies import PROXIES, make_proxy
from nasx.supernet import functional
from nasx.train import TrainConfig, train
from search_spaces.mobilenet.supernet import MobileNetSupernet

QUICK = {"xla_backend_optimization_level": 0}


def test_the_tests_see_four_devices() -> None:
    assert jax.local_device_count() == 4  # tests/conftest.py; otherwise nothing here is sharded


@pytest.fixture(scope="module")
def toy_net(toy):
    supernet = MobileNetSupernet(toy, rngs=nnx.Rngs(0))
    _, params, apply = functional(supernet)
    rng = np.random.default_rng(0)
    archs = [toy.sample(rng) for _ in range(7)]
    encoded = jnp.asarray(np.stack([toy.encode(a) for a in archs]), jnp.int32)
    x = jnp.asarray(rng.standard_normal((8, 8, 8, 3), dtype=np.float32))
    return params, apply, encoded, x


def test_sharded_proxy_scores_equal_one_device(toy_net) -> None:
    """7 archs over 4 devices: padded to 8, the padding dropped, each score as on one device."""
    params, apply, encoded, x = toy_net
    n = 7
    key, y = jax.random.key(0), jnp.zeros((8,), jnp.int32)
    for name in ("synflow",):  # one proxy: sharding is the same for all
        one = make_proxy(apply, PROXIES[name], compiler_options=QUICK)(params, encoded[:n], x, y, key)
        sharded_fn = make_proxy(apply, PROXIES[name], mesh=local_mesh(ARCHS), compiler_options=QUICK)
        sharded = sharded_fn(params, encoded[:n], x, y, key)
        assert sharded.shape == (n,)
        np.testing.assert_allclose(np.asarray(sharded), np.asarray(one), rtol=1e-5, err_msg=name)


def test_sharded_population_is_spread_over_every_device(toy_net) -> None:
    params, apply, encoded, x = toy_net
    logits = make_evaluator(apply, local_mesh(ARCHS))(params, encoded[:4], x, x)
    assert len(logits.sharding.device_set) == 4
    np.testing.assert_allclose(
        np.asarray(logits), np.asarray(make_evaluator(apply)(params, encoded[:4], x, x)), rtol=1e-5, atol=1e-6
    )


def test_over_devices_keeps_pytrees_and_order() -> None:
    def fn(w, archs, offset):
        return {"sum": archs.sum(axis=1) * w + offset, "first": archs[:, 0]}

    archs = jnp.arange(10 * 3, dtype=jnp.int32).reshape(10, 3)
    committed = jax.device_put(jnp.int32(2), jax.devices()[0])  # e.g. restored from a checkpoint
    out = over_devices(fn, local_mesh(ARCHS))(committed, archs, jnp.int32(1))
    np.testing.assert_array_equal(np.asarray(out["sum"]), np.asarray(archs.sum(axis=1) * 2 + 1))
    np.testing.assert_array_equal(np.asarray(out["first"]), np.asarray(archs[:, 0]))


def test_data_parallel_training_equals_one_device(toy, tmp_path: Path) -> None:
    data = load("synthetic", size=8, seed=0)
    config = TrainConfig(steps=3, batch_size=16, archs_per_step=2, seed=0, log_every=1)
    runs = {}
    for name, mesh in (("one", None), ("four", local_mesh(DATA))):
        supernet = MobileNetSupernet(toy, rngs=nnx.Rngs(0))
        runs[name] = train(supernet, data, config, out_dir=tmp_path / name, mesh=mesh)
    four = runs["four"].params
    assert all(len(a.sharding.device_set) == 4 for a in jax.tree.leaves(four))  # replicated
    for a, b in zip(jax.tree.leaves(runs["one"].params), jax.tree.leaves(four), strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-5)
    # float tolerance: the all-reduce sums gradients in another order than one device does
    losses = [[h["loss"] for h in runs[k].history] for k in ("one", "four")]
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)


def test_a_batch_that_does_not_split_is_refused_before_training(toy) -> None:
    supernet = MobileNetSupernet(toy, rngs=nnx.Rngs(0))
    config = TrainConfig(steps=1, batch_size=10, archs_per_step=2)
    with pytest.raises(BatchSplitError, match="batch of 10 does not split over 4 devices"):
        train(supernet, load("synthetic", size=8, seed=0), config, mesh=local_mesh(DATA))


def test_more_devices_than_there_are_is_a_clear_error() -> None:
    with pytest.raises(DeviceCountError, match="5 devices asked for: this process has 4"):
        local_mesh(DATA, 5)
