"""NAS-Bench-201 supernet: every cell edge runs all 5 candidate ops and keeps the chosen one.

Structure exactly as `search_spaces.nb201` costs it (AutoDL ``TinyNetwork``): stem conv 3x3 + BN;
3 stages of 5 cells (16, 32, 64 channels) with a residual reduction block between stages; BN,
ReLU, global average pool, linear. Cell ops: ``nor_conv_kxk`` = ReLU -> conv -> BN,
``avg_pool_3x3`` without padded taps, ``skip_connect``, ``none``. Node j sums its incoming edges.

Each edge picks its op with ``lax.switch`` on the traced op index, so the selection is data: one
compile serves all 15,625 cells. Run for one architecture (e.g. in a ``lax.map`` over a batch,
`Nb201Supernet.switches_ops`), only the chosen op of each edge is computed; under ``vmap`` the
switch becomes a select and every candidate runs. The ReLU that opens both conv ops of an edge
is applied before the switch, so activation proxies find it at the top level of the jaxpr. A
standalone network (`Nb201Net`) holds only the chosen ops.

References:
  Dong & Yang, "NAS-Bench-201", ICLR 2020; AutoDL-Projects ``xautodl/models/cell_infers``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nasx.nn.layers import BatchNorm, BatchNormContext, Conv, Dense, avg_pool, global_avg_pool, relu
from nasx.nn.stack import Stack
from nasx.space import Arch
from nasx.supernet import ArchView, Stats, name_batchnorms
from search_spaces.nb201.spec import CELLS_PER_STAGE, EDGES, OPS, STAGE_CHANNELS, Nb201Space

__all__ = ["Nb201Supernet", "Nb201Net"]


def _everything(n: int) -> np.ndarray:
    return np.arange(n)


class _ConvOp(nnx.Module):
    """ReLU -> conv -> BN. Modules take their parts, so `sliced` builds one from sliced parts."""

    def __init__(self, conv: Conv, bn: BatchNorm) -> None:
        self.conv, self.bn = conv, bn

    @staticmethod
    def create(c_in: int, c_out: int, kernel: int, stride: int = 1, *, rngs: nnx.Rngs) -> _ConvOp:
        return _ConvOp(Conv(c_in, c_out, kernel, stride=stride, rngs=rngs), BatchNorm(c_out))

    def __call__(
        self, x: jax.Array, ctx: BatchNormContext | None, bits: jax.Array | int | None = None
    ) -> jax.Array:
        return self.conv_bn(relu(x), ctx, bits)

    def conv_bn(
        self, activated: jax.Array, ctx: BatchNormContext | None, bits: jax.Array | int | None = None
    ) -> jax.Array:
        """The op after its ReLU: conv -> BN of the already activated input."""
        return self.bn(self.conv(activated, bits=bits), ctx=ctx)

    def sliced(self, stats: Stats, bits: int, rngs: nnx.Rngs) -> _ConvOp:
        c = self.conv
        conv = c.sliced(_everything(c.in_features), _everything(c.out_features), bits=bits, rngs=rngs)
        return _ConvOp(conv, self.bn.sliced(_everything(self.bn.num_features), stats[self.bn.key]))


class _Reduction(nnx.Module):
    """ResNet basic block, stride 2: ReLU-conv3x3-BN twice; shortcut avg-pool 2x2 + 1x1 conv."""

    def __init__(self, a: _ConvOp, b: _ConvOp, shortcut: Conv) -> None:
        self.a, self.b, self.shortcut = a, b, shortcut

    @staticmethod
    def create(c_in: int, *, rngs: nnx.Rngs) -> _Reduction:
        return _Reduction(
            _ConvOp.create(c_in, 2 * c_in, 3, stride=2, rngs=rngs),
            _ConvOp.create(2 * c_in, 2 * c_in, 3, rngs=rngs),
            Conv(c_in, 2 * c_in, 1, rngs=rngs),
        )

    def __call__(
        self, x: jax.Array, ctx: BatchNormContext | None, bits: jax.Array | int | None = None
    ) -> jax.Array:
        branch = self.b(self.a(x, ctx, bits), ctx, bits)
        return self.shortcut(avg_pool(x, 2, 2, padding="valid"), bits=bits) + branch

    def sliced(self, stats: Stats, bits: int, rngs: nnx.Rngs) -> _Reduction:
        c = self.shortcut
        shortcut = c.sliced(_everything(c.in_features), _everything(c.out_features), bits=bits, rngs=rngs)
        return _Reduction(self.a.sliced(stats, bits, rngs), self.b.sliced(stats, bits, rngs), shortcut)


def _apply_op(op: str, module: _ConvOp | None, x: jax.Array, ctx: BatchNormContext | None, bits) -> jax.Array:
    if op == "none":
        return jnp.zeros_like(x)
    if op == "skip_connect":
        return x
    if op == "avg_pool_3x3":
        return avg_pool(x, 3)
    return module(x, ctx, bits)


class _SuperCell(nnx.Module):
    """A cell whose 6 edges each hold a 1x1 and a 3x3 conv op (the parametric candidates)."""

    def __init__(self, channels: int, *, rngs: nnx.Rngs) -> None:
        self.conv1 = nnx.List([_ConvOp.create(channels, channels, 1, rngs=rngs) for _ in EDGES])
        self.conv3 = nnx.List([_ConvOp.create(channels, channels, 3, rngs=rngs) for _ in EDGES])

    def __call__(self, x: jax.Array, ops: list[jax.Array], ctx: BatchNormContext, bits) -> jax.Array:
        nodes = [x]
        for j in (1, 2, 3):
            terms = [self._edge(e, nodes[i], ops[e], ctx, bits) for e, (i, to) in enumerate(EDGES) if to == j]
            nodes.append(sum(terms[1:], terms[0]))
        return nodes[3]

    def _edge(self, e: int, src: jax.Array, op: jax.Array, ctx: BatchNormContext, bits) -> jax.Array:
        """Edge `e`'s chosen op (`op`, an index into `OPS`) of `src`, by ``lax.switch``.

        Batch-norm statistics cross the switch as outputs: each branch returns those of both conv
        ops of the edge, placeholders (mean 0, variance 1) for the op it does not run.
        """
        convs = {"nor_conv_1x1": self.conv1[e], "nor_conv_3x3": self.conv3[e]}
        activated = relu(src)
        placeholder = (jnp.zeros(src.shape[-1], src.dtype), jnp.ones(src.shape[-1], src.dtype))

        def branch(name: str):
            def run(src: jax.Array, activated: jax.Array) -> tuple[jax.Array, Stats]:
                local = BatchNormContext(ctx.given)
                y = (
                    convs[name].conv_bn(activated, local, bits)
                    if name in convs
                    else _apply_op(name, None, src, None, None)
                )
                if ctx.given is not None:
                    return y, {}
                return y, {m.bn.key: local.recorded.get(m.bn.key, placeholder) for m in convs.values()}

            return run

        y, recorded = jax.lax.switch(op, [branch(name) for name in OPS], src, activated)
        ctx.recorded.update(recorded)
        return y


class Nb201Supernet(nnx.Module):
    """Weight-sharing supernet of an `Nb201Space` (any of its variants, with or without bits)."""

    switches_ops = True
    """Edges select their op with ``lax.switch``: evaluate architectures one at a time (a
    ``lax.map``), not under ``vmap``, and only the chosen ops run (`nasx.proxies.make_proxy`)."""

    def __init__(self, space: Nb201Space, *, rngs: nnx.Rngs) -> None:
        self.space = space
        c0 = STAGE_CHANNELS[0]
        self.stem = Conv(3, c0, 3, rngs=rngs)
        self.stem_bn = BatchNorm(c0)
        self.reductions = nnx.List([_Reduction.create(c // 2, rngs=rngs) for c in STAGE_CHANNELS[1:]])
        # one Stack per stage: the 5 cells are compiled once (lax.scan), not unrolled
        self.stages = nnx.List(
            [Stack([_SuperCell(c, rngs=rngs) for _ in range(CELLS_PER_STAGE)]) for c in STAGE_CHANNELS]
        )
        self.head_bn = BatchNorm(STAGE_CHANNELS[-1])
        self.classifier = Dense(STAGE_CHANNELS[-1], space.num_classes, rngs=rngs)
        name_batchnorms(self)

    def __call__(self, x: jax.Array, arch: jax.Array, ctx: BatchNormContext) -> jax.Array:
        view = ArchView(self.space, arch)
        ops = [view.index(f"edge.{i}->{j}") for i, j in EDGES]
        x = self.stem_bn(self.stem(x, bits=view.bits("bits.stem")), ctx=ctx)
        for stage in range(len(STAGE_CHANNELS)):
            bits = view.bits(f"bits.s{stage + 1}")
            if stage > 0:
                x = self.reductions[stage - 1](x, ctx, bits)
            x = self.stages[stage].scan(lambda cell, h, c, _, bits=bits: cell(h, ops, c, bits), x, ctx)
        x = global_avg_pool(relu(self.head_bn(x, ctx=ctx)))
        return self.classifier(x, bits=view.bits("bits.head"))

    def extract(self, arch: Arch, stats: Stats) -> Nb201Net:
        """Standalone network of `arch` (validated first) with batch-norm statistics `stats`."""
        arch = self.space.validate(arch)
        return Nb201Net(self, arch, {k: (np.asarray(m), np.asarray(v)) for k, (m, v) in stats.items()})


class Nb201Net(nnx.Module):
    """A standalone NB201 network: only the chosen op on each edge, stored BN statistics."""

    def __init__(self, supernet: Nb201Supernet, arch: Arch, stats: Stats) -> None:
        rngs = nnx.Rngs(0)  # every weight is overwritten by the supernet's
        self.ops = tuple(arch[f"edge.{i}->{j}"] for i, j in EDGES)
        self.bits = tuple(arch.get(f"bits.{p}", 32) for p in ("stem", "s1", "s2", "s3", "head"))
        s = supernet
        self.stem = s.stem.sliced(
            _everything(3), _everything(s.stem.out_features), bits=self.bits[0], rngs=rngs
        )
        self.stem_bn = s.stem_bn.sliced(_everything(s.stem_bn.num_features), stats[s.stem_bn.key])
        self.reductions = nnx.List(
            [r.sliced(stats, self.bits[i + 2], rngs) for i, r in enumerate(s.reductions)]
        )
        edges = []
        for stage, stack in enumerate(s.stages):
            bits = self.bits[1 + stage]
            for n in range(len(stack)):
                cell, cell_stats = stack[n], stack.layer_stats(stats, n)
                row = []
                for e, op in enumerate(self.ops):
                    source = {"nor_conv_1x1": cell.conv1[e], "nor_conv_3x3": cell.conv3[e]}.get(op)
                    row.append(None if source is None else source.sliced(cell_stats, bits, rngs))
                edges.append(nnx.List(row))
        self.edges = nnx.List(edges)
        self.head_bn = s.head_bn.sliced(_everything(s.head_bn.num_features), stats[s.head_bn.key])
        c = s.classifier
        self.classifier = c.sliced(
            _everything(c.in_features), _everything(c.out_features), self.bits[4], rngs=rngs
        )

    def __call__(self, x: jax.Array, ctx: BatchNormContext | None = None) -> jax.Array:
        """Logits; batch norms use their stored statistics, or the batch's if `ctx` is given."""
        x = self.stem_bn(self.stem(x), ctx=ctx)
        for n, row in enumerate(self.edges):
            stage = n // CELLS_PER_STAGE
            if stage > 0 and n % CELLS_PER_STAGE == 0:
                x = self.reductions[stage - 1](x, ctx)
            nodes = [x]
            for j in (1, 2, 3):
                terms = [
                    _apply_op(op, row[e], nodes[i], ctx, None)
                    for e, ((i, to), op) in enumerate(zip(EDGES, self.ops, strict=True))
                    if to == j
                ]
                nodes.append(sum(terms[1:], terms[0]))
            x = nodes[3]
        return self.classifier(global_avg_pool(relu(self.head_bn(x, ctx=ctx))))
