"""Zero-cost proxies: scores of untrained architectures, a whole batch per compiled call.

A proxy scores an architecture at initialization from one minibatch, without training. Each
proxy here is a pure function ``proxy(apply, params, arch, x, y, key) -> score`` of one encoded
architecture of a supernet (`nasx.supernet.functional`); `make_proxy` vmaps it over a batch of
architectures and jits it once, so one compiled program scores every architecture of a space.
Higher is better for every proxy; a degenerate network (no path from input to output, e.g. an
NB201 cell of ``none`` ops) scores ``-inf``. Proxies read no accuracy table.

The supernet runs every candidate op and masks what an architecture does not use, so a proxy
must see only what the architecture uses:

* gradient proxies (synflow, snip, grad_norm): an unused weight gets exactly zero gradient (its
  output is dropped by a switch, a ``jnp.where`` or a zero mask), so sums over all weights are
  sums over the architecture's weights;
* activation proxies (naswot, zen): the ReLUs and the final global average pool are found by
  interpreting the jaxpr of ``apply`` (JAX's custom-interpreter pattern; no hooks in the layers),
  and a ReLU channel counts when its output reaches a later ReLU or the logits, which one
  reverse-mode pass with random cotangents decides (`relu_usage`). An op whose output is only
  read by ``none`` edges still counts, as in the reference code, where the module exists.

Reverse-mode proxies run faster on XLA:CPU with an ``apply`` built by
``functional(supernet, canonical_conv_grads=True)``; forward-mode ones (`Proxy.forward_mode`:
synflow) need the plain one (they still run on the other, in reverse mode, slower).

Weights are the leaves named ``kernel`` (`nasx.nn` convolutions and dense layers), as the reference
code scores ``Conv2d``/``Linear`` weights only; a kernel with a leading layer axis (a `Stack`) is
that many layers.

References:
  Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021 (synflow, snip,
  grad_norm, jacob_cov on NB201; code: SamsungLabs/zero-cost-nas). Tanaka et al., "Pruning neural
  networks without any data by iteratively conserving synaptic flow", NeurIPS 2020. Lee et al.,
  "SNIP", ICLR 2019. Mellor et al., "Neural Architecture Search without Training", ICML 2021
  (naswot; v1 2020: jacob_cov). Lin et al., "Zen-NAS", ICCV 2021. White et al., "A Deeper Look at
  Zero-Cost Proxies", NAS-Bench-Suite-Zero / NASLib 2022 (log of synflow).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.extend import core as jcore
from jax.sharding import Mesh

from nasx.devices import over_devices
from nasx.errors import NasxError
from nasx.evaluators.names import PROXY_NAMES
from nasx.nn.layers import EPS
from nasx.supernet import Apply, Stats

__all__ = [
    "Proxy",
    "ProxyFn",
    "ProxyTraceError",
    "PROXIES",
    "make_proxy",
    "synflow",
    "snip",
    "grad_norm",
    "jacob_cov",
    "naswot",
    "relu_kernel",
    "relu_usage",
    "zen",
]

ProxyFn = Callable[[Apply, nnx.State, jax.Array, jax.Array, jax.Array | None, jax.Array], jax.Array]
"""``proxy(apply, params, arch, x, y, key) -> score`` of one encoded architecture."""

SYNFLOW_LOG_INPUT = -80.0
"""log of synflow's input value: see `synflow`. float32's smallest normal is e^-87.3; at e^-80 every
NB201 cell scores exactly as at e^-60, and the largest (all 3x3 convolutions, log R = 154, past
float32's e^88 + 60) stays finite."""


class ProxyTraceError(NasxError, ValueError):
    """A network's ReLUs or global pooling cannot be found in its jaxpr."""


# --- weights ------------------------------------------------------------------------------------
def _names(path) -> tuple:
    return tuple(k.key for k in path if isinstance(k, jax.tree_util.DictKey))


def _kernels(*trees: nnx.State) -> list[tuple]:
    """The ``kernel`` leaves of `trees` (same structure), zipped."""
    flat = [jax.tree_util.tree_flatten_with_path(t)[0] for t in trees]
    return [
        tuple(leaf for _, leaf in group)
        for group in zip(*flat, strict=True)
        if _names(group[0][0])[-1:] == ("kernel",)
    ]


def _layer_axes(kernel: jax.Array) -> tuple[int, ...]:
    """Axes of one layer's weights: all, or all but a `Stack`'s leading layer axis (a conv
    kernel is 4-D, a dense one 2-D)."""
    return tuple(range(1 if kernel.ndim in (3, 5) else 0, kernel.ndim))


def _cross_entropy(logits: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))


