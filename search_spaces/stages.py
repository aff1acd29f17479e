"""Stage boundaries of the standalone networks: where a network can be cut and stitched (SN-Net).

A network is a chain of *segments* cut at its stage boundaries: segment 0 maps images to boundary
0 (the stem; for MBConv networks also the fixed first block), segment k maps boundary k-1 to
boundary k (stage k), and the last segment maps the last boundary to logits (the head). Each
family's adapter (`nasx.stitching.Staged`) cuts the model its supernet extracts into those
segments, as modules that share its weights, and prices each segment with the family's analytic
cost model, so that the segments' costs add up to ``space.costs(arch)`` exactly (tested).

`STAGED` maps a family name to its adapter (a plain dict, as `search_spaces.SPACES`).

References:
  Pan, Cai & Zhuang, "Stitchable Neural Networks", CVPR 2023 (stitching at stage boundaries of
  hierarchical networks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jax
from flax import nnx

from nasx.costs import Costs, out_size
from nasx.nn.layers import global_avg_pool, max_pool, relu
from nasx.space import Arch
from search_spaces.mobilenet import MobileNetSpace, mbconv_costs
from search_spaces.mobilenet_supernet import MobileNetNet
from search_spaces.resnet import ResNetSpace, stage_costs
from search_spaces.resnet_supernet import ResNet

__all__ = ["Chain", "MobileNetStages", "ResNetStages", "STAGED"]


class Chain(nnx.Module):
    """Layers of a standalone network run in order, each as ``layer(x, None)`` (stored BN statistics)."""

    def __init__(self, layers: Sequence[nnx.Module]) -> None:
        self.layers = nnx.List(layers)

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers:
            x = layer(x, None)
        return x


class _ResNetStem(nnx.Module):
    def __init__(self, stem: nnx.Module, maxpool: bool) -> None:
        self.stem, self.maxpool = stem, maxpool

    def __call__(self, x: jax.Array) -> jax.Array:
        x = relu(self.stem(x, None))
        return max_pool(x, 3, 2) if self.maxpool else x


class _ResNetHead(nnx.Module):
    def __init__(self, classifier: nnx.Module) -> None:
        self.classifier = classifier

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.classifier(global_avg_pool(x))


@dataclass(frozen=True)
class MobileNetStages:
    """Segments of a `MobileNetNet`: stem + first block, each searchable stage, the head."""

    space: MobileNetSpace

    def resolution(self, arch: Arch) -> int:
        """The input side in px `MobileNetSpace.costs` prices `arch` at."""
        return self.space.input_side(arch)

    def segments(self, model: MobileNetNet, arch: Arch) -> list[nnx.Module]:
        segments: list[nnx.Module] = [Chain([model.stem, model.first])]
        start = 0
        for s in range(1, len(self.space.scaled.stages) + 1):
            depth = arch[f"s{s}.depth"]
            segments.append(Chain(list(model.blocks)[start : start + depth]))
            start += depth
        return [*segments, Chain([model.head])]

    def segment_costs(self, arch: Arch) -> list[Costs]:
        space, sk = self.space, self.space.scaled
        side = space.input_side(arch)
        stem, _ = space.stem_costs(side, arch.get("bits.stem", 32))
        stages = [Costs() for _ in sk.stages]
        for b in space.placed_blocks(arch):
            stages[b.stage - 1] += mbconv_costs(
                b.c_in, b.c_out, b.kernel, b.expand, b.stride, b.se, b.in_side_px, b.bits, sk.se_squeeze
            )
        last = sk.stages[-1].width if sk.stages else sk.first_width
        head_side = space.block_input_side(len(sk.stages) + 1, 1, side)
        head = space.head_costs(last, head_side, arch.get("bits.head", 32))
        return [stem, *stages, head]


@dataclass(frozen=True)
class ResNetStages:
    """Segments of a `ResNet`: stem (+ max pool), each stage, global pool + classifier."""

    space: ResNetSpace

    def resolution(self, arch: Arch) -> int:
        """The input side in px `ResNetSpace.costs` prices `arch` at."""
        return self.space.skeleton.resolution

    def segments(self, model: ResNet, arch: Arch) -> list[nnx.Module]:
        del arch  # a standalone ResNet holds exactly its stages
        stages = [Chain(list(stage)) for stage in model.stages]
        return [_ResNetStem(model.stem, model.maxpool), *stages, _ResNetHead(model.classifier)]

    def segment_costs(self, arch: Arch) -> list[Costs]:
        sk, size = self.space.skeleton, self.resolution(arch)
        c_in = arch["stem.width"]
        costs = [self.space.stem_costs(c_in, resolution=size, bits=arch.get("bits.stem", 32))]
        size = out_size(size, sk.stem_kernel, sk.stem_stride)
        if sk.stem_maxpool:
            size = out_size(size, 3, 2)
        for i, stride in enumerate(sk.strides, start=1):
            c_out, kernel = arch[f"s{i}.width"], arch[f"s{i}.kernel"]
            costs.append(
                stage_costs(
                    sk.block,
                    c_in,
                    c_out,
                    arch.get(f"s{i}.btn", 0),
                    kernel,
                    arch[f"s{i}.depth"],
                    stride,
                    size,
                    arch.get(f"s{i}.bits", 32),
                    sk.shortcut,
                )
            )
            size, c_in = out_size(size, kernel, stride), c_out
        head = self.space.head_costs(c_in, resolution=self.resolution(arch), bits=arch.get("bits.head", 32))
        return [*costs, head]


STAGED = {"mobilenet": MobileNetStages, "resnet": ResNetStages}
"""Family name -> adapter class, ``STAGED[space.name](space)``; families not listed cannot be stitched."""
