"""NASNet supernet: every candidate op of every block input, on any N, F, wiring, concat and bits.

The network is exactly the one `search_spaces.nasnet` costs (TF-slim ``nets/nasnet``): stem, stem
cells, stacks of normal cells with reduction cells between them, ReLU, global average pool, FC.
One supernet holds the weights of the largest network of a `NasnetSpace` and runs any of its
architectures through one compile:

* ``N``: the supernet has ``max(depths)`` normal cells per stack; cell ``j`` of a stack runs only
  if ``j < N``. The pair ``(x, prev)`` of TF-slim's ``cell_outputs[-1], cell_outputs[-2]`` is
  carried through the cells and an inactive cell leaves both unchanged (``jnp.where``), so the
  next active cell reads what it reads in the network of that ``N``.
* ``F``: every width ``int(F * scale)`` is a prefix mask over its largest option, read from a
  table of the exact Python ``int()`` values the cost model uses.
* Block inputs and ops: a block input selects its state with ``jnp.where`` and runs every op of
  ``space.ops`` on it, then keeps the chosen one. In a reduction cell, ops on h0 / h1 have stride 2
  and ops on block outputs stride 1, so each block input has both kinds and selects one.
* Concat: a cell's output holds all ``B + 1`` candidate states (h1 and each block's output), each
  at its largest width; the channels of states not flagged are masked. The next cell's 1x1 convs
  read this non-prefix channel set through ``in_mask``; extraction gathers those positions.
* Choices that change the structure (h1 needs a 1x1 conv only if its channel count differs from
  F, an op on a state of F channels needs no projection, ...) are decided with data: both
  candidates are computed and one is selected.
* _Bits: every conv of a cell uses the bits of the cell's part (``bits.stem`` for conv0 and the
  stem cells, ``bits.stackK`` / ``bits.reduceK``), the FC uses ``bits.head``.

A state that reaches a block input is always a prefix of its tensor's channels: where the
network passes a tensor on without a conv (h1 = prev unchanged) or a factorized reduction
concatenates two halves, the supernet moves the active channels to the front (`_compact`), the
order the standalone network has them in.

`NasnetSupernet.extract` builds `NasnetNet`, a standalone network of exactly the architecture:
only the chosen inputs and ops, the cell-base parts some block or the concat reads, real widths.

References:
  Zoph, Vasudevan, Shlens & Le, "Learning Transferable Architectures for Scalable Image
  Recognition", CVPR 2018; network definition tensorflow/models ``research/slim/nets/nasnet``.
  Pham et al., "Efficient Neural Architecture Search via Parameter Sharing", ICML 2018 (weight
  sharing over a cell search space); Bender et al., "Understanding and Simplifying One-Shot
  Architecture Search", ICML 2018.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nasx.costs import out_size
from nasx.nn.layers import (
    BatchNorm,
    BatchNormContext,
    Conv,
    Dense,
    avg_pool,
    global_avg_pool,
    max_pool,
    prefix_mask,
    relu,
)
from nasx.space import Arch
from nasx.supernet import ArchView, Stats, name_batchnorms
from search_spaces.nasnet.spec import CELL_TYPES, CellSlot, NasnetSpace, schedule

__all__ = ["NasnetSupernet", "NasnetNet"]

_SEP = {"sep_conv_3x3": 3, "sep_conv_5x5": 5, "sep_conv_7x7": 7}
_POOL = {
    "avg_pool_3x3": (avg_pool, 3),
    "max_pool_3x3": (max_pool, 3),
    "max_pool_5x5": (max_pool, 5),
    "max_pool_7x7": (max_pool, 7),
}
_SPLIT = {"conv_1x3_3x1": 3, "conv_1x7_7x1": 7}
_CONV = {"conv_1x1": (1, 1), "conv_3x3": (3, 1), "dil_conv_3x3": (3, 2)}
"""Plain conv ops: kernel, dilation."""

_Bits = jax.Array | int | None


# --- masked tensors ------------------------------------------------------------------------------
class _Masked(NamedTuple):
    """An NHWC tensor of the supernet and the float mask of its active channels."""

    data: jax.Array
    mask: jax.Array


def _bcast(mask: jax.Array) -> jax.Array:
    return mask[None, None, None, :]


def _apply_mask(x: jax.Array, mask: jax.Array | None) -> jax.Array:
    return x if mask is None else x * _bcast(mask)


def _fit(x: jax.Array, n: int) -> jax.Array:
    """`x` with its last axis cut or zero-padded to `n`."""
    c = x.shape[-1]
    if c >= n:
        return x[..., :n]
    return jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, n - c)])


def _pad(t: _Masked, n: int) -> _Masked:
    if t.data.shape[-1] > n:
        raise AssertionError(f"tensor of {t.data.shape[-1]} channels does not fit {n}")
    return _Masked(_fit(t.data, n), _fit(t.mask, n))


def _select(cond: jax.Array, a: _Masked, b: _Masked) -> _Masked:
    """`a` where `cond` else `b`, both zero-padded to the wider of the two."""
    n = max(a.data.shape[-1], b.data.shape[-1])
    a, b = _pad(a, n), _pad(b, n)
    return _Masked(jnp.where(cond, a.data, b.data), jnp.where(cond, a.mask, b.mask))


def _count(mask: jax.Array) -> jax.Array:
    return jnp.sum(mask).astype(jnp.int32)


def _compact(x: jax.Array, mask: jax.Array) -> jax.Array:
    """The active channels of `x` moved to the front in their order, zeros after."""
    # a 0/1 matrix moving channel c to position (number of active channels before c): cheaper
    # to compile than a sort, and exact (each output is one input times 1 plus zeros)
    rank = jnp.cumsum(mask) - 1.0
    target = rank[:, None] == jnp.arange(mask.shape[0], dtype=jnp.float32)[None, :]
    move = mask[:, None] * target.astype(jnp.float32)
    return jnp.einsum("nhwc,cd->nhwd", x, move, precision=jax.lax.Precision.HIGHEST)


def _arange(n: int) -> np.ndarray:
    return np.arange(n)


# --- layers of a cell ----------------------------------------------------------------------------
class _ConvBn(nnx.Module):
    """[ReLU] -> conv(s) -> BN: the unit every op and cell-base part is made of.

    A depthwise conv keeps the mask of its input; any other conv maps onto `out_mask`.
    ``depthwise`` says which convs are depthwise (a depthwise conv of one channel is an
    ordinary one to `Conv`).
    """

    def __init__(
        self, convs: Sequence[Conv], bn: BatchNorm, use_relu: bool, depthwise: tuple[bool, ...] | None = None
    ) -> None:
        self.convs, self.bn, self.use_relu = nnx.List(convs), bn, use_relu
        self.depthwise = depthwise or (False,) * len(convs)

    @staticmethod
    def create(
        c_in: int,
        c_out: int,
        kernel: int,
        *,
        stride: int = 1,
        dilation: int = 1,
        use_relu: bool = True,
        rngs: nnx.Rngs,
    ) -> _ConvBn:
        conv = Conv(c_in, c_out, kernel, stride=stride, dilation=dilation, rngs=rngs)
        return _ConvBn([conv], BatchNorm(c_out), use_relu)

    @staticmethod
    def split(c_in: int, c_out: int, k: int, stride: int, *, rngs: nnx.Rngs) -> _ConvBn:
        """ReLU, conv 1xk (stride), conv kx1, BN."""
        convs = [Conv(c_in, c_out, (1, k), stride=stride, rngs=rngs), Conv(c_out, c_out, (k, 1), rngs=rngs)]
        return _ConvBn(convs, BatchNorm(c_out), True)

    @staticmethod
    def separable(c_in: int, c_out: int, k: int, stride: int, *, rngs: nnx.Rngs) -> _ConvBn:
        """ReLU, depthwise kxk (stride), pointwise 1x1, BN (TF-slim ``separable_conv2d``)."""
        depthwise = Conv(c_in, c_in, k, stride=stride, groups=c_in, rngs=rngs)
        return _ConvBn([depthwise, Conv(c_in, c_out, 1, rngs=rngs)], BatchNorm(c_out), True, (True, False))

    def __call__(
        self,
        x: jax.Array,
        ctx: BatchNormContext | None = None,
        *,
        in_mask: jax.Array | None = None,
        out_mask: jax.Array | None = None,
        bits: _Bits = None,
    ) -> jax.Array:
        y = relu(x) if self.use_relu else x
        mask = in_mask
        for conv, depthwise in zip(self.convs, self.depthwise, strict=True):
            if depthwise:
                y = _apply_mask(conv(y, bits=bits), mask)
            else:
                y = _apply_mask(conv(y, in_mask=mask, bits=bits), out_mask)
                mask = out_mask
        return _apply_mask(self.bn(y, ctx=ctx), mask)

    def sliced(
        self, in_index: np.ndarray, filters: int, stats: Stats, bits: int, *, rngs: nnx.Rngs
    ) -> _ConvBn:
        """Standalone unit reading channels `in_index`, writing `filters` channels."""
        index, out, convs = in_index, _arange(filters), []
        for conv, depthwise in zip(self.convs, self.depthwise, strict=True):
            if depthwise:
                convs.append(conv.sliced(index, index, bits=bits, rngs=rngs))
            else:
                convs.append(conv.sliced(index, out, bits=bits, rngs=rngs))
                index = out
        bn = self.bn.sliced(index, stats[self.bn.key])
        return _ConvBn(convs, bn, self.use_relu, self.depthwise)


class _Factorized(nnx.Module):
    """TF-slim's factorized reduction: two stride-2 1x1 convs to ``F // 2`` and ``F - F // 2``
    filters, the second on the input shifted by one pixel; concat; BN. With ReLU first in the
    cell base, without it in the concat (TF-slim ``_reduce_prev_layer`` / ``_combine_unused_states``).

    In the supernet the two halves are prefixes of their largest widths; the output is compacted
    to a prefix of F channels, the standalone layer's order.
    """

    def __init__(self, path1: Conv, path2: Conv, bn: BatchNorm, use_relu: bool) -> None:
        self.path1, self.path2, self.bn, self.use_relu = path1, path2, bn, use_relu

    @staticmethod
    def create(c_in: int, c_out: int, *, use_relu: bool, rngs: nnx.Rngs) -> _Factorized:
        half = c_out // 2
        return _Factorized(
            Conv(c_in, half, 1, stride=2, rngs=rngs),
            Conv(c_in, c_out - half, 1, stride=2, rngs=rngs),
            BatchNorm(c_out),
            use_relu,
        )

    def __call__(
        self,
        x: jax.Array,
        ctx: BatchNormContext | None = None,
        *,
        in_mask: jax.Array | None = None,
        filters: jax.Array | None = None,
        bits: _Bits = None,
    ) -> jax.Array:
        y = relu(x) if self.use_relu else x
        shifted = jnp.pad(y, ((0, 0), (0, 1), (0, 1), (0, 0)))[:, 1:, 1:, :]
        a = self.path1(y, in_mask=in_mask, bits=bits)
        b = self.path2(shifted, in_mask=in_mask, bits=bits)
        if filters is None:
            return self.bn(jnp.concatenate([a, b], axis=-1), ctx=ctx)
        half = filters // 2
        mask = jnp.concatenate(
            [prefix_mask(half, self.path1.out_features), prefix_mask(filters - half, self.path2.out_features)]
        )
        z = _apply_mask(jnp.concatenate([a, b], axis=-1), mask)
        return _compact(_apply_mask(self.bn(z, ctx=ctx), mask), mask)

    def sliced(
        self, in_index: np.ndarray, filters: int, stats: Stats, bits: int, *, rngs: nnx.Rngs
    ) -> _Factorized:
        half = filters // 2
        bn_index = np.concatenate([_arange(half), self.path1.out_features + _arange(filters - half)])
        return _Factorized(
            self.path1.sliced(in_index, _arange(half), bits=bits, rngs=rngs),
            self.path2.sliced(in_index, _arange(filters - half), bits=bits, rngs=rngs),
            self.bn.sliced(bn_index, stats[self.bn.key]),
            self.use_relu,
        )


class _Op(nnx.Module):
    """One NASNet op: an optional pool, then units (`_ConvBn`); see `search_spaces.nasnet`.

    ``optional``: the units run only if the input has other than F channels (pools; identity at
    stride 1). In the supernet that is data (`bypass`); a standalone op simply has no units then.
    """

    def __init__(self, name: str, stride: int, units: Sequence[_ConvBn], optional: bool) -> None:
        self.name, self.stride, self.units, self.optional = name, stride, nnx.List(units), optional

    @staticmethod
    def create(name: str, c_in: int, c_out: int, stride: int, *, rngs: nnx.Rngs) -> _Op:
        if name in _SEP:
            k = _SEP[name]
            first = _ConvBn.separable(c_in, c_out, k, stride, rngs=rngs)
            return _Op(name, stride, [first, _ConvBn.separable(c_out, c_out, k, 1, rngs=rngs)], False)
        if name in _POOL:
            return _Op(name, stride, [_ConvBn.create(c_in, c_out, 1, use_relu=False, rngs=rngs)], True)
        if name == "identity":
            return _Op(name, stride, [_ConvBn.create(c_in, c_out, 1, stride=stride, rngs=rngs)], stride == 1)
        if name in _SPLIT:
            return _Op(name, stride, [_ConvBn.split(c_in, c_out, _SPLIT[name], stride, rngs=rngs)], False)
        kernel, dilation = _CONV[name]
        unit = _ConvBn.create(c_in, c_out, kernel, stride=stride, dilation=dilation, rngs=rngs)
        return _Op(name, stride, [unit], False)

    def __call__(
        self,
        x: jax.Array,
        ctx: BatchNormContext | None = None,
        *,
        in_mask: jax.Array | None = None,
        out_mask: jax.Array | None = None,
        bypass: jax.Array | None = None,
        bits: _Bits = None,
    ) -> jax.Array:
        if self.name in _POOL:
            pool, size = _POOL[self.name]
            x = pool(x, size, self.stride)
        y, mask = x, in_mask
        for unit in self.units:
            y = unit(y, ctx, in_mask=mask, out_mask=out_mask, bits=bits)
            mask = out_mask
        if bypass is None:
            return y
        return jnp.where(bypass, _fit(x, y.shape[-1]), y)

    def sliced(
        self, in_index: np.ndarray, c_in: int, filters: int, stats: Stats, bits: int, *, rngs: nnx.Rngs
    ) -> _Op:
        units, index = [], in_index
        if not (self.optional and c_in == filters):
            for unit in self.units:
                units.append(unit.sliced(index, filters, stats, bits, rngs=rngs))
                index = _arange(filters)
        return _Op(self.name, self.stride, units, False)


class _OpSet(nnx.Module):
    """Every op of the space on one block input reading one group of states (one stride)."""

    def __init__(self, ops: Sequence[_Op], c_in: int) -> None:
        self.ops, self.c_in = nnx.List(ops), c_in

    def __call__(
        self,
        t: _Masked,
        op: jax.Array,
        ctx: BatchNormContext,
        filters: jax.Array,
        f_mask: jax.Array,
        bits: _Bits,
    ) -> jax.Array:
        same = _count(t.mask) == filters
        y = None
        for k, candidate in enumerate(self.ops):
            out = candidate(
                t.data,
                ctx,
                in_mask=t.mask,
                out_mask=f_mask,
                bypass=same if candidate.optional else None,
                bits=bits,
            )
            y = out if y is None else jnp.where(op == k, out, y)
        return y


# --- cells ---------------------------------------------------------------------------------------
def _groups(block: int, stride: int) -> tuple[tuple[tuple[int, ...], int], ...]:
    """The states block `block` may read, grouped by the stride ops on them have."""
    if stride == 1:
        return ((tuple(range(block + 1)), 1),)
    strided = ((0, 1), stride)
    return (strided, (tuple(range(2, block + 1)), 1)) if block >= 2 else (strided,)


class _CellChoice(NamedTuple):
    """A cell's choices as traced option indices: per block (in_a, op_a, in_b, op_b); flags."""

    blocks: tuple[tuple[jax.Array, jax.Array, jax.Array, jax.Array], ...]
    flags: tuple[jax.Array, ...]