def _worst_if_nan(score: jax.Array) -> jax.Array:
    return jnp.where(jnp.isnan(score), -jnp.inf, score)


# --- gradient proxies ---------------------------------------------------------------------------
def synflow(apply: Apply, params: nnx.State, arch: jax.Array, x: jax.Array, y=None, key=None) -> jax.Array:
    """log of the synaptic flow ``sum theta * dR/dtheta`` over the weights, R the sum of the logits.

    As in the reference code: weights replaced by their absolute values, one all-ones input of
    x's shape, batch norm removed (here: normalized by fixed statistics mean 0, variance 1, which
    at initialization, scale 1 and bias 0, is the identity; the score never depends on the batch
    or labels). Every term is >= 0, so the sum equals the reference's sum of absolute values.

    The sum over all weights is one directional derivative: ``d/dt R(theta + t * theta)`` at
    t = 0 (chain rule), so a single forward-mode pass (`jax.jvp`) replaces the reference's
    backward pass and its weight gradients. Biases are set to zero so that R is exactly linear in
    the input: the reference computes in float64 (R reaches e^115 in NASLib's NB201 scores, and
    float32 ends at e^88), whereas here the input is ``exp(SYNFLOW_LOG_INPUT)`` and the log is
    added back. Exact for networks positively homogeneous in their input (ReLU, pooling, linear:
    NB201, NASNet, ResNet); R up to about e^165 (beyond it, ``+inf``). Returns ``-inf`` when R = 0
    (no path from input to output).

    A network with a layer that defines only its reverse mode (a `jax.custom_vjp`, found in the
    jaxpr: `nasx.nn.cpu_conv`'s XLA:CPU convolutions) is differentiated in reverse mode instead,
    the same score, several times slower: build synflow's ``apply`` without
    ``canonical_conv_grads`` (`Proxy.forward_mode`).

    References:
      Tanaka et al., NeurIPS 2020; Abdelfattah et al., ICLR 2021 (``synflow``, ``bn=False``).
    """
    del y, key
    theta = jax.tree_util.tree_map_with_path(
        lambda p, v: jnp.zeros_like(v) if _names(p)[-1:] == ("bias",) else jnp.abs(v), params
    )
    direction = jax.tree_util.tree_map_with_path(
        lambda p, v: v if _names(p)[-1:] == ("kernel",) else jnp.zeros_like(v), theta
    )
    traced, (_, shapes) = jax.make_jaxpr(lambda p, a, x: apply(p, a, x), return_shape=True)(
        theta, arch, x[:1]
    )
    stats: Stats = {k: (jnp.zeros(m.shape), jnp.full(v.shape, 1.0 - EPS)) for k, (m, v) in shapes.items()}
    ones = jnp.full((1, *x.shape[1:]), math.exp(SYNFLOW_LOG_INPUT), x.dtype)
    flow, total = _directional_derivative(
        lambda p: jnp.sum(apply(p, arch, ones, stats)[0]),
        theta,
        direction,
        forward=not _has_custom_vjp(traced.jaxpr),
    )
    alive = flow > 0
    score = jnp.log(jnp.where(alive, total, 1.0)) - SYNFLOW_LOG_INPUT
    return jnp.where(alive, score, -jnp.inf)


def _directional_derivative(f, x, v, *, forward: bool) -> tuple[jax.Array, jax.Array]:
    """``f(x)`` and its derivative along `v`: one forward-mode pass, or ``sum(grad f(x) * v)``
    (for networks with a layer that defines only its reverse mode, see `_has_custom_vjp`)."""
    if forward:
        return jax.jvp(f, (x,), (v,))
    value, grads = jax.value_and_grad(f)(x)
    return value, sum(jnp.sum(g * d) for g, d in zip(jax.tree.leaves(grads), jax.tree.leaves(v), strict=True))


