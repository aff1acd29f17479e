"""Tests of the NAS-Bench-201 supernet: masked == extracted, exact params, one compile, vmap.

NB201's widths are fixed (16, 32, 64), so the real network is compiled, on the 16-px
``imagenet16-120`` variant with 4 images; each jitted function compiles once for the module.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nasx.nn.layers import BatchNormContext
from nasx.supernet import count_params, functional
from search_spaces import nb201
from search_spaces.nb201.supernet import Nb201Supernet

SPACE = nb201.space("imagenet16-120", bits=(4, 8, 32))


class _Rig:
    def __init__(self) -> None:
        self.net = Nb201Supernet(SPACE, rngs=nnx.Rngs(0))
        self.graphdef, self.params, self.apply = functional(self.net)
        self.calibrate = jax.jit(lambda params, arch, x: self.apply(params, arch, x))
        self.evaluate = jax.jit(self.apply)
        rng = np.random.default_rng(1)
        self.x = jnp.asarray(rng.standard_normal((4, 16, 16, 3), dtype=np.float32))

    def encode(self, arch) -> jax.Array:
        return jnp.asarray(SPACE.encode(arch))


@pytest.fixture(scope="module")
def rig() -> _Rig:
    return _Rig()


@nnx.jit
def _run(model: nnx.Module, x: jax.Array) -> jax.Array:
    return model(x)


@nnx.jit
def _run_batch_stats(model: nnx.Module, x: jax.Array) -> jax.Array:
    return model(x, BatchNormContext())


def _archs() -> list:
    rng = np.random.default_rng(3)
    every_op = nb201.from_string(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|", SPACE
    )
    quantized = SPACE.validate({**dict(SPACE.sample(rng)), "bits.s2": 4, "bits.head": 8})
    return [every_op, quantized, SPACE.sample(rng), SPACE.sample(rng)]


def test_extracted_params_equal_the_analytic_count(rig: _Rig) -> None:
    _, stats = rig.calibrate(rig.params, rig.encode(_archs()[0]), rig.x)  # shapes fit every arch
    rng = np.random.default_rng(0)
    for arch in [*_archs(), *(SPACE.sample(rng) for _ in range(20))]:
        assert count_params(rig.net.extract(arch, stats)) == SPACE.costs(arch).params, nb201.to_string(arch)


def test_masked_supernet_equals_extracted_network(rig: _Rig) -> None:
    for arch in _archs():
        encoded = rig.encode(arch)
        batch_logits, stats = rig.calibrate(rig.params, encoded, rig.x)
        masked, _ = rig.evaluate(rig.params, encoded, rig.x, stats)
        model = rig.net.extract(arch, stats)
        scale = float(jnp.max(jnp.abs(masked)))
        assert scale > 1e-3
        np.testing.assert_allclose(_run(model, rig.x), masked, rtol=1e-5, atol=1e-5 * scale)
        # with the batch's statistics (training, fine-tuning) it equals the supernet too
        np.testing.assert_allclose(_run_batch_stats(model, rig.x), batch_logits, rtol=1e-5, atol=1e-5 * scale)


def test_one_compile_serves_every_architecture(rig: _Rig) -> None:
    rng = np.random.default_rng(4)
    outputs = [rig.calibrate(rig.params, rig.encode(SPACE.sample(rng)), rig.x)[0] for _ in range(20)]
    assert rig.calibrate._cache_size() == 1
    assert len({np.asarray(o).tobytes() for o in outputs}) > 15


def test_vmap_over_architectures_equals_a_loop(rig: _Rig) -> None:
    archs = _archs()[:3]
    batch = jnp.stack([rig.encode(a) for a in archs])
    batched, _ = jax.jit(jax.vmap(rig.apply, in_axes=(None, 0, None)))(rig.params, batch, rig.x)
    for i, arch in enumerate(archs):
        single, _ = rig.calibrate(rig.params, rig.encode(arch), rig.x)
        np.testing.assert_allclose(batched[i], single, rtol=1e-5, atol=1e-6)


def test_proxies_one_arch_at_a_time_equal_the_vmapped_scores(rig: _Rig) -> None:
    """One at a time (lax.map) only each edge's chosen op runs; vmapped, every candidate runs
    and the switch selects: the same scores. naswot finds each edge's ReLU outside the switch."""
    from nasx.proxies import PROXIES, make_proxy

    space = nb201.space("imagenet16-120")  # float, as proxies run (nasx.jobs.evaluators.proxy_network)
    _, params, apply = functional(Nb201Supernet(space, rngs=nnx.Rngs(0)))
    rng = np.random.default_rng(3)
    archs = jnp.stack([jnp.asarray(space.encode(space.sample(rng))) for _ in range(3)])
    args = (params, archs, rig.x, jnp.zeros(4, jnp.int32), jax.random.key(0))
    assert Nb201Supernet.switches_ops
    quick = {"xla_backend_optimization_level": 0}
    mapped = {
        name: make_proxy(apply, PROXIES[name], one_at_a_time=True, compiler_options=quick)(*args)
        for name in ("synflow", "naswot")
    }
    for name, scores in mapped.items():
        assert np.all(np.isfinite(scores)) and len(set(np.asarray(scores).tolist())) == 3, name
    vmapped = make_proxy(apply, PROXIES["synflow"], compiler_options=quick)(*args)
    np.testing.assert_allclose(mapped["synflow"], vmapped, rtol=1e-4)


def test_synflow_of_the_largest_cell_is_finite() -> None:
    """Every edge a 3x3 convolution: R = e^154 on the CIFAR-10 network, past float32's range of
    e^88; synflow's scaled input keeps it finite, and a smaller cell scores below it."""
    from nasx.proxies import PROXIES, make_proxy

    space = nb201.space("cifar10")
    _, params, apply = functional(Nb201Supernet(space, rngs=nnx.Rngs(0)))
    cells = [
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    ]
    archs = jnp.asarray(np.stack([space.encode(nb201.from_string(c, space)) for c in cells]), jnp.int32)
    synflow = make_proxy(apply, PROXIES["synflow"], one_at_a_time=True)
    largest, other = np.asarray(synflow(params, archs, jnp.ones((1, 32, 32, 3)), None, jax.random.key(0)))
    assert np.isfinite(largest) and largest > 140 and 0 < other < largest
