"""Tests of the MobileNet (MBConv / OFA) supernet: exact params, masked == extracted, one compile.

Tiny custom skeletons (widths 8..32, 16 px) are compiled: an OFA-like one (``"mid"`` SE squeeze,
feature mix, an expansion-1 option, residual first blocks, bits), an EfficientNet-like one
(``"input"`` squeeze, SE in the first block, swish, no feature mix, float only) and a one-stage
one for the gradient checks. Parameter counts are also checked, without compiling, on the cifar
space at width 0.25 and on the published presets. Each supernet is built and jitted once.
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
from search_spaces.mobilenet.spec import PRESETS, MobileNetSpace, Skeleton, Stage, space, squeeze_width
from search_spaces.mobilenet.supernet import MobileNetNet, MobileNetSupernet

SIDE = 16

SPACES = {
    "tiny-ofa": MobileNetSpace(
        Skeleton(
            name="tiny-ofa",
            stem_width=8,
            first_width=8,  # stride 1, 8 -> 8: residual first block
            stages=(Stage(8, 1, "relu", (1, 2)), Stage(16, 2, "h_swish", (1, 2))),
            head_width=24,
            stem_stride=1,
            mix_width=32,
            num_classes=5,
            resolutions=(16, 32),
            default_resolution=16,
            kernels=(3, 5),
            expands=(1, 3, 4),
        ),
        bits=(4, 8, 32),
    ),
    "tiny-effnet": MobileNetSpace(
        Skeleton(
            name="tiny-effnet",
            stem_width=16,
            first_width=8,
            stages=(Stage(24, 2, "relu6", (1, 2)),),
            head_width=32,
            stem_act="swish",
            first_act="swish",
            first_se=True,
            head_act="swish",
            num_classes=3,
            resolutions=(16,),
            default_resolution=16,
            kernels=(3, 7),
            expands=(2, 6),
            se_squeeze="input",
        ),
        bits=(32,),
    ),
    # One stage (compiles fastest) for the gradient checks: mid 16..64, squeeze 8 or 16.
    "micro": MobileNetSpace(
        Skeleton(
            name="micro",
            stem_width=8,
            first_width=16,
            stages=(Stage(16, 1, "relu", (1, 2)),),
            head_width=16,
            stem_stride=1,
            num_classes=3,
            resolutions=(16,),
            default_resolution=16,
            kernels=(3, 5),
            expands=(1, 3, 4),
        ),
        bits=(4, 32),
    ),
}
COMPILED = ("tiny-ofa", "tiny-effnet")  # masked == extracted on these; gradients on "micro"


class _Rig:
    """A built supernet with its jitted calibration (batch stats), evaluation and gradient."""

    def __init__(self, name: str) -> None:
        self.space = SPACES[name]
        self.net = MobileNetSupernet(self.space, rngs=nnx.Rngs(0), zero_last_gamma=False)  # every block acts
        self.graphdef, self.params, self.apply = functional(self.net)
        self.calibrate = jax.jit(lambda params, arch, x: self.apply(params, arch, x))
        self.evaluate = jax.jit(self.apply)

        def loss(params, arch, x):
            logits, _ = self.apply(params, arch, x)
            return jnp.mean(jnp.square(logits - 1.0))

        self.grad = jax.jit(jax.grad(loss))
        rng = np.random.default_rng(1)
        # one shape for both: every jitted function compiles once for the whole module
        self.x_calib = jnp.asarray(rng.standard_normal((4, SIDE, SIDE, 3), dtype=np.float32))
        self.x = jnp.asarray(rng.standard_normal((4, SIDE, SIDE, 3), dtype=np.float32))

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


def _extreme(s: MobileNetSpace, last: bool, **fixed) -> Arch:
    """The arch taking the largest (`last`) or smallest option of every choice (`fixed` wins)."""
    values: dict = {}
    for choice in s.choices:
        options = s.options(choice, values)
        if options:
            values[choice.name] = fixed.get(choice.name, options[-1] if last else options[0])
    return s.validate(values)


def _unit_stats(net: nnx.Module) -> dict:
    return {
        bn.key: (np.zeros(bn.num_features, np.float32), np.ones(bn.num_features, np.float32))
        for _, bn in nnx.iter_graph(net)
        if isinstance(bn, BatchNorm)
    }


@nnx.jit
def _run(model: MobileNetNet, x: jax.Array) -> jax.Array:
    """A standalone model's logits (jitted: eager dispatch compiles every op of a new arch)."""
    return model(x)