def _has_custom_vjp(jaxpr) -> bool:
    """Whether a `jax.custom_vjp` function (`nasx.nn.cpu_conv`'s XLA:CPU convolutions) is called
    anywhere in `jaxpr`, nested computations included. `jax.jvp` cannot pass one, and inside a
    ``lax.map`` or ``switch`` it fails only when lowered, so this is decided on the jaxpr first."""
    return any(
        "custom_vjp" in e.primitive.name or any(_has_custom_vjp(s) for s in jcore.jaxprs_in_params(e.params))
        for e in jaxpr.eqns
    )


def _loss_grads(apply: Apply, params: nnx.State, arch: jax.Array, x: jax.Array, y: jax.Array) -> nnx.State:
    """Gradient of the mean cross-entropy, batch norm on the batch's statistics (train mode)."""
    return jax.grad(lambda p: _cross_entropy(apply(p, arch, x)[0], y))(params)


def snip(apply: Apply, params: nnx.State, arch: jax.Array, x: jax.Array, y: jax.Array, key=None) -> jax.Array:
    """Connection sensitivity ``sum |theta * dL/dtheta|`` over the weights, L the cross-entropy.

    References:
      Lee et al., "SNIP: Single-shot Network Pruning based on Connection Sensitivity", ICLR 2019;
      Abdelfattah et al., ICLR 2021.
    """
    del key
    grads = _loss_grads(apply, params, arch, x, y)
    return sum(jnp.sum(jnp.abs(t * g)) for t, g in _kernels(params, grads))


def grad_norm(
    apply: Apply, params: nnx.State, arch: jax.Array, x: jax.Array, y: jax.Array, key=None
) -> jax.Array:
    """Sum over layers of the L2 norm of the cross-entropy's gradient in the layer's weights.

    Per layer, then summed, as the reference code does (a `Stack`'s kernel is one layer per
    index of its leading axis).

    References:
      Abdelfattah et al., ICLR 2021 (``grad_norm``).
    """
    del key
    grads = _loss_grads(apply, params, arch, x, y)
    return sum(jnp.sum(jnp.sqrt(jnp.sum(jnp.square(g), axis=_layer_axes(g)))) for (g,) in _kernels(grads))


def jacob_cov(apply: Apply, params: nnx.State, arch: jax.Array, x: jax.Array, y=None, key=None) -> jax.Array:
    """``-sum(log(l + k) + 1 / (l + k))`` over the eigenvalues l of the correlation matrix of the
    input gradients of the summed logits (one row per image), k = 1e-5.

    Batch norm uses the batch's statistics, so (as in the reference's single backward pass) each
    row is the gradient of the whole batch's summed logits. Eigenvalues in float32 (the reference
    uses float64): near-singular matrices, scored far below the rest, are less exact. ``-inf``
    where an image's gradient is constant (NaN correlations).

    References:
      Mellor et al., "Neural Architecture Search without Training", arXiv v1, 2020;
      Abdelfattah et al., ICLR 2021 (``jacob_cov``).
    """
    del y, key
    jac = jax.grad(lambda x: jnp.sum(apply(params, arch, x)[0]))(x)
    eig = jnp.linalg.eigvalsh(jnp.corrcoef(jac.reshape(x.shape[0], -1)))
    k = 1e-5
    return _worst_if_nan(-jnp.sum(jnp.log(eig + k) + 1.0 / (eig + k)))


# --- activations, from the jaxpr ----------------------------------------------------------------
def _is_relu(eqn) -> bool:
    """``max(x, 0.0)`` on floats: `nasx.nn.layers.relu` (and the lower clip of relu6)."""
    if eqn.primitive is not jax.lax.max_p:
        return False
    a, b = eqn.invars
    return (
        isinstance(b, jcore.Literal)
        and not isinstance(a, jcore.Literal)
        and jnp.issubdtype(a.aval.dtype, jnp.floating)
        and jnp.ndim(b.val) == 0
        and float(b.val) == 0.0
    )


def _is_global_pool(eqn) -> bool:
    """The sum of `nasx.nn.layers.global_avg_pool`: over H and W of an NHWC tensor."""
    return (
        eqn.primitive is jax.lax.reduce_sum_p
        and tuple(eqn.params["axes"]) == (1, 2)
        and eqn.invars[0].aval.ndim == 4
    )


