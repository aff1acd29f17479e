"""ResNet supernet: one set of weights for every architecture of a `ResNetSpace` skeleton.

Structure exactly as `search_spaces.resnet` costs it. Stem: conv (the skeleton's kernel and stride)
+ BN + ReLU, then a 3x3 stride-2 max pool on torchvision skeletons. Stages of residual blocks:

* bottleneck: 1x1 in->btn, k x k btn->btn (the stage's stride), 1x1 btn->out, BN after each conv,
  ReLU after the first two and after the residual add;
* basic: k x k in->out (stride), k x k out->out, BN after each, ReLU after the first and the add.

Shortcuts: ``"deepmad"`` gives every stage's first block a projection (2x2 average pool when
strided, then 1x1 conv + BN; TinyNAS ``force_resproj``); ``"torchvision"`` projects (strided 1x1
conv + BN) only where the block changes the shape. Every other block has an identity shortcut.
Head: global average pool, FC with bias. Weight bits: ``bits.stem`` for the stem conv,
``s{i}.bits`` for every conv of stage i (projections included), ``bits.head`` for the FC.

Elasticity (one compile for the whole space): stem and stage widths and bottleneck widths are
nested channel prefixes, the kernel is the centre of the largest kernel, depth gates blocks
2..Lmax of a stage (the first block always runs), and a torchvision projection whose need depends
on the chosen widths is computed next to the identity and selected with ``jnp.where`` (the
identity is zero-padded or cut to the output's largest width; its inactive channels are zero).
`ResNetSupernet.extract` slices the weights into a standalone `ResNet` of exactly one
architecture, whose parameter count is the space's analytic `Costs.params`.

References:
  He et al., "Deep Residual Learning for Image Recognition", CVPR 2016 (torchvision ResNet).
  Shen et al., "DeepMAD: Mathematical Architecture Design for Deep Convolutional Neural
  Network", CVPR 2023; TinyNAS ``super_res_k1kxk1.py`` (bottleneck, forced projection).
  Cai et al., "Once-for-All", ICLR 2020 (elastic width, kernel and depth).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nasx.nn.conv_bn import ConvBN
from nasx.nn.layers import (
    BatchNormContext,
    Dense,
    global_avg_pool,
    max_pool,
    prefix_mask,
    relu,
)
from nasx.space import Arch
from nasx.supernet import ArchView, Stats, name_batchnorms
from search_spaces.resnet.spec import ResNetSpace, basic_costs, bottleneck_costs

__all__ = ["ResNetSupernet", "ResNet", "supernet_params", "MAX_PARAMS"]

MAX_PARAMS = 200_000_000
"""Default limit on a supernet's parameters (800 MB of float32 weights)."""

_ALWAYS, _NEVER, _SELECT = "always", "never", "select"


def _avg_pool_2x2(x: jax.Array) -> jax.Array:
    """2x2 stride-2 average pool in ceil mode: an odd trailing row/column averages its in-image taps.

    On even sides (every published skeleton) this is TinyNAS's ``AvgPool2d(2, 2)``; on odd sides it
    keeps the shortcut the size of the main path (``ceil(n / 2)``, as the cost model counts it).
    """
    h, w = x.shape[1:3]
    window, pads = (1, 2, 2, 1), ((0, 0), (0, h % 2), (0, w % 2), (0, 0))
    total = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, window, pads)
    ones = jnp.ones((1, h, w, 1), x.dtype)
    return total / jax.lax.reduce_window(ones, 0.0, jax.lax.add, window, window, pads)


def _fit(x: jax.Array, channels: int) -> jax.Array:
    """`x` cut or zero-padded to `channels` channels (an identity shortcut between max widths)."""
    have = x.shape[-1]
    if have >= channels:
        return x[..., :channels]
    return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, channels - have)))


def _first(n: int) -> np.ndarray:
    return np.arange(n)


