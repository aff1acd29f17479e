"""MobileNet skeletons: the fixed macro structure (stages, widths, strides) of each variant.

The variant table (`SKELETONS`) with the rules it is built from (`make_divisible`, `squeeze_width`,
`scale_widths`); `spec.py` prices architectures on a skeleton, `blocks.py` lists its layers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["ACTIVATIONS", "Stage", "Skeleton", "SKELETONS", "make_divisible", "squeeze_width", "scale_widths"]

ACTIVATIONS = ("relu", "relu6", "h_swish", "swish")
_RESOLUTIONS_PX = tuple(range(128, 257, 4))


def make_divisible(value: float, divisor: int = 8) -> int:
    """Nearest multiple of `divisor`, at least `divisor`, never more than 10 % below `value`.

    The ``_make_divisible`` of the TF-slim / torchvision MobileNets and OFA.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def squeeze_width(c_in: int, mid: int, rule: str = "mid") -> int:
    """Squeeze-excitation width of a block with input `c_in` and `mid` expanded channels.

    ``"mid"``: make_divisible(mid / 4, 8) (MobileNetV3, OFA); ``"input"``: max(1, c_in // 4)
    (EfficientNet).
    """
    return make_divisible(mid / 4) if rule == "mid" else max(1, c_in // 4)


@dataclass(frozen=True)
class Stage:
    """A searchable stage of MBConv blocks.

    Attributes:
      width: output channels of every block.
      stride: stride of the first block (the others have stride 1 and an identity shortcut).
      act: activation of the expansion and depthwise convs, one of `ACTIVATIONS`.
      depths: the depth options (number of blocks).
    """

    width: int
    stride: int
    act: str
    depths: tuple[int, ...]


@dataclass(frozen=True)
class Skeleton:
    """The fixed macro structure around the searchable stages.

    Attributes:
      name: the variant name (key of `SKELETONS`).
      stem_width, stem_stride, stem_act: the 3x3 stem conv (+ BN + act) from 3 channels.
      first_width, first_stride, first_act, first_se: the fixed first block (MBConv, expansion 1,
        kernel 3) from the stem width.
      stages: the searchable stages.
      head_width, head_act: the final 1x1 expansion conv (+ BN + act) before global pooling.
      mix_width, mix_bias: the "feature mix" 1x1 conv after pooling (no BN, with ``head_act``);
        0 = none.
      num_classes: classifier outputs (the classifier has a bias).
      resolutions: options of the ``resolution`` choice in px; `default_resolution` is its default
        and the space's deployment resolution.
      fixed_resolution: if set, costs are at this resolution whatever the ``resolution`` choice.
      kernels, expands: depthwise kernel and expansion-ratio options of every block.
      se_squeeze: squeeze width rule: ``"mid"`` = make_divisible(mid / 4, 8) (MobileNetV3, OFA;
        ReLU and hard-sigmoid) or ``"input"`` = max(1, c_in // 4) (EfficientNet; swish and sigmoid).
    """

    name: str
    stem_width: int
    first_width: int
    stages: tuple[Stage, ...]
    head_width: int
    stem_stride: int = 2
    stem_act: str = "h_swish"
    first_stride: int = 1
    first_act: str = "relu"
    first_se: bool = False
    head_act: str = "h_swish"
    mix_width: int = 0
    mix_bias: bool = False
    num_classes: int = 1000
    resolutions: tuple[int, ...] = _RESOLUTIONS_PX
    default_resolution: int = 224
    fixed_resolution: int | None = None
    kernels: tuple[int, ...] = (3, 5, 7)
    expands: tuple[int, ...] = (3, 4, 6)
    se_squeeze: str = "mid"

    def __post_init__(self) -> None:
        acts = {self.stem_act, self.first_act, self.head_act, *(s.act for s in self.stages)}
        if not acts <= set(ACTIVATIONS):
            raise ValueError(f"skeleton {self.name!r}: activations {sorted(acts - set(ACTIVATIONS))} unknown")
        if self.default_resolution not in self.resolutions:
            raise ValueError(f"skeleton {self.name!r}: default resolution not among its options")
        if self.se_squeeze not in ("mid", "input"):
            raise ValueError(f"skeleton {self.name!r}: se_squeeze must be 'mid' or 'input'")
        if not self.stages or any(not s.depths or min(s.depths) < 1 for s in self.stages):
            raise ValueError(f"skeleton {self.name!r}: every stage needs depth options >= 1")


_OFA_STAGES = tuple(
    Stage(width, stride, act, (2, 3, 4))
    for width, stride, act in zip(
        (32, 48, 96, 136, 192),
        (2, 2, 2, 1, 2),
        ("relu", "relu", "h_swish", "h_swish", "h_swish"),
        strict=True,
    )
)

SKELETONS: dict[str, Skeleton] = {
    # OFA MobileNetV3 space at width multiplier 1.2: the macro structure of the OFA net
    # flops@595M_top1@80.0_finetune@75 (mit-han-lab/once-for-all model zoo; its net.config in
    # Alibaba-MIIL/ImageNet21K src_files/models/ofa/specialized_models_configs). Cai et al. 2020.
    "imagenet": Skeleton(
        name="imagenet",
        stem_width=24,
        first_width=24,
        stages=_OFA_STAGES,
        head_width=1152,
        mix_width=1536,
    ),
    # The same stages and choices on 32 px CIFAR-10: stem and first stage keep the resolution.
    "cifar": Skeleton(
        name="cifar",
        stem_width=24,
        first_width=24,
        stages=tuple(
            Stage(s.width, stride, s.act, s.depths)
            for s, stride in zip(_OFA_STAGES, (1, 2, 2, 1, 2), strict=True)
        ),
        head_width=1152,
        mix_width=1536,
        stem_stride=1,
        num_classes=10,
        fixed_resolution=32,
    ),
    # MobileNetV2 1.0 macro (Sandler et al. 2018, Table 2; torchvision mobilenet_v2).
    "mobilenet-v2": Skeleton(
        name="mobilenet-v2",
        stem_width=32,
        first_width=16,
        stages=tuple(
            Stage(width, stride, "relu6", (1, 2, 3, 4))
            for width, stride in ((24, 2), (32, 2), (64, 2), (96, 1), (160, 2), (320, 1))
        ),
        head_width=1280,
        stem_act="relu6",
        first_act="relu6",
        head_act="relu6",
    ),
    # EfficientNet-B0 macro (Tan & Le 2019, Table 1; torchvision efficientnet_b0): swish, SE on
    # every block with squeeze = block input / 4, first block with SE.
    "efficientnet-b0": Skeleton(
        name="efficientnet-b0",
        stem_width=32,
        first_width=16,
        stages=tuple(
            Stage(width, stride, "swish", (1, 2, 3, 4))
            for width, stride in ((24, 2), (40, 2), (80, 2), (112, 1), (192, 2), (320, 1))
        ),
        head_width=1280,
        stem_act="swish",
        first_act="swish",
        first_se=True,
        head_act="swish",
        se_squeeze="input",
    ),
    # Sized for 28-32 px grey-scale images (Fashion-MNIST, digits) trained on a CPU: a stride-2
    # stem (28 -> 14), four narrow stages at 14, 14, 7 and 4 px, depths 1-3, expansions from 2,
    # no feature mix. Costs at 28 px: the largest subnet 19.3M MACs and 575K params, the smallest
    # 1.54M MACs (12.5x below), a random one 6.3M (median). A 32 px input runs too (costs stay at 28).
    "small": Skeleton(
        name="small",
        stem_width=16,
        first_width=16,
        stages=tuple(
            Stage(width, stride, act, (1, 2, 3))
            for width, stride, act in zip(
                (16, 24, 40, 56), (1, 1, 2, 2), ("relu", "relu", "h_swish", "h_swish"), strict=True
            )
        ),
        head_width=256,
        num_classes=10,
        resolutions=(28,),
        default_resolution=28,
        fixed_resolution=28,
        expands=(2, 3, 4, 6),
    ),
}
"""Variant name -> skeleton; the first is the default."""


def scale_widths(skeleton: Skeleton, width_mult: float) -> Skeleton:
    """`skeleton` with every fixed width scaled to ``make_divisible(width * width_mult, 8)``.

    Stem, first block, stages, final expansion conv and feature mix (0 stays 0) are scaled;
    ``width_mult == 1`` returns `skeleton` itself, whatever its widths.
    """
    if width_mult == 1.0:
        return skeleton

    def scaled(width: int) -> int:
        return make_divisible(width * width_mult) if width else 0

    return dataclasses.replace(
        skeleton,
        stem_width=scaled(skeleton.stem_width),
        first_width=scaled(skeleton.first_width),
        stages=tuple(dataclasses.replace(s, width=scaled(s.width)) for s in skeleton.stages),
        head_width=scaled(skeleton.head_width),
        mix_width=scaled(skeleton.mix_width),
    )