def _has_relu(jaxpr) -> bool:
    return any(_is_relu(e) or any(_has_relu(s) for s in jcore.jaxprs_in_params(e.params)) for e in jaxpr.eqns)


class _Traced:
    """``apply(params, arch, x)`` as a jaxpr: its ReLUs, grouped by input, and its last global
    average pool; `run` evaluates it, recording their inputs and perturbing ReLU outputs."""

    def __init__(self, apply: Apply, params: nnx.State, arch: jax.Array, x: jax.Array) -> None:
        abstract = jax.tree.map(
            lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)), (params, arch, x)
        )
        self.closed, self.out_shape = jax.make_jaxpr(lambda p, a, x: apply(p, a, x), return_shape=True)(
            *abstract
        )
        eqns = self.closed.jaxpr.eqns
        for eqn in eqns:
            if any(_has_relu(sub) for sub in jcore.jaxprs_in_params(eqn.params)):
                raise ProxyTraceError(
                    f"a ReLU sits inside a nested {eqn.primitive.name!r} of the network's jaxpr; "
                    "naswot and zen read ReLUs of the top level only (unrolled layers)"
                )
        self.relus = [i for i, e in enumerate(eqns) if _is_relu(e)]
        self.groups: dict = {}
        for i in self.relus:
            self.groups.setdefault(eqns[i].invars[0], []).append(i)
        pools = [i for i, e in enumerate(eqns) if _is_global_pool(e)]
        self.pool = pools[-1] if pools else None

    def relu_shape(self, i: int) -> tuple[int, ...]:
        return tuple(self.closed.jaxpr.eqns[i].outvars[0].aval.shape)

    def run(self, params, arch, x, eps: dict[int, jax.Array] | None = None):
        """``(logits, stats), seen``: `seen` maps ReLU input vars and "pool" to their values."""
        jaxpr, eps = self.closed.jaxpr, eps or {}
        env = dict(zip(jaxpr.constvars, self.closed.consts, strict=True))
        env |= dict(zip(jaxpr.invars, jax.tree.leaves((params, arch, x)), strict=True))

        def read(v):
            return v.val if isinstance(v, jcore.Literal) else env[v]

        seen = {}
        for i, eqn in enumerate(jaxpr.eqns):
            args = [read(v) for v in eqn.invars]
            if i == self.pool:
                seen["pool"] = args[0]
            with eqn.ctx.manager:
                out = eqn.primitive.bind(*args, **eqn.primitive.get_bind_params(eqn.params))
            if i in eps:
                out = out + eps[i]
            for v, o in zip(eqn.outvars, out if eqn.primitive.multiple_results else [out], strict=True):
                if not isinstance(v, jcore.DropVar):
                    env[v] = o
        outputs = jax.tree.unflatten(jax.tree.structure(self.out_shape), [read(v) for v in jaxpr.outvars])
        return outputs, seen | {var: env[var] for var in self.groups}


def relu_usage(
    apply: Apply, params: nnx.State, arch: jax.Array, x: jax.Array, key: jax.Array
) -> tuple[dict[int, jax.Array], nnx.State]:
    """Which ReLU channels and which parameters the architecture uses.

    A ReLU channel is used when its output reaches a later ReLU's input or the logits; a
    parameter when it reaches them too. Decided by one reverse-mode pass of
    ``<r_0, logits> + sum_z <r_z, z>`` over the ReLU inputs z, with random r: a zero gradient on
    every image and position is structural (a dropped candidate op, a masked channel). Only the
    structure matters, so a couple of small images suffice.

    Returns:
      ``(channels, params_used)``: per ReLU (jaxpr equation index) a 0/1 float vector over its
      channels (last axis); per parameter leaf a 0/1 array of its shape.
    """
    traced = _Traced(apply, params, arch, x)

    def probe(params, eps):
        (logits, _), seen = traced.run(params, arch, x, eps)
        keys = jax.random.split(key, len(traced.groups) + 1)
        total = jnp.sum(logits * jax.random.normal(keys[0], logits.shape))
        for k, var in zip(keys[1:], traced.groups, strict=True):
            total = total + jnp.sum(seen[var] * jax.random.normal(k, seen[var].shape))
        return total

    eps = {i: jnp.zeros(traced.relu_shape(i)) for i in traced.relus}
    g_params, g_eps = jax.grad(probe, argnums=(0, 1))(params, eps)
    channels = {
        i: (jnp.sum(jnp.abs(g), axis=tuple(range(g.ndim - 1))) > 0).astype(jnp.float32)
        for i, g in g_eps.items()
    }
    return channels, jax.tree.map(lambda g: (g != 0).astype(jnp.float32), g_params)