def _read_cell(view: ArchView, cell: str, num_blocks: int) -> _CellChoice:
    blocks = tuple(
        tuple(view.index(f"{cell}.b{i}.{part}") for part in ("in_a", "op_a", "in_b", "op_b"))
        for i in range(1, num_blocks + 1)
    )
    return _CellChoice(blocks, tuple(view.flag(f"{cell}.out.{k}") for k in range(1, num_blocks + 2)))


class _SuperCell(nnx.Module):
    """A normal or reduction cell at its largest width, with every op on every block input.

    Args:
      space: the space (ops, number of blocks).
      reduction: a reduction cell (ops on h0 / h1 have stride 2).
      fmax: the largest F of this cell.
      c_x, c_p: channels of the tensors ``x`` and ``prev`` it reads (0: no prev).
      prev_larger: ``prev`` is spatially larger than ``x`` (h1 comes from a factorized reduction).
    """

    def __init__(
        self,
        space: NasnetSpace,
        reduction: bool,
        fmax: int,
        c_x: int,
        c_p: int,
        prev_larger: bool,
        *,
        rngs: nnx.Rngs,
    ) -> None:
        self.cell_type = CELL_TYPES[reduction]
        self.stride, self.fmax, self.prev_larger = 2 if reduction else 1, fmax, prev_larger
        self.c_x, self.c_p = c_x, c_p
        self.base = _ConvBn.create(c_x, fmax, 1, rngs=rngs)
        if not c_p:
            self.adjust = None
        elif prev_larger:
            self.adjust = _Factorized.create(c_p, fmax, use_relu=True, rngs=rngs)
        else:
            self.adjust = _ConvBn.create(c_p, fmax, 1, rngs=rngs)
        c_1 = fmax if c_p else c_x
        if reduction:
            self.cat_adjust = _Factorized.create(c_1, fmax, use_relu=False, rngs=rngs)
        elif not c_p:
            self.cat_adjust = _ConvBn.create(c_1, fmax, 1, use_relu=False, rngs=rngs)
        else:
            self.cat_adjust = None
        blocks = []
        for i in range(1, space.num_blocks + 1):
            sides = []
            for _ in ("a", "b"):
                groups = []
                for states, stride in _groups(i, self.stride):
                    c_in = max(fmax, c_1) if 1 in states else fmax
                    ops = [_Op.create(op, c_in, fmax, stride, rngs=rngs) for op in space.ops]
                    groups.append(_OpSet(ops, c_in))
                sides.append(nnx.List(groups))
            blocks.append(nnx.List(sides))
        self.blocks = nnx.List(blocks)

    def opset(self, block: int, side: int, state: int) -> _OpSet:
        """The op set of block `block` (1-based), input `side` (0 = a), reading `state`."""
        return self.blocks[block - 1][side][0 if self.stride == 1 or state < 2 else 1]

    def __call__(
        self,
        x: _Masked,
        prev: _Masked | None,
        choice: _CellChoice,
        ctx: BatchNormContext,
        filters: jax.Array,
        bits: _Bits,
    ) -> _Masked:
        f_mask = prefix_mask(filters, self.fmax)
        h0 = _Masked(self.base(x.data, ctx, in_mask=x.mask, out_mask=f_mask, bits=bits), f_mask)
        states = [h0, self._h1(x, prev, ctx, filters, f_mask, bits)]
        for i, (in_a, op_a, in_b, op_b) in enumerate(choice.blocks, start=1):
            a = self._input(i, 0, in_a, op_a, states, ctx, filters, f_mask, bits)
            b = self._input(i, 1, in_b, op_b, states, ctx, filters, f_mask, bits)
            states.append(_Masked(a + b, f_mask))
        return self._concat(states, choice.flags, ctx, filters, f_mask, bits)

    def _h1(self, x: _Masked, prev: _Masked | None, ctx, filters, f_mask, bits) -> _Masked:
        if prev is None:  # the first cell after the stem: h1 is x itself
            return x
        if self.prev_larger:
            return _Masked(self.adjust(prev.data, ctx, in_mask=prev.mask, filters=filters, bits=bits), f_mask)
        adjusted = self.adjust(prev.data, ctx, in_mask=prev.mask, out_mask=f_mask, bits=bits)
        unchanged = _apply_mask(_fit(_compact(prev.data, prev.mask), self.fmax), f_mask)
        return _Masked(jnp.where(_count(prev.mask) != filters, adjusted, unchanged), f_mask)

    def _input(self, block, side, source, op, states, ctx, filters, f_mask, bits) -> jax.Array:
        """One block input: select the state, run every op on it (per stride group), select."""
        y = None
        for g, (members, _) in enumerate(_groups(block, self.stride)):
            opset = self.blocks[block - 1][side][g]
            picked = None
            for k in members:
                t = _pad(states[k], opset.c_in)
                picked = t if picked is None else _select(source == k, t, picked)
            out = opset(picked, op, ctx, filters, f_mask, bits)
            y = out if y is None else jnp.where(source >= members[0], out, y)
        return y

    def _concat(self, states, flags, ctx, filters, f_mask, bits) -> _Masked:
        h1 = states[1]
        if self.cat_adjust is None:  # h1 already has F channels at the output size
            first = _fit(h1.data, self.fmax)
        elif self.stride == 2:
            first = self.cat_adjust(h1.data, ctx, in_mask=h1.mask, filters=filters, bits=bits)
        else:  # first cell after the stem: h1 is x, projected only if its channels differ from F
            adjusted = self.cat_adjust(h1.data, ctx, in_mask=h1.mask, out_mask=f_mask, bits=bits)
            unchanged = _apply_mask(_fit(h1.data, self.fmax), f_mask)
            first = jnp.where(_count(h1.mask) != filters, adjusted, unchanged)
        keep = [flag.astype(jnp.float32) for flag in flags]
        parts = [first] + [s.data for s in states[2:]]
        data = jnp.concatenate([p * k for p, k in zip(parts, keep, strict=True)], axis=-1)
        return _Masked(data, jnp.concatenate([f_mask * k for k in keep]))


