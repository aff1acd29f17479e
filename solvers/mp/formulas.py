"""DeepMAD's formulas on any architecture: the weighted multi-scale entropy and the effectiveness.

`deepmad_score` and `effectiveness` evaluate them on any architecture of a space priced stage by
stage (`nasx.space_family.StagePricedSpace`: resnet) or block by block (`BlockPricedSpace`:
mobilenet); the programs (`solvers.mp.resnet`, `solvers.mp.mobilenet`) share the per-layer
entropy and the conv layers of a block defined here.

The formulas (``shared/reference/deepmad_formulas.md``, TinyNAS's reading of the paper): every conv
layer with ``c`` input channels (1 if depthwise) and kernel ``k`` contributes ``s = 1/2 log(c k^2)``.
Stages close before every strided block. For stage ``g`` with output channels ``C_g``, side
``r_g`` px, cumulative entropy ``E_g`` (the sum of ``s`` over all layers up to its end) and
cumulative conv-layer count ``D_g``::

    score = sum_g beta_g * (log C_g + 2 log r_g) * E_g,      beta = (1, ..., 1, 8)
    rho_g = D_g / exp(2 E_g / D_g)  <=  rho_max              (effectiveness, for every stage)

The depth-uniformity penalty of TinyNAS's evolutionary search is not part of the score.

References:
  Shen et al., "DeepMAD: Mathematical Architecture Design for Deep Convolutional Neural Network",
  CVPR 2023 (arXiv 2303.02165).
  TinyNAS, alibaba/lightweight-neural-architecture-search @ 8ccaf889
  (``tinynas/scores/compute_deepmad.py``, ``tinynas/models/cnnnet.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nasx.costs import out_size
from nasx.errors import UnsupportedSpaceError
from nasx.space import Arch, SearchSpace, Value
from nasx.space_family import BlockPricedSpace, StagePricedSpace

__all__ = ["deepmad_score", "effectiveness"]


@dataclass(frozen=True)
class _Block:
    """A block of the network as DeepMAD sees it: stride, output channels and side, conv layers."""

    stride: int
    c_out: int
    side_px: int
    convs: tuple[tuple[int, int], ...]  # (input channels, 1 if depthwise; kernel)


def _resnet_convs(block: str, c_in: int, width: int, btn: int, kernel: int) -> tuple[tuple[int, int], ...]:
    if block == "bottleneck":
        return ((c_in, 1), (btn, kernel), (btn, 1))
    return ((c_in, kernel), (width, kernel))


def _mbconv_convs(c_in: int, mid: int, kernel: int, expand: int) -> tuple[tuple[int, int], ...]:
    dw_and_project = ((1, kernel), (mid, 1))
    return ((c_in, 1), *dw_and_project) if expand > 1 else dw_and_project


def _entropy(convs: Sequence[tuple[int, int]]) -> float:
    return sum(0.5 * math.log(c * k * k) for c, k in convs)


def _unsupported(space: SearchSpace, what: str) -> UnsupportedSpaceError:
    """The error for a space that is neither a `StagePricedSpace` nor a `BlockPricedSpace`."""
    return UnsupportedSpaceError(
        f'{what}: space "{space.name}" is not supported; use a resnet or mobilenet space'
    )


def _resnet_sides(skeleton: Any, resolution: int) -> list[int]:
    """Side in px after the stem (index 0) and after each stage (SAME padding: kernel-free)."""
    side = out_size(resolution, skeleton.stem_kernel, skeleton.stem_stride)
    if skeleton.stem_maxpool:
        side = out_size(side, 3, 2)
    sides = [side]
    for stride in skeleton.strides:
        sides.append(out_size(sides[-1], 3, stride))
    return sides


def _resnet_blocks(space: StagePricedSpace, arch: Arch, resolution: int) -> list[_Block]:
    sk = space.skeleton
    sides = _resnet_sides(sk, resolution)
    c_in = arch["stem.width"]
    blocks = [_Block(sk.stem_stride, c_in, sides[0], ((3, sk.stem_kernel),))]
    for i, stride in enumerate(sk.strides, start=1):
        width, kernel, depth = arch[f"s{i}.width"], arch[f"s{i}.kernel"], arch[f"s{i}.depth"]
        btn = arch.get(f"s{i}.btn", 0)
        for j in range(depth):
            convs = _resnet_convs(sk.block, c_in if j == 0 else width, width, btn, kernel)
            blocks.append(_Block(stride if j == 0 else 1, width, sides[i], convs))
        c_in = width
    return blocks


def _mobilenet_blocks(space: BlockPricedSpace, arch: Arch, resolution: int | None) -> list[_Block]:
    sk = space.scaled
    side = out_size(space.input_side(arch, resolution), 3, sk.stem_stride)
    blocks = [_Block(sk.stem_stride, sk.stem_width, side, ((3, 3),))]
    side = out_size(side, 3, sk.first_stride)
    first = _mbconv_convs(sk.stem_width, sk.stem_width, 3, 1)
    blocks.append(_Block(sk.first_stride, sk.first_width, side, first))
    for b in space.placed_blocks(arch, resolution):
        convs = _mbconv_convs(b.c_in, b.c_in * b.expand, b.kernel, b.expand)
        blocks.append(_Block(b.stride, b.c_out, b.out_side_px, convs))
        side = b.out_side_px
    c_in = sk.stages[-1].width if sk.stages else sk.first_width
    blocks.append(_Block(1, sk.head_width, side, ((c_in, 1),)))  # the 1x1 head conv before pooling
    return blocks


def _blocks(space: SearchSpace, arch: Arch, resolution: int | None) -> list[_Block]:
    if isinstance(space, StagePricedSpace):
        return _resnet_blocks(space, arch, resolution or space.resolution)
    if isinstance(space, BlockPricedSpace):
        return _mobilenet_blocks(space, arch, resolution)
    raise _unsupported(space, "DeepMAD score")


def _stages(blocks: list[_Block]) -> list[tuple[int, int, float, int]]:
    """Per DeepMAD stage: (C, r, cumulative entropy, cumulative conv layers)."""
    stages, entropy, layers = [], 0.0, 0
    for b, block in enumerate(blocks):
        if b > 0 and block.stride != 1:
            prev = blocks[b - 1]
            stages.append((prev.c_out, prev.side_px, entropy, layers))
        entropy += _entropy(block.convs)
        layers += len(block.convs)
    stages.append((blocks[-1].c_out, blocks[-1].side_px, entropy, layers))
    return stages


def _weights(n_stages: int, stage_weights: Sequence[float] | None) -> tuple[float, ...]:
    weights = tuple(stage_weights) if stage_weights is not None else (1.0,) * (n_stages - 1) + (8.0,)
    if len(weights) != n_stages:
        raise ValueError(f"stage_weights has {len(weights)} entries; this network has {n_stages} stages")
    return weights


def deepmad_score(
    space: SearchSpace,
    arch: Mapping[str, Value],
    *,
    resolution: int | None = None,
    stage_weights: Sequence[float] | None = None,
) -> float:
    """DeepMAD's weighted multi-scale entropy of `arch` (module docstring), without depth penalty.

    Args:
      space: a `resnet` or `mobilenet` space.
      arch: an architecture of `space` (validated here).
      resolution: input side in px (default: the space's, or a mobilenet arch's own choice).
      stage_weights: beta per stage (default ``(1, ..., 1, 8)``, TinyNAS's ``multi_block_ratio``).

    Raises:
      UnsupportedSpaceError: `space` is neither a resnet nor a mobilenet space.

    References:
      Shen et al. 2023, Eq. (5)-(7); TinyNAS ``tinynas/scores/compute_deepmad.py``.
    """
    arch = space.validate(arch)
    stages = _stages(_blocks(space, arch, resolution))
    weights = _weights(len(stages), stage_weights)
    return sum(
        beta * (math.log(c) + 2 * math.log(r)) * e for beta, (c, r, e, _) in zip(weights, stages, strict=True)
    )


def effectiveness(space: SearchSpace, arch: Mapping[str, Value]) -> float:
    """DeepMAD's effectiveness ``max_g rho_g`` of `arch` (TinyNAS's ``efficient_score``)."""
    arch = space.validate(arch)
    stages = _stages(_blocks(space, arch, None))
    return max(math.exp(math.log(d) - 2 * e / d) for _, _, e, d in stages)