def relu_kernel(
    apply: Apply, params: nnx.State, arch: jax.Array, x: jax.Array, key: jax.Array, *, gate: bool = True
) -> jax.Array:
    """NASWOT's kernel: ``K[i, j]`` = number of the architecture's ReLU units on which images i
    and j agree (both active or both inactive), batch norm on the batch's statistics.

    Computed as ``(S S^T + D) / 2`` with S the +-1 activation signs of the used units and D their
    number; ReLUs reading the same tensor share one product, weighted by how many of them use
    each channel. With ``gate=False`` every ReLU of the network counts (a standalone network).
    """
    traced = _Traced(apply, params, arch, x)
    channels = relu_usage(apply, params, arch, x[:2], key)[0] if gate else None
    _, seen = traced.run(params, arch, x)
    n = x.shape[0]
    kernel = jnp.zeros((n, n))
    for var, sites in traced.groups.items():
        z = seen[var]
        if channels is None:
            weight = jnp.full(z.shape[-1:], float(len(sites)))
        else:
            weight = sum(channels[i] for i in sites)
        signs = jnp.where(z > 0, 1.0, -1.0).reshape(n, -1, z.shape[-1])
        units = jnp.sum(weight) * signs.shape[1]
        kernel = kernel + jnp.einsum("npc,mpc->nm", signs, signs * weight[None, None, :]) + units
    return kernel / 2


def naswot(apply: Apply, params: nnx.State, arch: jax.Array, x: jax.Array, y=None, key=None) -> jax.Array:
    """``log |det K|`` of the ReLU-code kernel `relu_kernel` over the minibatch.

    ``-inf`` when K is singular (two images with the same codes).

    References:
      Mellor et al., "Neural Architecture Search without Training", ICML 2021.
    """
    del y
    key = jax.random.key(0) if key is None else key
    return jnp.linalg.slogdet(relu_kernel(apply, params, arch, x, key))[1]