# --- the static shape of a supernet -------------------------------------------------------------
@dataclass(frozen=True)
class _Plan:
    """Largest widths and depths of a skeleton, and where projections exist (all static)."""

    stem: int
    width: int
    btn: int
    kernel: int
    depths: tuple[int, ...]
    """Largest depth of each stage."""
    shortcuts: tuple[str, ...]
    """Per stage, whether its first block projects: always, never or selected by the widths."""

    @staticmethod
    def of(space: ResNetSpace) -> _Plan:
        sk = space.skeleton
        depths = []
        for i in range(space.num_stages):
            allowed = sk.depths
            if i == 0 and sk.first_depth_max is not None:
                allowed = tuple(d for d in allowed if d <= sk.first_depth_max)
            depths.append(allowed[-1])
        shortcuts = []
        for i, stride in enumerate(sk.strides):
            inputs = set(sk.stem_widths if i == 0 else sk.widths)
            if sk.shortcut == "deepmad" or stride != 1 or not inputs & set(sk.widths):
                shortcuts.append(_ALWAYS)
            elif len(inputs) == len(sk.widths) == 1:  # the same single width in and out
                shortcuts.append(_NEVER)
            else:
                shortcuts.append(_SELECT)
        btn = max((b for b in sk.btns if b <= sk.widths[-1]), default=0)
        return _Plan(sk.stem_widths[-1], sk.widths[-1], btn, sk.kernels[-1], tuple(depths), tuple(shortcuts))


def supernet_params(space: ResNetSpace) -> int:
    """Parameters of `ResNetSupernet(space)`, counted before building it (from the cost model).

    Each stage holds its largest first block (from the largest input width, with a projection
    unless none can ever be needed) and ``Lmax - 1`` largest inner blocks.
    """
    sk, plan = space.skeleton, _Plan.of(space)

    def block(c_in: int, stride: int, projection: bool) -> int:
        args = (plan.kernel, stride, 1, 32, projection, sk.shortcut)
        if sk.block == "bottleneck":
            return bottleneck_costs(c_in, plan.width, plan.btn, *args).params
        return basic_costs(c_in, plan.width, *args).params

    total = 3 * plan.stem * sk.stem_kernel**2 + 2 * plan.stem
    c_in = plan.stem
    for stride, depth, shortcut in zip(sk.strides, plan.depths, plan.shortcuts, strict=True):
        total += block(c_in, stride, shortcut != _NEVER) + (depth - 1) * block(plan.width, 1, False)
        c_in = plan.width
    return total + plan.width * sk.num_classes + sk.num_classes


# --- modules ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Widths:
    """Channel masks of one block (None: all channels, in a standalone block)."""

    inputs: jax.Array | None = None
    btn: jax.Array | None = None
    out: jax.Array | None = None


