"""MobileNet (MBConv, Once-for-All) supernet: elastic depth, kernel, expansion, SE and bits.

Structure exactly as `search_spaces.mobilenet` costs it, on any skeleton and width multiplier
(`MobileNetSpace.scaled`): stem 3x3 conv + BN + act; the fixed first block (MBConv, expansion 1,
kernel 3); every searchable stage holds its largest depth of MBConv blocks; head = 1x1 conv + BN +
act, global average pool, optional feature mix (1x1 conv on the pooled vector, no BN, act) and the
classifier. An MBConv block is 1x1 expansion + BN + act (absent at expansion 1), depthwise
``k x k`` conv + BN + act, squeeze-excitation if the stage has SE, 1x1 projection + BN, and an
identity shortcut exactly where the cost model has one (stride 1 and equal widths).

Elastic dimensions, all data inside one compiled function (OFA): a block holds the largest
kernel (centre-cropped to the chosen one) and ``c_in * max(expands)`` mid channels (the chosen
``c_in * expand`` are a prefix); the SE squeeze width is the cost model's `squeeze_width` of the
chosen mid, as a prefix of the largest; blocks past a stage's depth are identities
(``jnp.where``); each block's weights are fake-quantized at its ``s{s}.b{j}.bits``, the stem and
first block at ``bits.stem``, the head at ``bits.head``. The ``resolution`` choice is a deployment
choice: the supernet runs on whatever input it is given. `MobileNetNet` is the standalone network
of one architecture, sliced from the supernet.

References:
  Cai et al., "Once-for-All: Train One Network and Specialize it for Efficient Deployment",
  ICLR 2020 (mit-han-lab/once-for-all ``ofa/imagenet_classification/elastic_nn``).
  Sandler et al., "MobileNetV2", CVPR 2018. Howard et al., "Searching for MobileNetV3", ICCV 2019.
  Tan & Le, "EfficientNet", ICML 2019 (swish / sigmoid squeeze-excitation).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nasx.nn.conv_bn import ConvBN
from nasx.nn.layers import (
    ACTIVATIONS,
    BatchNormContext,
    Dense,
    global_avg_pool,
    hard_sigmoid,
    prefix_mask,
)
from nasx.space import Arch
from nasx.supernet import ArchView, Stats, name_batchnorms
from search_spaces.mobilenet.spec import MobileNetSpace, squeeze_width

__all__ = ["MobileNetSupernet", "MobileNetNet"]

Bits = jax.Array | int | None


def _everything(n: int) -> np.ndarray:
    return np.arange(n)


def _act(name: str | None, x: jax.Array) -> jax.Array:
    return x if name is None else ACTIVATIONS[name](x)


class _SqueezeExcite(nnx.Module):
    """Squeeze-excitation with the skeleton's activations: pool, reduce + act, expand + gate.

    ``"mid"`` squeeze rule (MobileNetV3, OFA): ReLU and hard-sigmoid; ``"input"`` (EfficientNet):
    swish and sigmoid. The 1x1 convs act on the pooled vector, so they are `Dense` layers.
    """

    def __init__(self, reduce: Dense, expand: Dense, rule: str) -> None:
        self.reduce, self.expand, self.rule = reduce, expand, rule

    @staticmethod
    def create(channels: int, squeeze: int, rule: str, *, rngs: nnx.Rngs) -> _SqueezeExcite:
        return _SqueezeExcite(Dense(channels, squeeze, rngs=rngs), Dense(squeeze, channels, rngs=rngs), rule)

    def __call__(
        self,
        x: jax.Array,
        *,
        mask: jax.Array | None = None,
        squeeze_mask: jax.Array | None = None,
        on: jax.Array | None = None,
        bits: Bits = None,
    ) -> jax.Array:
        """`x` rescaled per channel; where `on` is False, `x` itself (a gate of 1)."""
        act, gate = ("relu", hard_sigmoid) if self.rule == "mid" else ("swish", jax.nn.sigmoid)
        s = _act(act, self.reduce(global_avg_pool(x), in_mask=mask, out_mask=squeeze_mask, bits=bits))
        g = gate(self.expand(s, in_mask=squeeze_mask, out_mask=mask, bits=bits))
        if on is not None:  # select on the (batch, channels) gate, not on the feature map
            g = jnp.where(on, g, 1.0)
        return x * g[:, None, None, :]  # inactive channels of x are 0, whatever their gate

    def sliced(self, channels: int, squeeze: int, bits: int, *, rngs: nnx.Rngs) -> _SqueezeExcite:
        c, s = _everything(channels), _everything(squeeze)
        return _SqueezeExcite(
            self.reduce.sliced(c, s, bits, rngs=rngs), self.expand.sliced(s, c, bits, rngs=rngs), self.rule
        )


class _MBConv(nnx.Module):
    """Inverted residual block; in a supernet, its largest form with elastic mid, kernel and SE.

    `optional_expand`: expansion 1 is an option although the block holds an expansion conv; then
    the depthwise conv reads the (zero-padded) block input directly, as the cost model has it.
    """

    def __init__(
        self,
        expand: ConvBN | None,
        depthwise: ConvBN,
        se: _SqueezeExcite | None,
        project: ConvBN,
        *,
        residual: bool,
        optional_expand: bool = False,
    ) -> None:
        self.expand, self.depthwise, self.se, self.project = expand, depthwise, se, project
        self.residual, self.optional_expand = residual, optional_expand

    @staticmethod
    def create(
        c_in: int,
        c_out: int,
        *,
        kernel: int,
        expands: tuple[int, ...],
        stride: int,
        act: str,
        se: bool,
        rule: str,
        rngs: nnx.Rngs,
    ) -> _MBConv:
        mid = c_in * max(expands)
        expand = ConvBN.create(c_in, mid, 1, act=act, rngs=rngs) if mid > c_in else None
        depthwise = ConvBN.create(mid, mid, kernel, stride=stride, groups=mid, act=act, rngs=rngs)
        squeeze = max(squeeze_width(c_in, c_in * e, rule) for e in expands)
        return _MBConv(
            expand,
            depthwise,
            _SqueezeExcite.create(mid, squeeze, rule, rngs=rngs) if se else None,
            ConvBN.create(mid, c_out, 1, act=None, rngs=rngs),
            residual=stride == 1 and c_in == c_out,
            optional_expand=expand is not None and 1 in expands,
        )

    @property
    def in_features(self) -> int:
        return (self.expand or self.depthwise).conv.in_features

    def __call__(
        self,
        x: jax.Array,
        ctx: BatchNormContext | None,
        *,
        mid: jax.Array | None = None,
        squeeze: jax.Array | None = None,
        kernel: jax.Array | None = None,
        se: jax.Array | None = None,
        bits: Bits = None,
    ) -> jax.Array:
        """The block; a supernet passes the active `mid` and `squeeze` widths, `kernel` and `se`."""
        mid_mask = None if mid is None else prefix_mask(mid, self.depthwise.conv.out_features)
        h = x
        if self.expand is not None:
            h = self.expand(x, ctx, out_mask=mid_mask, bits=bits)
            if self.optional_expand:
                pad = ((0, 0), (0, 0), (0, 0), (0, h.shape[-1] - x.shape[-1]))
                h = jnp.where(mid == x.shape[-1], jnp.pad(x, pad), h)
        h = self.depthwise(h, ctx, out_mask=mid_mask, kernel_size=kernel, bits=bits)
        if self.se is not None:
            squeeze_mask = None if squeeze is None else prefix_mask(squeeze, self.se.reduce.out_features)
            h = self.se(h, mask=mid_mask, squeeze_mask=squeeze_mask, on=se, bits=bits)
        # Mid channels past `mid` are already 0 (masked batch norm, act(0) = 0): only a quantized
        # projection uses the mask, on its weights, so its scales see only active ones (`ConvBN`).
        y = self.project(h, ctx, in_mask=mid_mask, bits=bits)
        return x + y if self.residual else y

    def sliced(
        self, *, expand: int, kernel: int, se: bool, squeeze: int, bits: int, stats: Stats, rngs: nnx.Rngs
    ) -> _MBConv:
        """The standalone block with expansion `expand`, kernel `kernel` and SE if `se`."""
        c_in, c_out = self.in_features, self.project.conv.out_features
        mid = c_in * expand
        return _MBConv(
            None
            if expand == 1
            else self.expand.sliced(_everything(c_in), _everything(mid), stats, bits=bits, rngs=rngs),
            self.depthwise.sliced(
                _everything(mid), _everything(mid), stats, kernel_size=kernel, bits=bits, rngs=rngs
            ),
            self.se.sliced(mid, squeeze, bits, rngs=rngs) if se else None,
            self.project.sliced(_everything(mid), _everything(c_out), stats, bits=bits, rngs=rngs),
            residual=self.residual,
        )


class _Head(nnx.Module):
    """1x1 conv + BN + act, global average pool, optional feature mix (+ act), classifier."""

    def __init__(self, conv: ConvBN, mix: Dense | None, classifier: Dense) -> None:
        self.conv, self.mix, self.classifier = conv, mix, classifier

    @staticmethod
    def create(
        c_in: int, width: int, mix_width: int, mix_bias: bool, num_classes: int, act: str, *, rngs: nnx.Rngs
    ) -> _Head:
        mix = Dense(width, mix_width, use_bias=mix_bias, rngs=rngs) if mix_width else None
        return _Head(
            ConvBN.create(c_in, width, 1, act=act, rngs=rngs),
            mix,
            Dense(mix_width or width, num_classes, rngs=rngs),
        )

    def __call__(self, x: jax.Array, ctx: BatchNormContext | None, bits: Bits = None) -> jax.Array:
        x = global_avg_pool(self.conv(x, ctx, bits=bits))
        if self.mix is not None:
            x = _act(self.conv.act, self.mix(x, bits=bits))
        return self.classifier(x, bits=bits)

    def sliced(self, stats: Stats, bits: int, rngs: nnx.Rngs) -> _Head:
        conv = self.conv.conv
        mix = self.mix
        if mix is not None:
            mix = mix.sliced(_everything(mix.in_features), _everything(mix.out_features), bits, rngs=rngs)
        c = self.classifier
        return _Head(
            self.conv.sliced(
                _everything(conv.in_features), _everything(conv.out_features), stats, bits=bits, rngs=rngs
            ),
            mix,
            c.sliced(_everything(c.in_features), _everything(c.out_features), bits, rngs=rngs),
        )


class MobileNetSupernet(nnx.Module):
    """Weight-sharing supernet of a `MobileNetSpace` (any skeleton, width multiplier and bits).

    `zero_last_gamma` (OFA's default) starts every residual block as the identity: the scale of
    its projection's batch norm is 0. Deep, narrow supernets train several times faster so
    (measured: the largest cifar subnet at width 0.25 on digits, 96 % after 200 steps against
    78 % without).
    """

    switches_ops = False  # masks select the active parts: architectures vmap

    def __init__(self, space: MobileNetSpace, *, rngs: nnx.Rngs, zero_last_gamma: bool = True) -> None:
        self.space = space
        sk = space.scaled
        self.stem = ConvBN.create(3, sk.stem_width, 3, stride=sk.stem_stride, act=sk.stem_act, rngs=rngs)
        self.first = _MBConv.create(
            sk.stem_width,
            sk.first_width,
            kernel=3,
            expands=(1,),
            stride=sk.first_stride,
            act=sk.first_act,
            se=sk.first_se,
            rule=sk.se_squeeze,
            rngs=rngs,
        )
        stages, c_in = [], sk.first_width
        for stage in sk.stages:
            blocks = []
            for j in range(max(stage.depths)):
                blocks.append(
                    _MBConv.create(
                        c_in,
                        stage.width,
                        kernel=max(sk.kernels),
                        expands=sk.expands,
                        stride=stage.stride if j == 0 else 1,
                        act=stage.act,
                        se=True,
                        rule=sk.se_squeeze,
                        rngs=rngs,
                    )
                )
                c_in = stage.width
            stages.append(nnx.List(blocks))
        self.stages = nnx.List(stages)
        if zero_last_gamma:
            for block in (self.first, *(b for stage in stages for b in stage)):
                if block.residual:
                    block.project.bn.scale[...] = jnp.zeros_like(block.project.bn.scale[...])
        self.head = _Head.create(
            c_in, sk.head_width, sk.mix_width, sk.mix_bias, sk.num_classes, sk.head_act, rngs=rngs
        )
        name_batchnorms(self)

    def _squeeze(self, block: _MBConv, expand_index: jax.Array) -> jax.Array:
        """The cost model's squeeze width for each expansion option, looked up by option index."""
        c_in, rule = block.in_features, self.space.scaled.se_squeeze
        table = [squeeze_width(c_in, c_in * e, rule) for e in self.space.scaled.expands]
        return jnp.asarray(table, jnp.int32)[jnp.maximum(expand_index, 0)]

    def __call__(self, x: jax.Array, arch: jax.Array, ctx: BatchNormContext) -> jax.Array:
        view = ArchView(self.space, arch)
        stem_bits = view.bits("bits.stem")
        x = self.first(self.stem(x, ctx, bits=stem_bits), ctx, bits=stem_bits)
        for s, (stage, blocks) in enumerate(zip(self.space.scaled.stages, self.stages, strict=True), start=1):
            depth, se = view.value(f"s{s}.depth"), view.flag(f"s{s}.se")
            for j, block in enumerate(blocks, start=1):
                key = f"s{s}.b{j}"
                y = block(
                    x,
                    ctx,
                    mid=block.in_features * view.value(f"{key}.expand"),
                    squeeze=self._squeeze(block, view.index(f"{key}.expand")),
                    kernel=view.value(f"{key}.kernel"),
                    se=se,
                    bits=view.bits(f"{key}.bits"),
                )
                x = y if j <= min(stage.depths) else jnp.where(depth >= j, y, x)
        return self.head(x, ctx, view.bits("bits.head"))

    def extract(self, arch: Arch, stats: Stats) -> MobileNetNet:
        """Standalone network of `arch` (validated first) with batch-norm statistics `stats`."""
        arch = self.space.validate(arch)
        return MobileNetNet(self, arch, {k: (np.asarray(m), np.asarray(v)) for k, (m, v) in stats.items()})


class MobileNetNet(nnx.Module):
    """A standalone MBConv network: only the active blocks, channels and kernel taps; stored BN stats."""

    def __init__(self, supernet: MobileNetSupernet, arch: Arch, stats: Stats) -> None:
        rngs = nnx.Rngs(0)  # every weight is overwritten by the supernet's
        sk = supernet.space.scaled
        stem_bits = arch.get("bits.stem", 32)
        conv = supernet.stem.conv
        self.stem = supernet.stem.sliced(
            _everything(3), _everything(conv.out_features), stats, bits=stem_bits, rngs=rngs
        )
        self.first = supernet.first.sliced(
            expand=1,
            kernel=3,
            se=sk.first_se,
            squeeze=squeeze_width(sk.stem_width, sk.stem_width, sk.se_squeeze),
            bits=stem_bits,
            stats=stats,
            rngs=rngs,
        )
        blocks = []
        for s, stage in enumerate(supernet.stages, start=1):
            for j, block in enumerate(stage[: arch[f"s{s}.depth"]], start=1):
                c_in, expand = block.in_features, arch[f"s{s}.b{j}.expand"]
                blocks.append(
                    block.sliced(
                        expand=expand,
                        kernel=arch[f"s{s}.b{j}.kernel"],
                        se=arch[f"s{s}.se"],
                        squeeze=squeeze_width(c_in, c_in * expand, sk.se_squeeze),
                        bits=arch.get(f"s{s}.b{j}.bits", 32),
                        stats=stats,
                        rngs=rngs,
                    )
                )
        self.blocks = nnx.List(blocks)
        self.head = supernet.head.sliced(stats, arch.get("bits.head", 32), rngs)

    def __call__(self, x: jax.Array, ctx: BatchNormContext | None = None) -> jax.Array:
        """Logits; batch norm uses the stored statistics, or per `ctx` (e.g. the batch's)."""
        x = self.first(self.stem(x, ctx), ctx)
        for block in self.blocks:
            x = block(x, ctx)
        return self.head(x, ctx)