def _gaussian(params: nnx.State, key: jax.Array) -> nnx.State:
    """Zen-NAS's re-initialization: weights N(0, 1), batch-norm scales 1, biases 0."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    keys = jax.random.split(key, len(leaves))
    out = []
    for k, (path, v) in zip(keys, leaves, strict=True):
        name = _names(path)[-1:]
        out.append(
            jax.random.normal(k, v.shape, v.dtype)
            if name == ("kernel",)
            else (jnp.ones_like(v) if name == ("scale",) else jnp.zeros_like(v))
        )
    return jax.tree.unflatten(treedef, out)


def zen(
    apply: Apply, params: nnx.State, arch: jax.Array, x: jax.Array, y=None, key=None, *, mixup: float = 1e-2
) -> jax.Array:
    """``log E|f(x) - f(x + mixup * e)|_1 + sum log sqrt(mean BN variance)``, f the features
    entering the last global average pool, on Gaussian weights and Gaussian inputs.

    Weights are re-drawn from `key` (N(0, 1), batch-norm scales 1, biases 0) and the inputs are
    Gaussian of x's shape, as in the reference; batch norm uses the batch's statistics, and its
    variance (of the unperturbed batch, over the channels the architecture uses) stands for the
    reference's running variance after the forward passes.

    References:
      Lin et al., "Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition", ICCV 2021.
    """
    del y
    k_init, k_x, k_mix, k_use = jax.random.split(jax.random.key(0) if key is None else key, 4)
    gauss = _gaussian(params, k_init)
    x1 = jax.random.normal(k_x, x.shape, x.dtype)
    x2 = x1 + mixup * jax.random.normal(k_mix, x.shape, x.dtype)
    traced = _Traced(apply, gauss, arch, x1)
    if traced.pool is None:
        raise ProxyTraceError("zen needs a global average pool (reduce over H, W of NHWC) in the network")
    (_, stats), seen = traced.run(gauss, arch, x1)
    features = seen["pool"]
    mixed = traced.run(gauss, arch, x2)[1]["pool"]
    delta = jnp.mean(jnp.sum(jnp.abs(features - mixed), axis=(1, 2, 3)))
    used = relu_usage(apply, gauss, arch, x1[:2], k_use)[1]
    scales = {
        "/".join(map(str, _names(p)[:-1])): u
        for p, u in jax.tree_util.tree_flatten_with_path(used)[0]
        if _names(p)[-1:] == ("scale",)
    }
    log_bn = 0.0
    for name, (_, var) in stats.items():
        u = scales[name]
        count = jnp.sum(u, axis=-1)
        mean_var = jnp.sum(var * u, axis=-1) / jnp.maximum(count, 1.0)
        log_bn = log_bn + jnp.sum(
            jnp.where(count > 0, 0.5 * jnp.log(jnp.where(count > 0, mean_var, 1.0)), 0.0)
        )
    return _worst_if_nan(jnp.log(delta) + log_bn)


# --- batches of architectures -------------------------------------------------------------------
@dataclass(frozen=True)
class Proxy:
    """A proxy and how it is used.

    Attributes:
      name: its name in papers and reference code.
      fn: ``fn(apply, params, arch, x, y, key) -> score``.
      needs_labels: whether it reads `y`.
      batch_size: minibatch of the reference setup (synflow reads only the image shape).
      forward_mode: whether it differentiates in forward mode (`jax.jvp`: synflow). Build the
        ``apply`` of the others with ``functional(supernet, canonical_conv_grads=True)``
        (reverse-mode gradients of convolutions 5-10x faster on XLA:CPU in switches and loops),
        and of these without: forward mode cannot pass those convolutions.
      higher_is_better: always True here (kept so callers need not know).
    """

    name: str
    fn: ProxyFn
    needs_labels: bool
    batch_size: int
    forward_mode: bool = False
    higher_is_better: bool = True


PROXIES = {
    p.name: p
    for p in sorted(
        (
            Proxy("synflow", synflow, needs_labels=False, batch_size=1, forward_mode=True),
            Proxy("snip", snip, needs_labels=True, batch_size=64),
            Proxy("grad_norm", grad_norm, needs_labels=True, batch_size=64),
            Proxy("jacob_cov", jacob_cov, needs_labels=False, batch_size=64),
            Proxy("naswot", naswot, needs_labels=False, batch_size=128),
            Proxy("zen", zen, needs_labels=False, batch_size=64),
        ),
        key=lambda p: PROXY_NAMES.index(p.name),  # a proxy missing from the names fails here
    )
}
"""The proxies of this module by name, in the order of `nasx.evaluators.names.PROXY_NAMES` (the
JAX-free list the CLI shows)."""


def make_proxy(
    apply: Apply,
    proxy: Proxy | ProxyFn,
    *,
    one_at_a_time: bool = False,
    mesh: Mesh | None = None,
    compiler_options: dict | None = None,
) -> Callable[[nnx.State, jax.Array, jax.Array, jax.Array | None, jax.Array], jax.Array]:
    """``scores(params, archs, x, y, key) -> (n,)`` for ``archs`` of shape ``(n, d)``, jitted.

    Every architecture sees the same images, labels and key; one compile serves every batch of
    architectures of the same size (pad the last chunk). The batch is vmapped, or, with
    ``one_at_a_time``, scored in a ``lax.map`` loop inside the same compiled call: for supernets
    that select ops with ``lax.switch`` (`switches_ops`, e.g. NB201) only the chosen ops
    then run, where ``vmap`` would turn each switch into a select of every candidate. With a
    `mesh` (`nasx.devices.local_mesh`) the batch is split over its devices, any batch size.
    Build `apply` as `Proxy.forward_mode` says.
    """
    fn = proxy.fn if isinstance(proxy, Proxy) else proxy

    def scores(params, archs, x, y, key):
        one = lambda arch: fn(apply, params, arch, x, y, key)  # noqa: E731
        return jax.lax.map(one, archs) if one_at_a_time else jax.vmap(one)(archs)

    if mesh is not None:
        return over_devices(scores, mesh, compiler_options=compiler_options)
    return jax.jit(scores, compiler_options=compiler_options)