class _Block(nnx.Module):
    """A residual block (bottleneck or basic) with an optional projection shortcut.

    Attributes:
      convs: the main path, 3 (bottleneck) or 2 (basic) `ConvBN`.
      projection: the 1x1 conv + BN shortcut, or None for identity.
      pool: whether the projection runs on a 2x2 average pool of the input (deepmad, strided).
    """

    def __init__(self, convs: nnx.List, projection: ConvBN | None, pool: bool) -> None:
        self.convs, self.projection, self.pool = convs, projection, pool

    @staticmethod
    def create(
        block: str,
        c_in: int,
        c_out: int,
        btn: int,
        kernel: int,
        stride: int,
        *,
        projection: bool,
        shortcut: str,
        rngs: nnx.Rngs,
    ) -> _Block:
        if block == "bottleneck":
            convs = [
                ConvBN.create(c_in, btn, 1, rngs=rngs),
                ConvBN.create(btn, btn, kernel, stride=stride, rngs=rngs),
                ConvBN.create(btn, c_out, 1, rngs=rngs),
            ]
        else:
            convs = [
                ConvBN.create(c_in, c_out, kernel, stride=stride, rngs=rngs),
                ConvBN.create(c_out, c_out, kernel, rngs=rngs),
            ]
        pool = shortcut == "deepmad" and stride != 1
        proj = None
        if projection:  # deepmad pools first; torchvision strides the 1x1 conv
            proj = ConvBN.create(c_in, c_out, 1, stride=1 if pool else stride, rngs=rngs)
        return _Block(nnx.List(convs), proj, pool)

    def __call__(
        self,
        x: jax.Array,
        ctx: BatchNormContext | None,
        widths: _Widths | None = None,
        *,
        kernel: jax.Array | None = None,
        bits: jax.Array | int | None = None,
        project: jax.Array | None = None,
    ) -> jax.Array:
        """`project` (traced bool) selects projection vs identity; None: the block's own kind."""
        w = widths or _Widths()
        if len(self.convs) == 3:
            c1, c2, c3 = self.convs
            h = relu(c1(x, ctx, in_mask=w.inputs, out_mask=w.btn, bits=bits))
            h = relu(c2(h, ctx, in_mask=w.btn, out_mask=w.btn, kernel_size=kernel, bits=bits))
            h = c3(h, ctx, in_mask=w.btn, out_mask=w.out, bits=bits)
        else:
            c1, c2 = self.convs
            h = relu(c1(x, ctx, in_mask=w.inputs, out_mask=w.out, kernel_size=kernel, bits=bits))
            h = c2(h, ctx, in_mask=w.out, out_mask=w.out, kernel_size=kernel, bits=bits)
        if self.projection is None:
            shortcut = _fit(x, h.shape[-1])
        else:
            pooled = _avg_pool_2x2(x) if self.pool else x
            shortcut = self.projection(pooled, ctx, in_mask=w.inputs, out_mask=w.out, bits=bits)
            if project is not None:
                shortcut = jnp.where(project, shortcut, _fit(x, h.shape[-1]))
        return relu(h + shortcut)

    def sliced(
        self,
        in_index: np.ndarray,
        btn_index: np.ndarray,
        out_index: np.ndarray,
        kernel: int,
        bits: int,
        stats: Stats,
        *,
        project: bool,
        rngs: nnx.Rngs,
    ) -> _Block:
        if len(self.convs) == 3:
            c1, c2, c3 = self.convs
            convs = [
                c1.sliced(in_index, btn_index, stats, bits=bits, rngs=rngs),
                c2.sliced(btn_index, btn_index, stats, kernel_size=kernel, bits=bits, rngs=rngs),
                c3.sliced(btn_index, out_index, stats, bits=bits, rngs=rngs),
            ]
        else:
            c1, c2 = self.convs
            convs = [
                c1.sliced(in_index, out_index, stats, kernel_size=kernel, bits=bits, rngs=rngs),
                c2.sliced(out_index, out_index, stats, kernel_size=kernel, bits=bits, rngs=rngs),
            ]
        proj = None
        if project:
            proj = self.projection.sliced(in_index, out_index, stats, bits=bits, rngs=rngs)
        return _Block(nnx.List(convs), proj, self.pool)


