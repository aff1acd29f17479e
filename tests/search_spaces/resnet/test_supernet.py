"""Tests of the ResNet supernet: masked == extracted, exact params, one compile, vmap, gradients.

Tiny custom skeletons (widths 8..32, depth <= 3, 16-32 px) cover both block kinds, both shortcut
styles, both stems, elastic kernels and quantization; each supernet is built and jitted once.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nasx.nn.layers import BatchNorm
from nasx.space import Arch
from nasx.supernet import count_params, functional
from search_spaces.resnet.spec import PRESETS, ResNetSpace, Skeleton, space
from search_spaces.resnet.supernet import ResNet, ResNetSupernet, _avg_pool_2x2, supernet_params


def _skeleton(name: str, block: str, shortcut: str, **changes) -> Skeleton:
    torchvision = shortcut == "torchvision"
    fields = dict(
        name=name,
        resolution=32,
        num_classes=5,
        block=block,
        stem_kernel=7 if torchvision else 3,
        stem_stride=2 if torchvision else 1,
        stem_maxpool=torchvision,
        strides=(1, 2),
        shortcut=shortcut,
        stem_widths=(8, 16),
        widths=(8, 16, 24, 32),
        btns=(8, 16, 24, 32) if block == "bottleneck" else (),
        kernels=(3, 5),
        depths=(1, 2, 3) if not torchvision else (1, 2),
        first_depth_max=None,
    )
    return Skeleton(**(fields | changes))


SPACES = {  # name: (space, input side); one space without bits choices (ArchView defaults to 32)
    "deepmad": (
        ResNetSpace(_skeleton("tiny-deepmad", "bottleneck", "deepmad", first_depth_max=1), bits=(4, 8, 32)),
        16,
    ),
    "tv-basic": (ResNetSpace(_skeleton("tiny-tv-basic", "basic", "torchvision"), bits=(4, 8, 32)), 32),
    "tv-bottleneck": (
        ResNetSpace(
            _skeleton("tiny-tv-bottleneck", "bottleneck", "torchvision", kernels=(3,), depths=(1, 2)),
            bits=(32,),
        ),
        32,
    ),
    "small": (space("small", bits=(32,)), 28),  # the real CPU-sized skeleton (Fashion-MNIST)
}


class _Rig:
    """A built supernet with its jitted calibration (batch stats) and evaluation (given stats)."""

    def __init__(self, name: str) -> None:
        self.space, side = SPACES[name]
        self.net = ResNetSupernet(self.space, rngs=nnx.Rngs(0))
        self.graphdef, self.params, self.apply = functional(self.net)
        self.calibrate = jax.jit(lambda params, arch, x: self.apply(params, arch, x))
        self.evaluate = jax.jit(self.apply)

        def loss(params, arch, x):
            logits, _ = self.apply(params, arch, x)
            return jnp.mean(jnp.square(logits - 1.0))

        self.grad = jax.jit(jax.grad(loss))
        rng = np.random.default_rng(1)
        self.x_calib = jnp.asarray(rng.standard_normal((8, side, side, 3), dtype=np.float32))
        self.x = jnp.asarray(rng.standard_normal((4, side, side, 3), dtype=np.float32))

    def encode(self, arch: Arch) -> jax.Array:
        return jnp.asarray(self.space.encode(arch))


@pytest.fixture(scope="module")
def rig() -> Callable[[str], _Rig]:
    rigs: dict[str, _Rig] = {}

    def get(name: str) -> _Rig:
        if name not in rigs:
            rigs[name] = _Rig(name)
        return rigs[name]

    return get


def _extreme(s: ResNetSpace, last: bool, **fixed) -> Arch:
    """The arch taking the largest (`last`) or smallest allowed option of every choice."""
    values: dict = {}
    for choice in s.choices:
        options = s.options(choice, values)
        values[choice.name] = fixed.get(choice.name, options[-1] if last else options[0])
    return s.validate(values)


@nnx.jit
def _run(model: ResNet, x: jax.Array) -> jax.Array:
    """A standalone model's logits (jitted: eager dispatch compiles every op of a new arch)."""
    return model(x)


def _unit_stats(net: nnx.Module) -> dict:
    return {
        bn.key: (np.zeros(bn.num_features, np.float32), np.ones(bn.num_features, np.float32))
        for _, bn in nnx.iter_graph(net)
        if isinstance(bn, BatchNorm)
    }


# --- exact parameter counts (no compile) --------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SPACES))
def test_supernet_params_counts_the_built_supernet(rig, name):
    r = rig(name)
    assert count_params(r.net) == supernet_params(r.space)