# --- wiring --------------------------------------------------------------------------------------
_Role = tuple[str, int, int]
"""A cell's place: ("stem", i, 0), ("reduce", r, 0) or ("normal", stack, j)."""


def _roles(slots: Sequence[CellSlot]) -> tuple[_Role, ...]:
    out, stem, reduce, j = [], 0, 0, 0
    for slot in slots:
        if slot.reduction and slot.part == 0:
            out.append(("stem", stem, 0))
            stem += 1
        elif slot.reduction:
            reduce, j = reduce + 1, 0
            out.append(("reduce", reduce, 0))
        else:
            out.append(("normal", (slot.part - 1) // 2, j))
            j += 1
    return tuple(out)


_T = TypeVar("_T")


def _carry(
    roles: Sequence[_Role],
    skip_reduction_input: bool,
    stem: _T,
    run: Callable[[int, _T, _T | None], _T],
    merge: Callable[[int, _T, _T], _T],
) -> _T:
    """TF-slim's ``(cell_outputs[-1], cell_outputs[-2])`` through the supernet's cells.

    ``run(i, x, prev)`` runs cell i; ``merge(j, a, b)`` is `a` if normal cell j of its stack is
    active, else `b`. Normal cell 0 of a stack always runs (N >= 1). With
    ``skip_reduction_input``, the cell after a reduction reads the reduction's prev.
    """
    x, prev = stem, None
    for i, (kind, _, j) in enumerate(roles):
        out = run(i, x, prev)
        if kind == "normal" and j > 0:
            x, prev = merge(j, out, x), merge(j, x, prev)
        elif kind == "reduce" and skip_reduction_input:
            x = out
        else:
            x, prev = out, x
    return x


# --- the supernet --------------------------------------------------------------------------------
class NasnetSupernet(nnx.Module):
    """Weight-sharing supernet of any `NasnetSpace` (skeleton, ops, depths, filters, blocks, bits).

    Call it on images whose side leaves every reduction cell an input of at least 2 px (the cost
    model's structure: each reduction halves the side); `extract` builds the standalone network.
    """

    switches_ops = False  # masks select the active parts: architectures vmap

    def __init__(self, space: NasnetSpace, *, rngs: nnx.Rngs) -> None:
        self.space = space
        skeleton = space.skeleton
        slots = schedule(skeleton, max(space.depths))
        self.roles = _roles(slots)
        self.cell_filters = tuple(tuple(int(f * s.scale) for f in space.filters) for s in slots)
        self.cell_parts = tuple(space.bit_parts[s.part] for s in slots)
        m = skeleton.stem_multiplier
        if skeleton.stem == "imagenet":
            self.stem_widths = (int(32 * m),) * len(space.filters)
            stride, padding = 2, "valid"
        else:
            self.stem_widths = tuple(int(f * m) for f in space.filters)
            stride, padding = 1, "same"
        c_stem = max(self.stem_widths)
        self.stem = Conv(3, c_stem, 3, stride=stride, padding=padding, rngs=rngs)
        self.stem_bn = BatchNorm(c_stem)

        cells = []

        def build(i: int, x: tuple[int, int], prev: tuple[int, int] | None) -> tuple[int, int]:
            """Cell i from the (channels, reductions so far) of its inputs."""
            fmax, reduction = max(self.cell_filters[i]), slots[i].reduction
            c_p, larger = (0, False) if prev is None else (prev[0], prev[1] < x[1])
            cells.append(_SuperCell(space, reduction, fmax, x[0], c_p, larger, rngs=rngs))
            return (space.num_blocks + 1) * fmax, x[1] + reduction

        def widest(j: int, a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
            del j
            return max(a[0], b[0]), a[1]

        last = _carry(self.roles, skeleton.skip_reduction_layer_input, (c_stem, 0), build, widest)
        self.cells = nnx.List(cells)
        self.head = Dense(last[0], space.num_classes, rngs=rngs)
        name_batchnorms(self)

    def check_input_size(self, size: int) -> None:
        """Raise if an input of `size` px would give a reduction cell an input under 2 px."""
        skeleton = self.space.skeleton
        side = out_size(size, 3, 2, "valid") if skeleton.stem == "imagenet" else size
        n_red = sum(role[0] != "normal" for role in self.roles)
        for _ in range(n_red):
            if side < 2:
                raise ValueError(
                    f"nasnet supernet: {size} px inputs leave a reduction cell a {side} px input; "
                    "every reduction needs at least 2 px"
                )
            side = -(-side // 2)

    def __call__(self, x: jax.Array, arch: jax.Array, ctx: BatchNormContext) -> jax.Array:
        self.check_input_size(x.shape[1])
        view = ArchView(self.space, arch)
        f_index, n = view.index("F"), view.value("N")
        stem_mask = prefix_mask(jnp.asarray(self.stem_widths, jnp.int32)[f_index], self.stem.out_features)
        y = _apply_mask(self.stem(x, bits=view.bits("bits.stem")), stem_mask)
        stem = _Masked(_apply_mask(self.stem_bn(y, ctx=ctx), stem_mask), stem_mask)
        choices = {cell: _read_cell(view, cell, self.space.num_blocks) for cell in CELL_TYPES}

        def run(i: int, xt: _Masked, pt: _Masked | None) -> _Masked:
            cell = self.cells[i]
            filters = jnp.asarray(self.cell_filters[i], jnp.int32)[f_index]
            prev = None if pt is None else _pad(pt, cell.c_p)
            bits = view.bits(f"bits.{self.cell_parts[i]}")
            return cell(_pad(xt, cell.c_x), prev, choices[cell.cell_type], ctx, filters, bits)

        def merge(j: int, a: _Masked, b: _Masked) -> _Masked:
            return _select(n > j, a, b)

        last = _carry(self.roles, self.space.skeleton.skip_reduction_layer_input, stem, run, merge)
        last = _pad(last, self.head.in_features)
        return self.head(global_avg_pool(relu(last.data)), in_mask=last.mask, bits=view.bits("bits.head"))

    def extract(self, arch: Arch, stats: Stats) -> NasnetNet:
        """Standalone network of `arch` (validated first) with batch-norm statistics `stats`."""
        return NasnetNet(self, self.space.validate(arch), stats)  # reads only the statistics it uses


# --- the standalone network ----------------------------------------------------------------------
class _Tensor(NamedTuple):
    """A tensor of the standalone network: where its channels sit in the supernet's, and its
    number of reductions so far (which tensors are spatially larger)."""

    positions: np.ndarray
    level: int


class _Cell(nnx.Module):
    """A standalone cell: only the parts its blocks and its concat read."""

    def __init__(
        self,
        base: _ConvBn | None,
        adjust: _ConvBn | _Factorized | None,
        ops: Sequence[_Op],
        cat_adjust: _ConvBn | _Factorized | None,
        inputs: tuple[tuple[int, int], ...],
        concat: tuple[int, ...],
    ) -> None:
        self.base, self.adjust, self.ops, self.cat_adjust = base, adjust, nnx.List(ops), cat_adjust
        self.inputs, self.concat = inputs, concat

    def __call__(
        self, x: jax.Array, prev: jax.Array | None, ctx: BatchNormContext | None = None
    ) -> jax.Array:
        h1 = x if prev is None else (prev if self.adjust is None else self.adjust(prev, ctx))
        states = [None if self.base is None else self.base(x, ctx), h1]
        for i, (a, b) in enumerate(self.inputs):
            states.append(self.ops[2 * i](states[a], ctx) + self.ops[2 * i + 1](states[b], ctx))
        outs = [
            self.cat_adjust(h1, ctx) if k == 1 and self.cat_adjust is not None else states[k]
            for k in self.concat
        ]
        return jnp.concatenate(outs, axis=-1)


def _extract_cell(
    cell: _SuperCell,
    space: NasnetSpace,
    arch: Arch,
    filters: int,
    x: _Tensor,
    prev: _Tensor | None,
    stats: Stats,
    bits: int,
    rngs: nnx.Rngs,
) -> tuple[_Cell, np.ndarray]:
    """The standalone cell of `arch` and the supernet positions of its output channels."""
    name, n_blocks = cell.cell_type, space.num_blocks
    blocks = [
        tuple(arch[f"{name}.b{i}.{p}"] for p in ("in_a", "op_a", "in_b", "op_b"))
        for i in range(1, n_blocks + 1)
    ]
    concat = tuple(k for k in range(1, n_blocks + 2) if arch[f"{name}.out.{k}"])
    reads = {s for b in blocks for s in (b[0], b[2])}
    f_index = _arange(filters)
    base = cell.base.sliced(x.positions, filters, stats, bits, rngs=rngs) if 0 in reads else None
    adjust = None
    if prev is None:
        h1 = x.positions
    else:
        h1 = f_index
        if (1 in reads or 1 in concat) and (prev.level < x.level or len(prev.positions) != filters):
            adjust = cell.adjust.sliced(prev.positions, filters, stats, bits, rngs=rngs)
    ops = []
    for i, (in_a, op_a, in_b, op_b) in enumerate(blocks, start=1):
        for side, (state, op) in enumerate(((in_a, op_a), (in_b, op_b))):
            index = h1 if state == 1 else f_index
            source = cell.opset(i, side, state).ops[space.ops.index(op)]
            ops.append(source.sliced(index, len(index), filters, stats, bits, rngs=rngs))
    cat_adjust = None
    if 1 in concat and (cell.stride == 2 or len(h1) != filters):
        cat_adjust = cell.cat_adjust.sliced(h1, filters, stats, bits, rngs=rngs)
    inputs = tuple((b[0], b[2]) for b in blocks)
    positions = np.concatenate([(k - 1) * cell.fmax + f_index for k in concat])
    return _Cell(base, adjust, ops, cat_adjust, inputs, concat), positions


class NasnetNet(nnx.Module):
    """A standalone NASNet of one architecture: chosen ops only, real widths, stored BN statistics.

    Built by `NasnetSupernet.extract` from TF-slim's wiring for the architecture's N
    (`search_spaces.nasnet.schedule`); its parameter count is the cost model's.
    """

    def __init__(self, supernet: NasnetSupernet, arch: Arch, stats: Stats) -> None:
        rngs = nnx.Rngs(0)  # every weight is overwritten by the supernet's
        space = supernet.space
        f_option = space.filters.index(arch["F"])
        bits = {p: arch.get(f"bits.{p}", 32) for p in space.bit_parts}
        c_stem = supernet.stem_widths[f_option]
        s = supernet
        self.stem = s.stem.sliced(_arange(3), _arange(c_stem), bits=bits["stem"], rngs=rngs)
        self.stem_bn = s.stem_bn.sliced(_arange(c_stem), stats[s.stem_bn.key])
        slots = schedule(space.skeleton, arch["N"])
        where = {role: i for i, role in enumerate(s.roles)}
        tensors: list[_Tensor | None] = [None, _Tensor(_arange(c_stem), 0)]
        cells = []
        for slot, role in zip(slots, _roles(slots), strict=True):
            k = where[role]
            x, prev = tensors[slot.x], tensors[slot.prev] if slot.prev else None
            filters = s.cell_filters[k][f_option]
            cell, positions = _extract_cell(
                s.cells[k], space, arch, filters, x, prev, stats, bits[s.cell_parts[k]], rngs
            )
            cells.append(cell)
            tensors.append(_Tensor(positions, x.level + slot.reduction))
        self.cells = nnx.List(cells)
        self.wiring = tuple((slot.x, slot.prev) for slot in slots)
        head = s.head
        self.head = head.sliced(tensors[-1].positions, _arange(head.out_features), bits["head"], rngs=rngs)

    def __call__(self, x: jax.Array, ctx: BatchNormContext | None = None) -> jax.Array:
        """Logits; batch norm uses the stored statistics, or per `ctx` (e.g. the batch's)."""
        tensors = [None, self.stem_bn(self.stem(x), ctx=ctx)]
        for cell, (i, p) in zip(self.cells, self.wiring, strict=True):
            tensors.append(cell(tensors[i], tensors[p] if p else None, ctx))
        return self.head(global_avg_pool(relu(tensors[-1])))