# --- exact parameter counts (no compile) --------------------------------------------------------
@pytest.mark.parametrize("name", [*SPACES, "cifar-0.25", "small"])
def test_extracted_params_equal_the_analytic_count(name):
    named = {
        "cifar-0.25": lambda: space("cifar", bits=(4, 8, 16, 32), width_mult=0.25),
        "small": lambda: space("small"),
    }
    s = named[name]() if name in named else SPACES[name]
    net = MobileNetSupernet(s, rngs=nnx.Rngs(0))
    stats, rng = _unit_stats(net), np.random.default_rng(2)
    n = 5 if name in named else 20  # 20 and 12 blocks: slower to slice
    archs = [_extreme(s, True), _extreme(s, False)] + [s.sample(rng) for _ in range(n)]
    for arch in archs:
        model = net.extract(arch, stats)
        assert isinstance(model, MobileNetNet)
        assert count_params(model) == s.costs(arch).params, dict(arch)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_extract_with_their_published_parameter_counts(name):
    """torchvision MobileNetV2 (3,504,872) and EfficientNet-B0 (5,288,548), OFA-595M (9.14 M)."""
    preset = PRESETS[name]
    net = MobileNetSupernet(preset.space, rngs=nnx.Rngs(0))
    model = net.extract(preset.arch, _unit_stats(net))
    expected = {"mobilenet-v2": 3_504_872, "efficientnet-b0": 5_288_548, "ofa-595m": 9_135_928}[name]
    assert count_params(model) == preset.space.costs(preset.arch).params == expected


def test_width_multiplier_scales_the_built_network():
    s = space("cifar", width_mult=0.25)
    net = MobileNetSupernet(s, rngs=nnx.Rngs(0))
    assert net.stem.conv.out_features == 8 and net.first.project.conv.out_features == 8
    assert [blocks[0].project.conv.out_features for blocks in net.stages] == [8, 16, 24, 32, 48]
    assert net.head.conv.conv.out_features == 288 and net.head.mix.out_features == 384
    assert net.head.classifier.out_features == 10
    # The same architecture runs on every width (the choices do not depend on it).
    arch = space("cifar").sample(np.random.default_rng(0))
    assert count_params(net.extract(arch, _unit_stats(net))) == s.costs(arch).params


def test_small_supernet_runs_on_28_and_32_px():
    """The ``small`` variant's costs are at 28 px, but its supernet (here at a quarter width) and
    extracted networks run on any side: shapes at 28 px (traced only), values at 32 px, where the
    extracted network computes what the masked supernet does."""
    s = space("small", bits=(32,), width_mult=0.25)
    net = MobileNetSupernet(s, rngs=nnx.Rngs(0), zero_last_gamma=False)
    _, params, apply = functional(net)
    arch = jnp.asarray(s.encode(_extreme(s, True)))
    logits, stats = jax.eval_shape(apply, params, arch, jax.ShapeDtypeStruct((4, 28, 28, 3), jnp.float32))
    assert logits.shape == (4, 10) and all(m.shape == v.shape for m, v in stats.values())
    x = jnp.asarray(np.random.default_rng(3).standard_normal((4, 32, 32, 3), dtype=np.float32))
    logits, stats = jax.jit(apply)(params, arch, x)
    assert logits.shape == (4, 10) and bool(jnp.all(jnp.isfinite(logits)))
    standalone = _run(net.extract(_extreme(s, True), stats), x)  # BN with this batch's statistics
    np.testing.assert_allclose(standalone, logits, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(logits))))


def test_extracted_structure_follows_the_cost_model(rig):
    r = rig("tiny-ofa")
    s, sk = r.space, r.space.scaled
    arch = _extreme(s, True, **{"s1.b1.expand": 1, "s1.se": True, "s2.se": False, "s2.b1.kernel": 3})
    model = r.net.extract(arch, _unit_stats(r.net))
    first, *blocks = [model.first, *model.blocks]
    assert first.residual and first.se is None and first.expand is None  # stride 1, 8 -> 8
    assert [b.residual for b in blocks] == [True, True, False, True]  # s1: stride 1, 8 -> 8; s2: 8 -> 16
    assert blocks[0].expand is None and blocks[1].expand.conv.out_features == 8 * 4
    assert blocks[0].se.reduce.out_features == squeeze_width(8, 8, "mid") == 8
    assert blocks[1].se.reduce.out_features == squeeze_width(8, 32, "mid") == 8
    assert all(b.se is None for b in blocks[2:])
    assert blocks[2].depthwise.conv.kernel_size == (3, 3) and blocks[3].depthwise.conv.kernel_size == (5, 5)
    assert blocks[2].depthwise.conv.stride == 2 and model.head.mix.in_features == sk.head_width
    e = rig("tiny-effnet")
    model = e.net.extract(_extreme(e.space, False), _unit_stats(e.net))
    assert model.first.se.reduce.out_features == 16 // 4 and model.head.mix is None  # "input" squeeze


# --- the masked supernet computes the extracted network -----------------------------------------
def _test_archs(s: MobileNetSpace) -> list[Arch]:
    """Largest, smallest, largest at 4 bits, largest with the least expansion (SE squeezes below
    their largest width), then random ones."""
    rng = np.random.default_rng(3)
    names = [c.name for c in s.choices]
    archs = [_extreme(s, True), _extreme(s, False)]
    archs.append(_extreme(s, True, **{n: min(s.skeleton.expands) for n in names if n.endswith("expand")}))
    if s.bits != (32,):
        archs.append(_extreme(s, True, **{n: 4 for n in names if "bits" in n}))
    return archs + [s.sample(rng) for _ in range(6 - len(archs))]


