"""Stage boundaries of ResNet networks: where a network can be cut and stitched (SN-Net).

A network is a chain of *segments* cut at its stage boundaries: segment 0 maps images to boundary
0 (the stem; with its max pool), segment k maps boundary k-1 to boundary k (stage k), and the last segment maps the
last boundary to logits (the head). The adapter cuts the model the supernet extracts into those
segments, as modules that share its weights, and prices each segment with the family's analytic
cost model, so that the segments' costs add up to ``space.costs(arch)`` exactly (tested).

References:
  Pan, Cai & Zhuang, "Stitchable Neural Networks", CVPR 2023 (stitching at stage boundaries of
  hierarchical networks).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
from flax import nnx

from nasx.costs import Costs, out_size
from nasx.nn.chain import Chain
from nasx.nn.layers import global_avg_pool, max_pool, relu
from nasx.space import Arch
from search_spaces.resnet.spec import ResNetSpace, stage_costs
from search_spaces.resnet.supernet import ResNet

__all__ = ["ResNetStages"]


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