@pytest.mark.parametrize("name", sorted(SPACES))
def test_extracted_params_equal_the_analytic_count(rig, name):
    r, rng = rig(name), np.random.default_rng(2)
    stats = _unit_stats(r.net)
    archs = [_extreme(r.space, True), _extreme(r.space, False)] + [r.space.sample(rng) for _ in range(20)]
    for arch in archs:
        model = r.net.extract(arch, stats)
        assert isinstance(model, ResNet)
        assert count_params(model) == r.space.costs(arch).params, dict(arch)


def test_resnet_18_extracts_with_its_published_parameter_count():
    # The smallest grid holding ResNet-18 (the full torchvision grid would need billions).
    preset = PRESETS["resnet-18"]
    grid = dict(stem_widths=(64,), widths=(64, 128, 256, 512), depths=(2,), kernels=(3,))
    s = ResNetSpace(Skeleton(**{**preset.space.skeleton.__dict__, "name": "r18-grid", **grid}), bits=(32,))
    arch = s.validate(preset.arch.replace({k: None for k in preset.arch if "bits" in k}))
    net = ResNetSupernet(s, rngs=nnx.Rngs(0))
    model = net.extract(arch, _unit_stats(net))
    assert count_params(model) == preset.space.costs(preset.arch).params == 11_689_512


def test_torchvision_projection_only_where_the_shape_changes(rig):
    r = rig("tv-basic")
    stats = _unit_stats(r.net)
    same = _extreme(r.space, True, **{"stem.width": 16, "s1.width": 16})
    grown = _extreme(r.space, True, **{"stem.width": 8, "s1.width": 16})
    assert r.net.extract(same, stats).stages[0][0].projection is None
    assert r.net.extract(grown, stats).stages[0][0].projection is not None
    assert r.net.extract(same, stats).stages[1][0].projection is not None  # stride 2


def test_deepmad_projection_in_every_first_block(rig):
    r = rig("deepmad")
    model = r.net.extract(_extreme(r.space, False), _unit_stats(r.net))
    assert all(stage[0].projection is not None for stage in model.stages)
    assert [stage[0].pool for stage in model.stages] == [False, True]


def test_refuses_a_full_size_supernet_before_allocating():
    n = supernet_params(space("imagenet"))
    assert n > 1_000_000_000
    with pytest.raises(ValueError, match=rf"{n:,} parameters.*smaller grid"):
        ResNetSupernet(space("imagenet"), rngs=nnx.Rngs(0))
    tiny, _ = SPACES["deepmad"]
    with pytest.raises(ValueError, match="max_params=1,000"):
        ResNetSupernet(tiny, rngs=nnx.Rngs(0), max_params=1_000)


def test_avg_pool_2x2_ceil_mode_averages_the_in_image_taps():
    x = jnp.arange(9.0).reshape(1, 3, 3, 1)
    expected = np.array([[(0 + 1 + 3 + 4) / 4, (2 + 5) / 2], [(6 + 7) / 2, 8.0]])
    np.testing.assert_allclose(np.asarray(_avg_pool_2x2(x))[0, :, :, 0], expected)


# --- the masked supernet computes the extracted network -----------------------------------------
def _test_archs(s: ResNetSpace, name: str) -> list[Arch]:
    rng = np.random.default_rng(3)
    archs = [_extreme(s, True), _extreme(s, False)]
    if name.startswith("tv"):  # identity and projection at stage 1 (stride 1)
        archs += [
            _extreme(s, False, **{"stem.width": 16, "s1.width": 16}),
            _extreme(s, True, **{"stem.width": 8, "s1.width": 24}),
        ]
    return archs + [s.sample(rng) for _ in range(6 - len(archs))]


@pytest.mark.parametrize("name", sorted(SPACES))
def test_masked_supernet_equals_extracted_network(rig, name):
    r = rig(name)
    archs = _test_archs(r.space, name)
    quantized = [a for a in archs if any(v < 32 for k, v in a.items() if "bits" in k)]
    assert len(archs) >= 6 and (len(quantized) >= 2 or r.space.bits == (32,))
    for arch in archs:
        code = r.encode(arch)
        _, stats = r.calibrate(r.params, code, r.x_calib)
        logits, _ = r.evaluate(r.params, code, r.x, stats)
        expected = _run(r.net.extract(arch, stats), r.x)
        scale = float(jnp.max(jnp.abs(expected)))
        assert scale > 0
        np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5 * scale, err_msg=str(dict(arch)))