class ResNetSupernet(nnx.Module):
    """Weight-sharing supernet of a `ResNetSpace` (any skeleton; DeepMAD or torchvision).

    Args:
      space: the space; its skeleton fixes the largest widths, kernel and depths.
      rngs: weight initialisation.
      max_params: refuse (``ValueError``, before allocating) to build a larger supernet. A
        full-size DeepMAD or torchvision grid (widths up to 2048, up to 16 or 36 blocks per stage)
        needs billions; search those on a `Skeleton` with a smaller grid.
    """

    switches_ops = False  # masks select the active parts: architectures vmap

    def __init__(self, space: ResNetSpace, *, rngs: nnx.Rngs, max_params: int = MAX_PARAMS) -> None:
        n_params = supernet_params(space)
        if n_params > max_params:
            raise ValueError(
                f'resnet supernet of skeleton "{space.variant}" would hold {n_params:,} parameters, '
                f"more than max_params={max_params:,}; use a Skeleton with a smaller grid (narrower "
                "widths and bottlenecks, fewer depths) or raise max_params"
            )
        sk, plan = space.skeleton, _Plan.of(space)
        self.space, self.plan = space, plan
        self.stem = ConvBN.create(3, plan.stem, sk.stem_kernel, stride=sk.stem_stride, rngs=rngs)
        stages, c_in = [], plan.stem
        for stride, depth, shortcut in zip(sk.strides, plan.depths, plan.shortcuts, strict=True):
            blocks = [
                _Block.create(
                    sk.block,
                    c_in if d == 0 else plan.width,
                    plan.width,
                    plan.btn,
                    plan.kernel,
                    stride if d == 0 else 1,
                    projection=d == 0 and shortcut != _NEVER,
                    shortcut=sk.shortcut,
                    rngs=rngs,
                )
                for d in range(depth)
            ]
            stages.append(nnx.List(blocks))
            c_in = plan.width
        self.stages = nnx.List(stages)
        self.classifier = Dense(plan.width, sk.num_classes, rngs=rngs)
        name_batchnorms(self)

    def __call__(self, x: jax.Array, arch: jax.Array, ctx: BatchNormContext) -> jax.Array:
        sk, plan, view = self.space.skeleton, self.plan, ArchView(self.space, arch)
        c_in = view.value("stem.width")
        in_mask = prefix_mask(c_in, plan.stem)
        x = relu(self.stem(x, ctx, out_mask=in_mask, bits=view.bits("bits.stem")))
        if sk.stem_maxpool:
            x = max_pool(x, 3, 2)
        for i, (stage, shortcut) in enumerate(zip(self.stages, plan.shortcuts, strict=True), start=1):
            c_out = view.value(f"s{i}.width")
            btn = prefix_mask(view.value(f"s{i}.btn"), plan.btn) if sk.block == "bottleneck" else None
            out_mask = prefix_mask(c_out, plan.width)
            kernel = view.value(f"s{i}.kernel") if len(sk.kernels) > 1 else None
            depth, bits = view.value(f"s{i}.depth"), view.bits(f"s{i}.bits")
            project = c_in != c_out if shortcut == _SELECT else None
            x = stage[0](x, ctx, _Widths(in_mask, btn, out_mask), kernel=kernel, bits=bits, project=project)
            inner = _Widths(out_mask, btn, out_mask)
            for d, block in enumerate(stage[1:], start=1):
                x = jnp.where(depth > d, block(x, ctx, inner, kernel=kernel, bits=bits), x)
            c_in, in_mask = c_out, out_mask
        return self.classifier(global_avg_pool(x), in_mask=in_mask, bits=view.bits("bits.head"))

    def extract(self, arch: Arch, stats: Stats) -> ResNet:
        """Standalone `ResNet` of `arch` (validated first) with batch-norm statistics `stats`."""
        arch = self.space.validate(arch)
        stats = {k: (np.asarray(m), np.asarray(v)) for k, (m, v) in stats.items()}
        sk, rngs = self.space.skeleton, nnx.Rngs(0)  # every weight is overwritten by the supernet's
        c_in = arch["stem.width"]
        stem = self.stem.sliced(_first(3), _first(c_in), stats, bits=arch.get("bits.stem", 32), rngs=rngs)
        stages = []
        for i, (stage, stride) in enumerate(zip(self.stages, sk.strides, strict=True), start=1):
            c_out, kernel, bits = arch[f"s{i}.width"], arch[f"s{i}.kernel"], arch.get(f"s{i}.bits", 32)
            btn = _first(arch.get(f"s{i}.btn", 0))
            project = sk.shortcut == "deepmad" or stride != 1 or c_in != c_out
            blocks = [
                stage[0].sliced(
                    _first(c_in), btn, _first(c_out), kernel, bits, stats, project=project, rngs=rngs
                )
            ]
            blocks += [
                block.sliced(_first(c_out), btn, _first(c_out), kernel, bits, stats, project=False, rngs=rngs)
                for block in stage[1 : arch[f"s{i}.depth"]]
            ]
            stages.append(nnx.List(blocks))
            c_in = c_out
        c = self.classifier
        classifier = c.sliced(_first(c_in), _first(c.out_features), arch.get("bits.head", 32), rngs=rngs)
        return ResNet(stem, nnx.List(stages), classifier, maxpool=sk.stem_maxpool)


class ResNet(nnx.Module):
    """A standalone ResNet of one architecture, with stored batch-norm statistics; ``model(x)``."""

    def __init__(self, stem: ConvBN, stages: nnx.List, classifier: Dense, *, maxpool: bool) -> None:
        self.stem, self.stages, self.classifier, self.maxpool = stem, stages, classifier, maxpool

    def __call__(self, x: jax.Array, ctx: BatchNormContext | None = None) -> jax.Array:
        """Logits; batch norm uses the stored statistics, or per `ctx` (e.g. the batch's)."""
        x = relu(self.stem(x, ctx))
        if self.maxpool:
            x = max_pool(x, 3, 2)
        for stage in self.stages:
            for block in stage:
                x = block(x, ctx)
        return self.classifier(global_avg_pool(x))
