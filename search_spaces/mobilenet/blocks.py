"""MBConv networks as blocks of `nasx.costs.Layer` descriptors: what a latency table is keyed by.

A network of `search_spaces.mobilenet` is the stem conv, the fixed first block, the searchable
MBConv blocks and the head, exactly as `MobileNetSpace.costs` prices it and the supernet's
extracted `MobileNetNet` runs it. Each is a `nasx.costs.Block`: its layers in order, each conv with
its batch norm and activation as the network runs them fused, the projection of a residual block
with the addition of the block's input. A latency table times each distinct block as one program,
so the fusion and cache reuse between a block's layers are measured as they happen in the network
(block entries predict whole-network latency markedly better than per-layer entries: see
`benchmarks/latency.py`).

`network_blocks` lists one architecture's blocks, `distinct_blocks` every block any architecture of
a space can have (what ``nasx profile`` measures), `option_block` and `fixed_blocks` the
per-option pieces the MP solver prices. The sum of `Layer.costs` over the layers of
`network_blocks` equals `MobileNetSpace.costs` in MACs, params, weight bytes and layers (tested).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping
from typing import TYPE_CHECKING

from nasx.costs import Block, Layer, out_size
from nasx.space import Value
from search_spaces.mobilenet.skeletons import squeeze_width

if TYPE_CHECKING:
    from search_spaces.mobilenet.spec import MobileNetSpace, Skeleton

__all__ = ["mbconv_layers", "network_blocks", "distinct_blocks", "option_block", "fixed_blocks"]


@functools.cache
def mbconv_layers(
    c_in: int,
    c_out: int,
    kernel: int,
    expand: int,
    stride: int,
    se: bool,
    in_size: int,
    bits: int,
    act: str,
    se_squeeze: str = "mid",
) -> Block:
    """The layers of one MBConv block (`search_spaces.mobilenet.mbconv_costs` gives its costs).

    1x1 expansion + BN + act (absent at ``expand == 1``), depthwise conv + BN + act, SE (ReLU and
    hard-sigmoid for the ``"mid"`` squeeze rule, swish and sigmoid for ``"input"``), and the 1x1
    projection + BN, with the residual addition when ``stride == 1`` and ``c_in == c_out``.
    """
    mid = c_in * expand
    size = out_size(in_size, kernel, stride)
    layers = []
    if expand > 1:
        layers.append(Layer("conv", c_in, mid, in_size, bits=bits, act=act, bn=True))
    layers.append(Layer("conv", mid, mid, in_size, kernel, stride, mid, bits, act, bn=True))
    if se:
        inner = "relu" if se_squeeze == "mid" else "swish"
        layers.append(Layer("se", mid, squeeze_width(c_in, mid, se_squeeze), size, bits=bits, act=inner))
    residual = stride == 1 and c_in == c_out
    layers.append(Layer("conv", mid, c_out, size, bits=bits, bn=True, residual=residual))
    return tuple(layers)


@functools.cache
def _stem_blocks(sk: Skeleton, size: int, bits: int) -> tuple[Block, Block, int]:
    """The stem conv and the fixed first block (MBConv, expansion 1, kernel 3), and the side they output."""
    stem = (Layer("conv", 3, sk.stem_width, size, 3, sk.stem_stride, 1, bits, sk.stem_act, bn=True),)
    size = out_size(size, 3, sk.stem_stride)
    first = mbconv_layers(
        sk.stem_width,
        sk.first_width,
        3,
        1,
        sk.first_stride,
        sk.first_se,
        size,
        bits,
        sk.first_act,
        sk.se_squeeze,
    )
    return stem, first, out_size(size, 3, sk.first_stride)


@functools.cache
def _head_block(sk: Skeleton, c_in: int, size: int, bits: int) -> Block:
    """Final 1x1 conv + BN + act, global pool, feature mix (+ act) if any, classifier."""
    layers = [
        Layer("conv", c_in, sk.head_width, size, bits=bits, act=sk.head_act, bn=True),
        Layer("pool", sk.head_width, sk.head_width, size),
    ]
    features = sk.head_width
    if sk.mix_width:
        layers.append(Layer("dense", features, sk.mix_width, bits=bits, act=sk.head_act, bias=sk.mix_bias))
        features = sk.mix_width
    layers.append(Layer("dense", features, sk.num_classes, bits=bits, bias=True))
    return tuple(layers)


def network_blocks(
    space: MobileNetSpace, values: Mapping[str, Value], resolution: int | None = None
) -> tuple[Block, ...]:
    """The blocks of a valid architecture's network, in order, at `resolution` px (or, as in
    `MobileNetSpace.costs`, the fixed or chosen one)."""
    sk = space.scaled
    stem, first, _ = _stem_blocks(sk, space.input_side(values, resolution), int(values.get("bits.stem", 32)))
    placed = space.placed_blocks(values, resolution)
    blocks = [
        mbconv_layers(
            b.c_in, b.c_out, b.kernel, b.expand, b.stride, b.se, b.in_side_px, b.bits, b.act, sk.se_squeeze
        )
        for b in placed
    ]
    last = sk.stages[-1].width if sk.stages else sk.first_width
    side = space.block_input_side(len(sk.stages) + 1, 1, space.input_side(values, resolution))
    head = _head_block(sk, last, side, int(values.get("bits.head", 32)))
    return (stem, first, *blocks, head)


def option_block(
    space: MobileNetSpace,
    stage: int,
    block: int,
    kernel: int,
    expand: int,
    se: bool,
    resolution: int,
    bits: int,
) -> Block:
    """Block `block` of stage `stage` (1-based) with these options (`MobileNetSpace.block_costs`)."""
    sk = space.scaled
    width, stride = sk.stages[stage - 1].width, sk.stages[stage - 1].stride
    c_in = width if block > 1 else (sk.stages[stage - 2].width if stage > 1 else sk.first_width)
    size = space.block_input_side(stage, block, resolution)
    act = sk.stages[stage - 1].act
    return mbconv_layers(
        c_in, width, kernel, expand, stride if block == 1 else 1, se, size, bits, act, sk.se_squeeze
    )


def fixed_blocks(space: MobileNetSpace, resolution: int, bits: int) -> tuple[Block, ...]:
    """Stem, first block and head: the blocks every architecture has (`fixed_costs`)."""
    sk = space.scaled
    stem, first, _ = _stem_blocks(sk, resolution, bits)
    last = sk.stages[-1].width if sk.stages else sk.first_width
    return stem, first, _head_block(sk, last, space.block_input_side(len(sk.stages) + 1, 1, resolution), bits)


def distinct_blocks(space: MobileNetSpace, resolution: int | None = None) -> tuple[Block, ...]:
    """Every distinct block an architecture of `space` can have at `resolution` px, in network order.

    These are the entries of a complete latency table: per stage, block 1 (the stage's stride, the
    previous width) and, when the stage can be deeper, the later blocks, for every kernel,
    expansion, SE and bits option; the stem, first block and head for every bits option.
    """
    sk = space.scaled
    size = space.input_side(None, resolution)
    bits_options = space.bits if space.bits != (32,) else (32,)
    found: dict[Block, None] = {}
    for bits in bits_options:
        found.update(dict.fromkeys(fixed_blocks(space, size, bits)[:2]))
    for s, stage in enumerate(sk.stages, start=1):
        for block in (1, 2) if max(stage.depths) > 1 else (1,):
            options = itertools.product(sk.kernels, sk.expands, (False, True), bits_options)
            for kernel, expand, se, bits in options:
                found[option_block(space, s, block, kernel, expand, se, size, bits)] = None
    for bits in bits_options:
        found[fixed_blocks(space, size, bits)[2]] = None
    return tuple(found)
