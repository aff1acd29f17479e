"""Tests of the NASNet supernet: masked == extracted, exact params, one compile, vmap, gradients.

Tiny spaces (F of 8-12, N of 1-2, 1-2 blocks, a few ops, 16-32 px) on the CIFAR stem with one
reduction, on the ImageNet stem (VALID conv0, two stem cells) and on the large ImageNet
skeleton (``skip_reduction_layer_input``); one space runs all 13 ops. Each supernet is built and
jitted once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nasx.nn.layers import BatchNorm
from nasx.space import Arch, Value
from nasx.supernet import count_params, functional
from search_spaces import nasnet
from search_spaces.nasnet.supernet import NasnetSupernet, _Factorized

CIFAR_1R = dataclasses.replace(
    nasnet.SKELETONS["cifar"], name="cifar-1r", resolution=16, num_reduction_layers=1
)
"""CIFAR stem (conv 3x3 to 3F) with one reduction: stack 1, reduction, stack 2."""
MAIN_OPS = ("identity", "avg_pool_3x3", "conv_1x1")


QUICK = {"xla_backend_optimization_level": 0}
"""XLA options for the tests' jits: these tests compare values, not speed, and a NASNet
supernet (every op on every block input) compiles in about half the time without XLA's
backend optimizations."""


def _jit(fn: Callable) -> Callable:
    return jax.jit(fn, compiler_options=QUICK)


class _Rig:
    """A supernet with its jitted calibrate / evaluate functions and two batches of images."""

    def __init__(self, space: nasnet.NasnetSpace, seed: int = 0) -> None:
        self.space = space
        self.supernet = NasnetSupernet(space, rngs=nnx.Rngs(seed))
        self.graphdef, self.params, self.apply = functional(self.supernet)
        # two functions, so each jit has a cache of its own (calls with and without statistics)
        self.calibrate = _jit(lambda params, code, x: self.apply(params, code, x))
        self.evaluate = _jit(lambda params, code, x, stats: self.apply(params, code, x, stats))
        rng = np.random.default_rng(seed)
        size = space.resolution
        self.x_calib = jnp.asarray(rng.standard_normal((6, size, size, 3), dtype=np.float32))
        self.x = jnp.asarray(rng.standard_normal((3, size, size, 3), dtype=np.float32))

    def encode(self, arch: Arch) -> jax.Array:
        return jnp.asarray(self.space.encode(arch))


def _fake_stats(supernet: NasnetSupernet) -> dict:
    """Statistics for every batch norm (extraction without a forward pass)."""
    return {
        bn.key: (np.zeros(bn.num_features, np.float32), np.ones(bn.num_features, np.float32))
        for _, bn in nnx.iter_graph(supernet)
        if isinstance(bn, BatchNorm)
    }


def _cell(name: str, blocks: list[tuple[int, str, int, str]], concat: tuple[int, ...] = ()) -> dict:
    """Choices of one cell; ``concat`` lists the optional states to concatenate (h1 = 1)."""
    values: dict[str, Value] = {}
    for i, (in_a, op_a, in_b, op_b) in enumerate(blocks, start=1):
        values |= {f"{name}.b{i}.in_a": in_a, f"{name}.b{i}.op_a": op_a}
        values |= {f"{name}.b{i}.in_b": in_b, f"{name}.b{i}.op_b": op_b}
    return values | {f"{name}.out.{k}": True for k in concat}


def _run(model: nnx.Module, x: jax.Array) -> jax.Array:
    """``model(x)`` as one compiled program (quicker than op-by-op for a whole network)."""
    graphdef, state = nnx.split(model)
    return _jit(lambda state, x: nnx.merge(graphdef, state)(x))(state, x)


def _assert_masked_equals_extracted(r: _Rig, arch: Arch, *, same_batch: bool = False) -> None:
    """Statistics from a calibration batch; the masked supernet and the extracted network agree
    on another batch. With ``same_batch`` they are compared on the calibration batch itself
    (one compile instead of two: the masked logits come from the calibrating call)."""
    code = r.encode(arch)
    logits, stats = r.calibrate(r.params, code, r.x_calib)
    if not same_batch:
        logits, _ = r.evaluate(r.params, code, r.x, stats)
    model = r.supernet.extract(arch, stats)
    expected = np.asarray(_run(model, r.x_calib if same_batch else r.x))
    scale = float(np.max(np.abs(expected)))
    assert scale > 0
    np.testing.assert_allclose(np.asarray(logits), expected, rtol=1e-5, atol=1e-5 * scale)
    assert count_params(model) == r.space.costs(arch).params


# --- the main tiny space --------------------------------------------------------------------------
MAIN = nasnet.NasnetSpace(
    skeleton=CIFAR_1R, ops=MAIN_OPS, depths=(1, 2), filters=(8, 12), num_blocks=2, bits=(4, 32)
)


@pytest.fixture(scope="module")
def rig() -> _Rig:
    return _Rig(MAIN)


def _main_archs() -> dict[str, Arch]:
    s = MAIN
    conv = "conv_1x1"
    every = {f"bits.{p}": 4 for p in s.bit_parts}
    archs = {
        # every state concatenated, convs everywhere
        "largest": {"N": 2, "F": 12}
        | _cell("normal", [(0, conv, 1, conv), (1, conv, 2, conv)], (1, 2))
        | _cell("reduce", [(0, conv, 1, conv), (1, conv, 2, conv)], (1, 2)),
        # identities of h0 only: no h1 part is built; one state concatenated; 4 bits
        "smallest": {"N": 1, "F": 8}
        | _cell("normal", [(0, "identity", 0, "identity"), (0, "identity", 2, "identity")])
        | _cell("reduce", [(0, "identity", 0, "identity"), (2, "identity", 2, "identity")])
        | every,
        # single-state concats: stack 2's second cell reads a prev of exactly F channels (h1 =
        # prev), the reduction a prev of F but needs 2F; pools on block outputs and on h1 = x
        "single-states": {"N": 2, "F": 12}
        | _cell("normal", [(1, "avg_pool_3x3", 1, "identity"), (2, "avg_pool_3x3", 2, "identity")])
        | _cell("reduce", [(1, "avg_pool_3x3", 1, conv), (0, "avg_pool_3x3", 2, "identity")])
        | {"bits.stack1": 4, "bits.reduce1": 4},
        # h1 concatenated but read by no block: the 1x1 / factorized projections of the concat
        "h1-concat-only": {"N": 2, "F": 8}
        | _cell("normal", [(0, conv, 0, "avg_pool_3x3"), (2, "identity", 2, conv)], (1,))
        | _cell("reduce", [(0, "identity", 0, conv), (0, "avg_pool_3x3", 2, "avg_pool_3x3")], (1, 2))
        | {"bits.stem": 4, "bits.stack2": 4, "bits.head": 4},
        # two-state normal concats: the reduction's prev has 2F channels, its own F, so its h1
        # is prev itself, two non-adjacent slots moved together
        "two-states": {"N": 2, "F": 8}
        | _cell("normal", [(0, conv, 0, "identity"), (0, "avg_pool_3x3", 2, conv)], (2,))
        | _cell("reduce", [(1, "identity", 1, conv), (1, "avg_pool_3x3", 2, "identity")])
        | {"bits.reduce1": 4},
    }
    archs = {k: s.validate(v) for k, v in archs.items()}
    rng = np.random.default_rng(7)
    for i in range(2):
        archs[f"random-{i}"] = s.sample(rng)
    return archs


MAIN_ARCHS = _main_archs()


@pytest.mark.parametrize("name", list(MAIN_ARCHS))
def test_masked_supernet_equals_extracted_network(rig: _Rig, name: str) -> None:
    _assert_masked_equals_extracted(rig, MAIN_ARCHS[name])


def test_extracted_params_equal_the_analytic_count(rig: _Rig) -> None:
    rng = np.random.default_rng(3)
    stats = _fake_stats(rig.supernet)
    counts = set()
    for arch in [MAIN.sample(rng) for _ in range(20)]:
        count = count_params(rig.supernet.extract(arch, stats))
        assert count == MAIN.costs(arch).params
        counts.add(count)
    assert len(counts) > 12  # the archs differ in size


@pytest.mark.slow  # builds a 27 M-parameter supernet (no compile)
def test_nasnet_a_mobile_extracts_with_its_published_parameter_count() -> None:
    """NASNet-A Mobile (4 @ 1056, F = 44) extracted from a supernet of its ops: 5,289,978 params."""
    preset = nasnet.PRESETS["nasnet-a-mobile"]
    ops = tuple(op for op in nasnet.OPS if op in set(preset.arch.values()))
    space = nasnet.NasnetSpace(
        skeleton=preset.space.skeleton, ops=ops, depths=(4,), filters=(44,), bits=(32,)
    )
    arch = space.validate({k: v for k, v in preset.arch.items() if not k.startswith("bits.")})
    supernet = NasnetSupernet(space, rngs=nnx.Rngs(0))
    model = supernet.extract(arch, _fake_stats(supernet))
    assert count_params(model) == space.costs(arch).params == 5_289_978


def test_one_compile_serves_every_architecture(rig: _Rig) -> None:
    rng = np.random.default_rng(11)
    for _ in range(20):
        code = rig.encode(MAIN.sample(rng))
        _, stats = rig.calibrate(rig.params, code, rig.x_calib)
        rig.evaluate(rig.params, code, rig.x, stats)
    assert rig.calibrate._cache_size() == 1
    assert rig.evaluate._cache_size() == 1


def test_vmap_over_architectures_equals_a_loop(rig: _Rig) -> None:
    archs = list(MAIN_ARCHS.values())[:4]
    codes = jnp.stack([rig.encode(a) for a in archs])
    batched, _ = _jit(jax.vmap(rig.apply, in_axes=(None, 0, None)))(rig.params, codes, rig.x_calib)
    for i, code in enumerate(codes):
        single, _ = rig.calibrate(rig.params, code, rig.x_calib)
        np.testing.assert_allclose(np.asarray(batched[i]), np.asarray(single), rtol=1e-5, atol=1e-5)


GRAD = dataclasses.replace(MAIN, ops=("identity", "conv_1x1"))
"""The main space with two ops: the gradient test compiles only a backward pass of its own."""


def test_gradients_reach_only_the_chosen_subnet() -> None:
    """N = 1 of 2, F = 8 of 12: the second cell of each stack, the channels beyond F and the
    ops not chosen get exactly zero gradient; the chosen ones get some (4-bit weights included,
    through the straight-through estimator)."""
    conv = "conv_1x1"
    arch = GRAD.validate(
        {"N": 1, "F": 8, "bits.stack2": 4}
        | _cell("normal", [(0, "identity", 0, conv), (0, "identity", 2, "identity")])
        | _cell("reduce", [(0, "identity", 0, "identity"), (2, "identity", 2, conv)])
    )
    supernet = NasnetSupernet(GRAD, rngs=nnx.Rngs(3))
    graphdef, params, apply = functional(supernet)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 16, 16, 3), dtype=np.float32))

    def loss(params: nnx.State) -> jax.Array:
        logits, _ = apply(params, jnp.asarray(GRAD.encode(arch)), x)
        return jnp.mean(jnp.square(logits))

    grads = jax.tree.map(np.asarray, _jit(jax.grad(loss))(params))  # numpy: no op-by-op compiles
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
    g = nnx.merge(graphdef, grads)

    def norm(module: nnx.Module | np.ndarray) -> float:
        leaves = [module] if isinstance(module, np.ndarray) else jax.tree.leaves(nnx.state(module, nnx.Param))
        return sum(float(np.sum(np.abs(v))) for v in leaves)

    roles, op = supernet.roles, GRAD.ops.index
    assert norm(g.cells[roles.index(("normal", 0, 1))]) == 0  # N = 1: inactive
    assert norm(g.cells[roles.index(("normal", 1, 1))]) == 0
    cell = g.cells[roles.index(("normal", 0, 0))]
    base = cell.base.convs[0].kernel[...]
    assert norm(base[..., :8]) > 0 and norm(base[..., 8:]) == 0  # F = 8 of 12
    side_b = cell.blocks[0][1][0].ops  # block 1, input b: 1x1 conv of h0
    assert norm(side_b[op(conv)]) > 0 and norm(side_b[op("identity")]) == 0
    assert norm(cell.blocks[0][0][0]) == 0  # identity of an F-channel state: no weights
    assert norm(cell.cat_adjust) == 0  # h1 not concatenated
    red = g.cells[roles.index(("reduce", 1, 0))]  # 4-bit weights
    assert norm(red.blocks[0][0][0].ops[op("identity")]) > 0  # strided: a 1x1 conv
    # block 2, input b reads a block output: the stride-1 group runs, the strided one does not
    assert norm(red.blocks[1][1][0]) == 0 and norm(red.blocks[1][1][1].ops[op(conv)]) > 0
    stem = g.stem.kernel[...]
    assert norm(stem[..., :24]) > 0 and norm(stem[..., 24:]) == 0  # 3 F = 24 of 36 channels


# --- every op ---------------------------------------------------------------------------------------
ALL_OPS = nasnet.NasnetSpace(
    skeleton=dataclasses.replace(CIFAR_1R, name="cifar-1r-stem-1.1", stem_multiplier=1.1),
    ops=nasnet.OPS,
    depths=(1,),
    filters=(8, 12),
    num_blocks=1,
    bits=(32,),
)
"""Stem of int(1.1 F) channels: 8 = F at F = 8 (h1 = x needs no projection in the first cell, and
pools and identities on it none either), 13 at F = 12 (they all project)."""


def _all_ops_archs() -> list[Arch]:
    """Seven archs that run each of the 13 ops in the normal cell (stride 1) and in the reduction
    cell (stride 2), on h0 and on h1 (the stem output in the first cell), at F = 8 and F = 12
    (depthwise and asymmetric kernels masked to 8 of 12 channels)."""
    ops, n = nasnet.OPS, len(nasnet.OPS)
    archs = []
    for i in range(7):
        normal = (ops[(2 * i) % n], ops[(2 * i + 1) % n])
        reduce = (ops[(2 * i + 6) % n], ops[(2 * i + 7) % n])
        values = {"N": 1, "F": (8, 12)[i % 2]}
        values |= _cell("normal", [(i % 2, normal[0], 1, normal[1])], (1,) if i % 3 == 0 else ())
        values |= _cell("reduce", [(0, reduce[0], 1 - i % 2, reduce[1])], (1,) if i % 3 == 1 else ())
        archs.append(ALL_OPS.validate(values))
    return archs


def test_every_op_masked_equals_extracted() -> None:
    archs = _all_ops_archs()
    used = {(a[f"{c}.b1.op_{s}"], c) for a in archs for c in nasnet.CELL_TYPES for s in "ab"}
    assert {op for op, c in used if c == "normal"} == set(nasnet.OPS)
    assert {op for op, c in used if c == "reduce"} == set(nasnet.OPS)
    r = _Rig(ALL_OPS, seed=1)
    for arch in archs:
        _assert_masked_equals_extracted(r, arch, same_batch=True)
    assert r.calibrate._cache_size() == 1


# --- the ImageNet skeletons -------------------------------------------------------------------------
def _imagenet_space(skeleton: str, depths: tuple[int, ...]) -> nasnet.NasnetSpace:
    sk = dataclasses.replace(nasnet.SKELETONS[skeleton], resolution=32, num_classes=7)
    ops = ("identity", "max_pool_3x3")
    return nasnet.NasnetSpace(skeleton=sk, ops=ops, depths=depths, filters=(8, 12), num_blocks=1, bits=(32,))


IMAGENET_CASES: dict[str, tuple[str, tuple[int, ...]]] = {
    # conv0 3x3 s2 VALID (32 -> 15 px), stem cells of int(F / 4) and int(F / 2) filters (F = 12:
    # 3 and 6, odd halves in the factorized reductions), then 3 stacks with two reductions
    "imagenet": ("imagenet", (1,)),
    # 3x stem, skip_reduction_layer_input: the cell after a reduction reads the reduction's prev;
    # N = 1 or 2 moves which tensor that is
    "imagenet-large": ("imagenet-large", (1, 2)),
}


def _imagenet_archs(space: nasnet.NasnetSpace) -> list[Arch]:
    rng = np.random.default_rng(5)
    fixed = {"F": 12} | _cell("normal", [(1, "max_pool_3x3", 1, "identity")], (1,))
    fixed |= _cell("reduce", [(0, "max_pool_3x3", 1, "identity")], (1,))
    archs = [space.validate(fixed | {"N": n}) for n in space.depths]
    archs += [space.sample(rng) for _ in range(3 - len(archs))]
    return archs


@pytest.mark.parametrize("name", list(IMAGENET_CASES))
def test_imagenet_skeletons_masked_equals_extracted(name: str) -> None:
    space = _imagenet_space(*IMAGENET_CASES[name])
    r = _Rig(space, seed=2)
    for arch in _imagenet_archs(space):
        _assert_masked_equals_extracted(r, arch, same_batch=True)
    stats = _fake_stats(r.supernet)
    rng = np.random.default_rng(9)
    for arch in [space.sample(rng) for _ in range(10)]:
        assert count_params(r.supernet.extract(arch, stats)) == space.costs(arch).params
    assert r.calibrate._cache_size() == 1


def test_factorized_reduction_follows_tf_slim() -> None:
    """Two stride-2 1x1 convs, the second on the input shifted by one pixel (zero-padded at the
    bottom and right), F // 2 and F - F // 2 filters (odd F), concat, BN; odd input sides."""
    layer = _Factorized.create(4, 7, use_relu=False, rngs=nnx.Rngs(0))
    stats = {layer.bn.key: (np.full(7, 0.5, np.float32), np.full(7, 2.0, np.float32))}
    standalone = layer.sliced(np.arange(4), 7, stats, 32, rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).standard_normal((2, 5, 5, 4)).astype(np.float32)
    w1, w2 = (np.asarray(c.kernel[...])[0, 0] for c in (layer.path1, layer.path2))
    shifted = np.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))[:, 1:, 1:]
    expected = np.concatenate([x[:, ::2, ::2] @ w1, shifted[:, ::2, ::2] @ w2], axis=-1)
    expected = (expected - 0.5) / np.sqrt(2.0 + 1e-5)
    assert w1.shape == (4, 3) and w2.shape == (4, 4)
    np.testing.assert_allclose(np.asarray(standalone(jnp.asarray(x))), expected, rtol=1e-5, atol=1e-5)


def test_inputs_too_small_for_the_reductions_are_refused() -> None:
    space = _imagenet_space("imagenet", (1,))
    supernet = NasnetSupernet(space, rngs=nnx.Rngs(0))
    supernet.check_input_size(32)
    with pytest.raises(ValueError, match="16 px inputs leave a reduction cell a 1 px input"):
        supernet.check_input_size(16)