def test_one_compile_serves_every_architecture(rig):
    r, rng = rig("deepmad"), np.random.default_rng(4)
    archs = [r.space.sample(rng) for _ in range(20)]
    outputs = []
    for arch in archs:
        logits, stats = r.calibrate(r.params, r.encode(arch), r.x_calib)
        r.evaluate(r.params, r.encode(arch), r.x, stats)
        outputs.append(np.asarray(logits))
    assert r.calibrate._cache_size() == 1
    assert r.evaluate._cache_size() == 1
    assert len({o.tobytes() for o in outputs}) == len(archs)  # the arch is data, not ignored


def test_vmap_over_architectures_equals_a_loop(rig):
    r, rng = rig("deepmad"), np.random.default_rng(5)
    codes = jnp.stack([r.encode(r.space.sample(rng)) for _ in range(4)])
    batched, _ = jax.jit(jax.vmap(r.apply, in_axes=(None, 0, None)))(r.params, codes, r.x_calib)
    looped = np.stack([np.asarray(r.calibrate(r.params, c, r.x_calib)[0]) for c in codes])
    np.testing.assert_allclose(batched, looped, rtol=1e-5, atol=1e-6)


# --- gradients ----------------------------------------------------------------------------------
def _grads(r: _Rig, arch: Arch) -> ResNetSupernet:
    """d loss / d params for `arch`, as a supernet-shaped module of gradients."""
    grads = r.grad(r.params, r.encode(arch), r.x_calib)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    return nnx.merge(r.graphdef, grads)


def _zero(x) -> bool:
    return bool(jnp.all(x[...] == 0))


def test_gradients_reach_only_the_chosen_subnet(rig):
    r = rig("deepmad")
    arch = r.space.validate(
        {
            "stem.width": 8,
            "s1.width": 16, "s1.btn": 8, "s1.kernel": 3, "s1.depth": 1, "s1.bits": 8,
            "s2.width": 24, "s2.btn": 16, "s2.kernel": 5, "s2.depth": 2, "s2.bits": 4,
        }
    )  # fmt: skip
    g = _grads(r, arch)
    stem, first = g.stem, g.stages[0][0]
    assert _zero(stem.conv.kernel[..., 8:]) and not _zero(stem.conv.kernel[..., :8])
    assert _zero(stem.bn.scale[8:]) and not _zero(stem.bn.scale[:8])
    c1, c2, c3 = first.convs
    assert _zero(c1.conv.kernel[:, :, 8:, :]) and _zero(c1.conv.kernel[..., 8:])
    assert not _zero(c1.conv.kernel[:, :, :8, :8])
    ring = np.ones((5, 5), bool)
    ring[1:4, 1:4] = False
    assert _zero(c2.conv.kernel[ring]) and not _zero(c2.conv.kernel[~ring])  # kernel 3 of 5
    assert _zero(c3.conv.kernel[..., 16:]) and _zero(c3.bn.bias[16:]) and not _zero(c3.bn.bias[:16])
    assert _zero(first.projection.conv.kernel[..., 16:]) and not _zero(first.projection.conv.kernel)
    assert len(g.stages[0]) == 1  # TinyNAS: at most first_depth_max blocks in stage 1
    assert all(_zero(leaf) for leaf in jax.tree.leaves(nnx.state(g.stages[1][2])))  # depth 2 of 3
    assert not _zero(g.stages[1][1].convs[0].conv.kernel)  # depth 2 of 3: block 2 runs
    ring2 = g.stages[1][0].convs[1].conv.kernel  # kernel 5: the ring learns
    assert not _zero(ring2[0])
    assert _zero(g.classifier.kernel[24:]) and not _zero(g.classifier.kernel[:24])


def test_torchvision_projection_runs_only_when_the_widths_differ(rig):
    # The selected-away branch must not touch the output: perturb its weights, compare exactly.
    r = rig("tv-basic")
    model = nnx.merge(r.graphdef, jax.tree.map(jnp.copy, r.params))  # merge would share variables
    projection = model.stages[0][0].projection
    projection.conv.kernel[...] = projection.conv.kernel[...] * 3.0 + 1.0
    projection.bn.bias[...] = projection.bn.bias[...] + 1.0
    _, perturbed = nnx.split(model)
    for widths, used in (((16, 16), False), ((8, 16), True), ((16, 24), True)):
        arch = r.encode(_extreme(r.space, False, **{"stem.width": widths[0], "s1.width": widths[1]}))
        base = np.asarray(r.calibrate(r.params, arch, r.x_calib)[0])
        changed = np.asarray(r.calibrate(perturbed, arch, r.x_calib)[0])
        assert (not np.array_equal(base, changed)) == used, widths
    assert _zero(r.params["stages"][0][0]["projection"]["bn"]["bias"])  # the rig's weights are intact
