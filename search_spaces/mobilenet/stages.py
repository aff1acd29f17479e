"""Stage boundaries of MBConv (MobileNet) networks: where a network can be cut and stitched (SN-Net).

A network is a chain of *segments* cut at its stage boundaries: segment 0 maps images to boundary
0 (the stem; here also the fixed first block), segment k maps boundary k-1 to boundary k (stage k), and the last segment maps the
last boundary to logits (the head). The adapter cuts the model the supernet extracts into those
segments, as modules that share its weights, and prices each segment with the family's analytic
cost model, so that the segments' costs add up to ``space.costs(arch)`` exactly (tested).

References:
  Pan, Cai & Zhuang, "Stitchable Neural Networks", CVPR 2023 (stitching at stage boundaries of
  hierarchical networks).
"""

from __future__ import annotations

from dataclasses import dataclass

from flax import nnx

from nasx.costs import Costs
from nasx.nn.chain import Chain
from nasx.space import Arch
from search_spaces.mobilenet.spec import MobileNetSpace, mbconv_costs
from search_spaces.mobilenet.supernet import MobileNetNet

__all__ = ["MobileNetStages"]


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
