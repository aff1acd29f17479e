"""Cross-check of the analytic cost model with XLA: compiled FLOPs of extracted subnets ~ 2 x MACs.

XLA's ``cost_analysis`` differs from the analytic count in known, systematic ways:
* a padded convolution counts only the taps that fall inside the image (the analytic count, as
  the papers', is ``k*k`` per output): a few percent less at 32 px and more on small maps;
* elementwise work (batch norm, activations, residual sums, pooling) counts as FLOPs too: more,
  most on narrow networks (on 8-channel toy widths it exceeds 20 %);
* XLA removes work whose result nothing reads (NB201's convention still counts an op feeding a
  ``none`` edge only).
On real widths at their resolutions these mostly cancel; the test checks those cases within 10 %.

Extraction needs only the shapes of the batch-norm statistics (``jax.eval_shape``), so no
supernet is compiled here: only the standalone networks, for XLA's analysis.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nasx.space import Arch, SearchSpace
from nasx.supernet import functional
from search_spaces import mobilenet, nb201
from search_spaces.mobilenet.supernet import MobileNetSupernet
from search_spaces.nb201.supernet import Nb201Supernet


def _unit_stats(supernet: nnx.Module, space: SearchSpace, side: int) -> dict:
    _, params, apply = functional(supernet)
    arch = jnp.asarray(space.encode(space.sample(np.random.default_rng(0))))
    shapes = jax.eval_shape(lambda p: apply(p, arch, jnp.zeros((1, side, side, 3)))[1], params)
    return {k: (np.zeros(m.shape, np.float32), np.ones(v.shape, np.float32)) for k, (m, v) in shapes.items()}


def _xla_flops(model: nnx.Module, side: int) -> float:
    graphdef, state = nnx.split(model)
    x = jax.ShapeDtypeStruct((1, side, side, 3), jnp.float32)
    cost = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x)).lower(state, x).compile().cost_analysis()
    return float((cost[0] if isinstance(cost, list) else cost)["flops"])


def _check(supernet: nnx.Module, space: SearchSpace, archs: list[Arch], side: int) -> None:
    stats = _unit_stats(supernet, space, side)
    for arch in archs:
        expected = 2 * space.costs(arch).macs
        ratio = _xla_flops(supernet.extract(arch, stats), side) / expected
        assert 0.9 <= ratio <= 1.1, f"XLA / (2 x MACs) = {ratio:.3f} for {dict(arch)}"


def test_nb201_cells_without_dead_ops() -> None:
    space = nb201.space("cifar10")
    rng = np.random.default_rng(0)
    live = ("nor_conv_1x1", "nor_conv_3x3", "skip_connect", "avg_pool_3x3")
    archs = [space.validate({c.name: live[rng.integers(len(live))] for c in space.choices}) for _ in range(3)]
    _check(Nb201Supernet(space, rngs=nnx.Rngs(0)), space, archs, 32)


@pytest.mark.parametrize("preset", ["mobilenet-v2"])
def test_mobilenet_preset_at_224_px(preset: str) -> None:
    p = mobilenet.PRESETS[preset]
    _check(MobileNetSupernet(p.space, rngs=nnx.Rngs(0)), p.space, [p.arch], 224)