@pytest.mark.parametrize("name", COMPILED)
def test_masked_supernet_equals_extracted_network(rig, name):
    r = rig(name)
    archs = _test_archs(r.space)
    quantized = [a for a in archs if any(v < 32 for k, v in a.items() if "bits" in k)]
    assert len(archs) >= 6 and (len(quantized) >= 2 or r.space.bits == (32,))
    for arch in archs:
        encoded = r.encode(arch)
        _, stats = r.calibrate(r.params, encoded, r.x_calib)
        masked, _ = r.evaluate(r.params, encoded, r.x, stats)
        model = r.net.extract(arch, stats)
        standalone = _run(model, r.x)
        scale = float(jnp.max(jnp.abs(masked)))
        assert scale > 1e-3
        np.testing.assert_allclose(standalone, masked, rtol=1e-5, atol=1e-5 * scale, err_msg=str(dict(arch)))


def test_choices_change_the_output(rig):
    """SE, kernel, expansion, depth and bits each change the logits (they are not ignored)."""
    r = rig("tiny-ofa")
    base = _extreme(r.space, True)
    reference, _ = r.calibrate(r.params, r.encode(base), r.x)
    for change in (
        {"s1.se": False},
        {"s2.b2.kernel": 3},
        {"s2.b1.expand": 3},
        {"s1.b1.expand": 1},
        {"s2.b2.bits": 4},
        {"bits.stem": 8},
        {"bits.head": 4},
        {"s2.depth": 1, "s2.b2.kernel": None, "s2.b2.expand": None, "s2.b2.bits": None},
    ):
        changed, _ = r.calibrate(r.params, r.encode(r.space.validate(base.replace(change))), r.x)
        assert float(jnp.max(jnp.abs(changed - reference))) > 1e-4, change


# --- one compile, vmap, gradients ---------------------------------------------------------------
def test_one_compile_serves_every_architecture(rig):
    r = rig("tiny-ofa")
    rng = np.random.default_rng(4)
    outputs = [r.calibrate(r.params, r.encode(r.space.sample(rng)), r.x)[0] for _ in range(20)]
    assert r.calibrate._cache_size() == 1
    assert len({np.asarray(o).tobytes() for o in outputs}) > 15


def test_vmap_over_architectures_equals_a_loop(rig):
    r = rig("micro")
    rng = np.random.default_rng(5)
    archs = [_extreme(r.space, False)] + [r.space.sample(rng) for _ in range(3)]
    batch = jnp.stack([r.encode(a) for a in archs])
    batched, _ = jax.jit(jax.vmap(r.apply, in_axes=(None, 0, None)))(r.params, batch, r.x)
    for i, arch in enumerate(archs):
        single, _ = r.calibrate(r.params, r.encode(arch), r.x)
        np.testing.assert_allclose(batched[i], single, rtol=1e-5, atol=1e-6)


def _zero(tree) -> bool:
    return not any(np.any(np.asarray(g)) for g in jax.tree.leaves(tree))


def test_unused_weights_get_exactly_zero_gradient(rig):
    r = rig("micro")

    def grads(**fixed):
        g = r.grad(r.params, r.encode(_extreme(r.space, False, **fixed)), r.x)
        assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(g))
        return nnx.merge(r.graphdef, g).stages[0]

    # Depth 1 of 2, SE on, expansion 1 (mid 16 of 64, squeeze 8 of 16), kernel 3 of 5, 4 bits.
    b1, b2 = grads(**{"s1.se": True})
    assert _zero(nnx.state(b2, nnx.Param))  # an identity
    assert _zero(nnx.state(b1.expand, nnx.Param))  # expansion 1: the depthwise reads the input
    dw = np.asarray(b1.depthwise.conv.kernel[...])
    assert np.all(np.any(dw[1:4, 1:4, :, :16] != 0, axis=(0, 1, 2)))  # every active channel learns
    assert not np.any(dw[[0, 4]]) and not np.any(dw[:, [0, 4]]) and not np.any(dw[..., 16:])
    assert not np.any(np.asarray(b1.depthwise.bn.scale[...])[16:])
    reduce = np.asarray(b1.se.reduce.kernel[...])
    assert np.any(reduce[:16, :8]) and not np.any(reduce[16:]) and not np.any(reduce[:, 8:])
    assert not np.any(np.asarray(b1.se.expand.bias[...])[16:])
    assert not np.any(np.asarray(b1.project.conv.kernel[...])[:, :, 16:])
    # Depth 2, SE off, expansion 3 (mid 48 of 64), kernel 5.
    b1, b2 = grads(**{"s1.depth": 2, "s1.se": False, "s1.b1.expand": 3, "s1.b1.kernel": 5})
    assert _zero(nnx.state(b1.se, nnx.Param)) and _zero(nnx.state(b2.se, nnx.Param))
    expand = np.asarray(b1.expand.conv.kernel[...])
    assert np.all(np.any(expand[..., :48] != 0, axis=(0, 1, 2))) and not np.any(expand[..., 48:])
    assert np.any(np.asarray(b1.depthwise.conv.kernel[...])[[0, 4]])  # the 5x5 ring is used
    assert not _zero(nnx.state(b2, nnx.Param))
