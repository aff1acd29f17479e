"""Zero-cost proxies: vmapped == looped, one compile, what an architecture does not use counts for
nothing, synflow's invariances, NASWOT's kernel, determinism.

The proxies are generic over supernets, so they are tested on a tiny one built here from
`nasx.nn` layers (compiles in seconds; the NB201 supernet's backward pass takes minutes to compile
on 2 cores): an NB201-style cell of 3 edges, each running every candidate op (none, skip,
ReLU-conv1x1-BN, ReLU-conv3x3-BN) and selecting with ``jnp.where``, then an elastic-width conv
(prefix mask) and a BN-ReLU-pool-dense head. With a static architecture (Python ints) only the
chosen ops run: the standalone network. Rank correlations on NB201 are measured by
``benchmarks/proxies.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nasx.nn.layers import BatchNorm, BatchNormContext, Conv, Dense, global_avg_pool, prefix_mask, relu
from nasx.proxies import (
    PROXIES,
    ProxyTraceError,
    make_proxy,
    naswot,
    relu_kernel,
    relu_usage,
    zen,
)
from nasx.supernet import functional, name_batchnorms

QUICK = {"xla_backend_optimization_level": 0}
"""These tests compare values, not speed."""

C, WIDE, EDGES = 4, 8, ((0, 1), (0, 2), (1, 2))
NONE, SKIP, CONV1, CONV3 = range(4)
WIDTHS = (4, 8)


class _Toy(nnx.Module):
    """Encoding: ``[op(0->1), op(0->2), op(1->2), width index]``; node 2 is the cell output."""

    def __init__(self, *, rngs: nnx.Rngs) -> None:
        self.stem, self.stem_bn = Conv(3, C, 3, rngs=rngs), BatchNorm(C)
        self.conv1 = nnx.List([Conv(C, C, 1, rngs=rngs) for _ in EDGES])
        self.bn1 = nnx.List([BatchNorm(C) for _ in EDGES])
        self.conv3 = nnx.List([Conv(C, C, 3, rngs=rngs) for _ in EDGES])
        self.bn3 = nnx.List([BatchNorm(C) for _ in EDGES])
        self.wide, self.wide_bn = Conv(C, WIDE, 3, stride=2, rngs=rngs), BatchNorm(WIDE)
        self.head_bn, self.classifier = BatchNorm(WIDE), Dense(WIDE, 3, rngs=rngs)
        name_batchnorms(self)

    def _op(self, e: int, k: int, src: jax.Array, ctx: BatchNormContext) -> jax.Array:
        if k == NONE:
            return jnp.zeros_like(src)
        if k == SKIP:
            return src
        conv, bn = (self.conv1[e], self.bn1[e]) if k == CONV1 else (self.conv3[e], self.bn3[e])
        return bn(conv(relu(src)), ctx=ctx)

    def __call__(self, x: jax.Array, arch, ctx: BatchNormContext) -> jax.Array:
        """`arch`: an int array (masked supernet) or a tuple of ints (only the chosen ops run)."""
        static = isinstance(arch, tuple)
        nodes = [self.stem_bn(self.stem(x), ctx=ctx), None, None]
        for e, (i, j) in enumerate(EDGES):
            if static:
                y = self._op(e, arch[e], nodes[i], ctx)
            else:
                y = self._op(e, NONE, nodes[i], ctx)
                for k in (SKIP, CONV1, CONV3):
                    y = jnp.where(arch[e] == k, self._op(e, k, nodes[i], ctx), y)
            nodes[j] = y if nodes[j] is None else nodes[j] + y
        width = WIDTHS[arch[3]] if static else jnp.asarray(WIDTHS)[arch[3]]
        mask = prefix_mask(width, WIDE)
        h = self.wide_bn(self.wide(relu(nodes[2]), out_mask=mask), mask=mask, ctx=ctx)
        return self.classifier(global_avg_pool(relu(self.head_bn(h, mask=mask, ctx=ctx))), in_mask=mask)


def _static_apply(graphdef: nnx.GraphDef, arch: tuple[int, ...]):
    """The standalone network of `arch` as an ``apply`` (the encoded arch argument is ignored)."""

    def apply(params, _, x, stats=None):
        ctx = BatchNormContext(stats)
        logits = nnx.merge(graphdef, params)(x, arch, ctx)
        return logits, ctx.recorded if stats is None else stats

    return apply


ARCHS = [
    (CONV3, CONV1, SKIP, 1),
    (CONV1, CONV3, CONV3, 0),
    (CONV3, CONV1, NONE, 1),  # node 1 is a dead end: only a `none` edge reads it
    (CONV3, NONE, CONV1, 1),
    (CONV1, SKIP, CONV1, 0),
    (SKIP, SKIP, SKIP, 1),
]
ALL_NONE = (NONE, NONE, NONE, 1)


class _Rig:
    def __init__(self) -> None:
        self.net = _Toy(rngs=nnx.Rngs(0))
        self.graphdef, self.params, self.apply = functional(self.net)
        rng = np.random.default_rng(0)
        self.x = jnp.asarray(rng.standard_normal((6, 8, 8, 3), dtype=np.float32))
        self.y = jnp.asarray(rng.integers(0, 3, 6), dtype=jnp.int32)
        self.key = jax.random.key(0)
        self.archs = jnp.asarray(ARCHS, jnp.int32)
        self.batched = {
            name: make_proxy(self.apply, p, compiler_options=QUICK) for name, p in PROXIES.items()
        }
        self.probe = jax.jit(
            lambda p, a, x, k: (relu_kernel(self.apply, p, a, x, k), relu_usage(self.apply, p, a, x[:2], k)),
            compiler_options=QUICK,
        )
        self.single = {
            name: jax.jit(
                lambda params, a, x, y, key, fn=p.fn: fn(self.apply, params, a, x, y, key),
                compiler_options=QUICK,
            )
            for name, p in PROXIES.items()
        }

    def scores(self, name: str, params=None, archs=None, x=None, y=None, key=None) -> np.ndarray:
        params = self.params if params is None else params
        archs = self.archs if archs is None else jnp.asarray(archs, jnp.int32)
        x, y, key = (
            (self.x if x is None else x),
            (self.y if y is None else y),
            (self.key if key is None else key),
        )
        return np.asarray(self.batched[name](params, archs, x, y, key))


@pytest.fixture(scope="module")
def rig() -> _Rig:
    return _Rig()


def _names(path) -> tuple:
    return tuple(k.key for k in path if isinstance(k, jax.tree_util.DictKey))


def _edit(params, names: tuple, fn):
    """`params` with ``fn`` applied to the leaf at `names` (e.g. ``("conv3", 0, "kernel")``)."""
    return jax.tree_util.tree_map_with_path(lambda p, v: fn(v) if _names(p) == names else v, params)


def _leaf(tree, names: tuple) -> jax.Array:
    (leaf,) = [v for p, v in jax.tree_util.tree_flatten_with_path(tree)[0] if _names(p) == names]
    return leaf


@pytest.mark.parametrize("name", list(PROXIES))
def test_vmapped_scores_equal_one_arch_at_a_time_with_one_compile(rig: _Rig, name: str) -> None:
    batched = rig.scores(name)
    looped = [float(rig.single[name](rig.params, a, rig.x, rig.y, rig.key)) for a in rig.archs]
    assert np.all(np.isfinite(batched)), batched
    # the vmap runs the archs' convolutions as one batch: float32 sums in another order
    np.testing.assert_allclose(batched, looped, rtol=1e-5, atol=1e-5)
    assert len(set(batched.tolist())) > 3  # the proxy tells architectures apart
    for offset in (1, 2):  # 3 batches of 6 = 18 architectures
        rig.scores(name, archs=np.roll(np.asarray(ARCHS), offset, axis=0))
    assert rig.batched[name]._cache_size() == 1
    assert rig.single[name]._cache_size() == 1


def test_synflow_reads_only_the_image_shape_and_scales_with_the_classifier(rig: _Rig) -> None:
    base = rig.scores("synflow")
    other = rig.scores("synflow", x=rig.x * 3.0 + 1.0, y=(rig.y + 1) % 3, key=jax.random.key(5))
    np.testing.assert_array_equal(base, other)
    # R is linear in the classifier's weights, and so is every term theta * dR/dtheta
    for names in (("classifier", "kernel"), ("stem", "kernel")):
        scaled = rig.scores("synflow", params=_edit(rig.params, names, lambda v: v * 7.0))
        np.testing.assert_allclose(scaled, base + np.log(7.0), rtol=1e-5)


def test_synflow_equals_the_sum_of_weight_times_gradient(rig: _Rig) -> None:
    """The forward-mode synflow against its definition, by weight gradients: sum over kernels of
    |theta * dR/dtheta|, theta = |w|, biases 0, batch norm the identity, input all ones."""
    theta = jax.tree_util.tree_map_with_path(
        lambda p, v: jnp.zeros_like(v) if _names(p)[-1:] == ("bias",) else jnp.abs(v), rig.params
    )
    stats = {
        k: (jnp.zeros_like(m), jnp.ones_like(v) - 1e-5)
        for k, (m, v) in rig.apply(theta, rig.archs[0], rig.x)[1].items()
    }
    ones = jnp.ones((1, *rig.x.shape[1:]))
    expected = []
    for arch in rig.archs:
        grads = jax.grad(lambda p, a=arch: jnp.sum(rig.apply(p, a, ones, stats)[0]))(theta)
        terms = jax.tree_util.tree_map_with_path(
            lambda p, t, g: jnp.sum(jnp.abs(t * g)) if _names(p)[-1:] == ("kernel",) else 0.0, theta, grads
        )
        expected.append(np.log(float(sum(jax.tree.leaves(terms)))))
    np.testing.assert_allclose(rig.scores("synflow"), expected, rtol=1e-5)


@pytest.mark.parametrize("name", ["synflow", "jacob_cov", "naswot"])
def test_one_arch_at_a_time_equals_vmapped(rig: _Rig, name: str) -> None:
    mapped = make_proxy(rig.apply, PROXIES[name], one_at_a_time=True, compiler_options=QUICK)
    scores = mapped(rig.params, rig.archs, rig.x, rig.y, rig.key)
    np.testing.assert_allclose(scores, rig.scores(name), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(PROXIES))
def test_canonical_conv_grads_leave_the_scores_unchanged(rig: _Rig, name: str) -> None:
    """Built with ``canonical_conv_grads`` (`dense_conv` on CPU), one arch at a time in a
    ``lax.map``: the same scores. synflow, whose `jax.jvp` cannot pass `dense_conv` (and in a
    ``lax.map`` would fail only when lowered), finds it in the jaxpr and runs in reverse mode."""
    _, params, apply = functional(rig.net, canonical_conv_grads=True)
    jaxprs = [str(jax.make_jaxpr(a)(params, rig.archs[0], rig.x)) for a in (apply, rig.apply)]
    assert "custom_vjp" in jaxprs[0] and "custom_vjp" not in jaxprs[1]
    assert not any(getattr(c, "canonical_grads", False) for _, c in nnx.iter_graph(rig.net))
    mapped = make_proxy(apply, PROXIES[name], one_at_a_time=True, compiler_options=QUICK)
    scores = mapped(params, rig.archs, rig.x, rig.y, rig.key)
    # reverse mode sums synflow's terms in another order; the rest runs other but equal convolutions
    np.testing.assert_allclose(scores, rig.scores(name), rtol=1e-5, atol=1e-5)


def test_no_path_from_input_to_output_scores_minus_infinity(rig: _Rig) -> None:
    archs = [ALL_NONE, *ARCHS[:5]]
    for name in ("synflow", "jacob_cov"):
        scores = rig.scores(name, archs=archs)
        assert scores[0] == -np.inf and np.all(np.isfinite(scores[1:])), (name, scores)


@pytest.mark.parametrize("name", ["synflow", "snip", "grad_norm"])
def test_weights_the_architecture_does_not_use_count_for_nothing(rig: _Rig, name: str) -> None:
    base = rig.scores(name)
    # edge 0->1's conv3: unused but by archs 0, 2 and 3, and arch 2's is a dead end (its gradient
    # is zero, as through the reference's zero op)
    touched = rig.scores(name, params=_edit(rig.params, ("conv3", 0, "kernel"), lambda v: v * 3.0))
    unused = [i for i, a in enumerate(ARCHS) if a[0] != CONV3 or i == 2]
    np.testing.assert_array_equal(touched[unused], base[unused])
    assert touched[0] != base[0]
    # channels 4..7 of the elastic conv are masked at width 4 (archs 1 and 4)
    tail = _edit(rig.params, ("wide", "kernel"), lambda v: v.at[..., 4:].multiply(5.0))
    masked = rig.scores(name, params=tail)
    np.testing.assert_array_equal(masked[[1, 4]], base[[1, 4]])
    assert masked[0] != base[0]


def test_relu_usage_keeps_the_chosen_ops_and_channels(rig: _Rig) -> None:
    arch = jnp.asarray(ARCHS[1], jnp.int32)  # conv1, conv3, conv3 at width 4
    _, (channels, params_used) = rig.probe(rig.params, arch, rig.x, rig.key)
    # 3 edges x 2 conv candidates, the ReLU before the wide conv, the head's
    assert len(channels) == 8
    used = [int(jnp.sum(c)) for c in channels.values()]
    assert used == [4, 0, 0, 4, 0, 4, 4, 4]  # per edge: conv1's ReLU, conv3's
    head = list(channels.values())[-1]
    np.testing.assert_array_equal(head, [1, 1, 1, 1, 0, 0, 0, 0])
    assert float(jnp.max(_leaf(params_used, ("conv3", 0, "kernel")))) == 0.0  # edge 0->1 is conv1
    assert float(jnp.min(_leaf(params_used, ("conv1", 0, "kernel")))) == 1.0


def test_naswot_kernel_equals_the_standalone_networks_and_is_psd(rig: _Rig) -> None:
    for arch in (ARCHS[2],):  # full width (the standalone has no masks), with a dead-end conv
        masked, _ = rig.probe(rig.params, jnp.asarray(arch, jnp.int32), rig.x, rig.key)
        alone = relu_kernel(_static_apply(rig.graphdef, arch), rig.params, None, rig.x, rig.key, gate=False)
        np.testing.assert_array_equal(masked, alone)
        k = np.asarray(masked, np.float64)
        np.testing.assert_array_equal(k, k.T)
        np.testing.assert_array_equal(k, np.round(k))  # counts of units
        assert np.all(np.diag(k) == k[0, 0]) and np.all(k <= k[0, 0])  # K_ii = number of units
        assert np.min(np.linalg.eigvalsh(k)) > -1e-6 * k[0, 0]
    assert np.all(np.isfinite(rig.scores("naswot")))


def test_scores_are_deterministic_given_the_key(rig: _Rig) -> None:
    for name in ("zen", "naswot", "snip"):
        np.testing.assert_array_equal(rig.scores(name), rig.scores(name))
    assert not np.array_equal(rig.scores("zen"), rig.scores("zen", key=jax.random.key(1)))


def test_labels_matter_only_to_the_proxies_that_need_them(rig: _Rig) -> None:
    flipped = (rig.y + 1) % 3
    for name, proxy in PROXIES.items():
        same = np.array_equal(rig.scores(name), rig.scores(name, y=flipped))
        assert same != proxy.needs_labels, name
        assert proxy.higher_is_better


def test_relus_hidden_in_a_scan_are_reported() -> None:
    def apply(params, arch, x, stats=None):
        h, _ = jax.lax.scan(lambda h, _: (relu(h @ params), None), x, length=2)
        return h, {}

    with pytest.raises(ProxyTraceError, match="nested"):
        naswot(apply, jnp.eye(3), jnp.zeros(1, jnp.int32), jnp.ones((4, 3)), None, jax.random.key(0))
    with pytest.raises(ProxyTraceError, match="global average pool"):
        zen(lambda p, a, x, s=None: (x @ p, {}), jnp.eye(3), jnp.zeros(1, jnp.int32), jnp.ones((4, 3)))


def test_the_cli_names_are_exactly_the_proxies() -> None:
    """`PROXY_NAMES` (what `nasx search --evaluator` accepts, JAX-free) names every proxy, once."""
    from nasx.evaluators.names import PROXY_NAMES
    from nasx.proxies import PROXIES

    assert tuple(PROXIES) == PROXY_NAMES
    assert all(PROXIES[n].name == n for n in PROXY_NAMES)
