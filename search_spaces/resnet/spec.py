"""ResNet macro spaces: DeepMAD's bottleneck search space, with torchvision's ResNets as presets.

An architecture chooses, per stage, the output width, the bottleneck width (bottleneck blocks only),
the kernel of the k x k convolutions, the depth ``L`` (number of residual blocks) and the weight
bits; plus the stem width and the stem / classifier bits. Everything else (stem kernel and stride,
stage strides, shortcut style, classes) is fixed by a *skeleton* (`SKELETONS`):

* ``"imagenet"`` (default): DeepMAD's ImageNet space. Stem conv 3x3 s2 + BN + ReLU; 5 stages of
  TinyNAS ``SuperResK1KXK1`` bottlenecks (1x1 in->btn, k x k btn->btn with the stage's stride in the
  first block, 1x1 btn->out, BN after each conv, ReLU after the first two and after the add)
  with strides (2, 2, 2, 1, 2); global average pool; FC. The first block of every stage has a
  projection shortcut (2x2 average pool if the stride is 2, then 1x1 conv + BN), even when the
  shape does not change (TinyNAS ``force_resproj``); later blocks have identity shortcuts.
* ``"cifar"``: the same choices on a 32 px input (stem stride 1, strides (1, 2, 2, 1, 2), 10
  classes), so a search can train at CIFAR size and budget the same architecture at ImageNet size.
* ``"small"``: the CIFAR ResNet layout (He et al. 2016, Sec. 4.2: 3 stages of basic blocks) on
  28 px images (Fashion-MNIST, MNIST), sized for a 2-core CPU: stem 3x3 s1 at 28 px, stages with
  strides (2, 2, 2) at 14, 7 and 4 px, widths 8..40, depth 1..3, kernel 3, a 1x1 conv shortcut
  where the shape changes. `nasx train-supernet --space resnet:small` trains its supernet in
  minutes per epoch.
* ``"torchvision-basic"`` / ``"torchvision-bottleneck"``: torchvision's ResNet-18/34 and ResNet-50
  (v1.5: stride in the 3x3) skeletons: stem 7x7 s2 + BN + ReLU + max pool 3x3 s2, 4 stages with
  strides (1, 2, 2, 2), a 1x1 conv (stride s) + BN shortcut only where the shape changes.

Grids (DeepMAD skeletons): stem width 16..64 step 8; stage width 16..2048 step 8; bottleneck
8..2048 step 8; kernel 3 or 5; depth 1..16. The torchvision skeletons use kernel 3 only and depth
1..36 (ResNet-152 has 36 blocks in stage 3). Structural constraints, from TinyNAS's k1kxk1 space
relaxed to what the released DeepMAD networks satisfy (`options` applies them, so sampling never
rejects):

* widths do not decrease over stages 1..S-1; the last stage may be narrower (DeepMAD-R18/R34);
* from stage 2 on a stage is at most 4x wider than the previous one (stage 1 is free: DeepMAD-R34
  goes 24 -> 128);
* ``max(8, 8 * floor(width / 80)) <= btn <= width``: TinyNAS's out/10 rule rounded down to a
  multiple of 8 (DeepMAD-R34/R50 use btn 48 for a 512-wide stage);
* DeepMAD skeletons only: the first stage has at most 3 blocks.

Every choice's options are never empty given valid earlier choices: stage 1 allows the whole width
grid; a middle stage's window [prev, 4 prev] contains prev (a grid width); the last stage's window
[smallest width, 4 prev] contains the smallest width; the btn window [.., width] contains the width
itself (`Skeleton` checks that every width is a bottleneck option and >= 8); and `Skeleton` checks
that the smallest depth satisfies the first-stage rule.

Quantization: ``bits`` (default (4, 8, 16, 32)) adds ``bits.stem``, ``s{i}.bits`` (every conv of
the stage, projections included) and ``bits.head`` (the FC), each defaulting to 32; ``bits=(32,)``
omits them.

References:
  He et al., "Deep Residual Learning for Image Recognition", CVPR 2016.
  Shen et al., "DeepMAD: Mathematical Architecture Design for Deep Convolutional Neural Network",
  CVPR 2023 (arXiv 2303.02165).
  TinyNAS, alibaba/lightweight-neural-architecture-search @ 8ccaf889: blocks in
  ``tinynas/models/blocks_cnn_2d/{blocks_basic,super_res_k1kxk1}.py``, released structures in
  ``configs/classification/models/deepmad-R{18,34,50}.txt``.
  torchvision ``models/resnet.py`` (BasicBlock, Bottleneck v1.5).
"""

from __future__ import annotations

import bisect
import functools
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import final

from nasx.costs import FLOAT_BYTES, Costs, conv2d, dense, out_size, weight_tensor_bytes
from nasx.errors import UnknownSpaceError
from nasx.space import AbstractSearchSpace, Arch, Choice, Preset, Value

__all__ = [
    "Skeleton",
    "SKELETONS",
    "ResNetSpace",
    "space",
    "bottleneck_costs",
    "basic_costs",
    "stage_costs",
    "tinynas_flops",
    "PRESETS",
]

_MIN_BTN = 8
_BLOCKS = ("bottleneck", "basic")
_SHORTCUTS = ("deepmad", "torchvision")


@dataclass(frozen=True)
class Skeleton:
    """The fixed part of a ResNet space and the option grids of its choices.

    Attributes:
      name: key in `SKELETONS`.
      resolution: deployment input side in pixels.
      num_classes: classifier outputs.
      block: ``"bottleneck"`` (1x1, k x k, 1x1) or ``"basic"`` (k x k, k x k).
      stem_kernel, stem_stride: the stem conv (padding ``kernel // 2``, i.e. SAME output size).
      stem_maxpool: whether a 3x3 stride-2 max pool follows the stem (torchvision).
      strides: stride of each stage's first block; its length is the number of stages.
      shortcut: ``"deepmad"`` (projection in every stage's first block, after a 2x2 average pool
        when strided) or ``"torchvision"`` (1x1 conv with the stride, only when the shape changes).
      stem_widths, widths, btns, kernels, depths: option grids (sorted).
      first_depth_max: largest depth of stage 1, or None for no limit.
      reference: where the skeleton comes from.
    """

    name: str
    resolution: int
    num_classes: int
    block: str
    stem_kernel: int
    stem_stride: int
    stem_maxpool: bool
    strides: tuple[int, ...]
    shortcut: str
    stem_widths: tuple[int, ...]
    widths: tuple[int, ...]
    btns: tuple[int, ...]
    kernels: tuple[int, ...]
    depths: tuple[int, ...]
    first_depth_max: int | None = None
    reference: str = ""

    def __post_init__(self) -> None:
        if self.block not in _BLOCKS or self.shortcut not in _SHORTCUTS:
            raise ValueError(
                f"skeleton {self.name!r}: block must be one of {_BLOCKS}, shortcut one of {_SHORTCUTS}"
            )
        grids = (self.stem_widths, self.widths, self.kernels, self.depths)
        if not all(grids) or any(list(g) != sorted(set(g)) for g in (*grids, self.btns)):
            raise ValueError(f"skeleton {self.name!r}: option grids must be non-empty, sorted and distinct")
        # The guarantees behind "options are never empty" (module docstring).
        if self.widths[0] < _MIN_BTN:
            raise ValueError(f"skeleton {self.name!r}: widths must be >= {_MIN_BTN}")
        if self.block == "bottleneck" and not set(self.widths) <= set(self.btns):
            raise ValueError(f"skeleton {self.name!r}: every width must also be a bottleneck option")
        if self.first_depth_max is not None and self.depths[0] > self.first_depth_max:
            raise ValueError(f"skeleton {self.name!r}: no depth option <= {self.first_depth_max}")


def _deepmad_skeleton(
    name: str, resolution: int, num_classes: int, stem_stride: int, strides: tuple[int, ...], reference: str
) -> Skeleton:
    return Skeleton(
        name=name,
        resolution=resolution,
        num_classes=num_classes,
        block="bottleneck",
        stem_kernel=3,
        stem_stride=stem_stride,
        stem_maxpool=False,
        strides=strides,
        shortcut="deepmad",
        stem_widths=tuple(range(16, 65, 8)),
        widths=tuple(range(16, 2049, 8)),
        btns=tuple(range(8, 2049, 8)),
        kernels=(3, 5),
        depths=tuple(range(1, 17)),
        first_depth_max=3,
        reference=reference,
    )


def _torchvision_skeleton(name: str, block: str, reference: str) -> Skeleton:
    return Skeleton(
        name=name,
        resolution=224,
        num_classes=1000,
        block=block,
        stem_kernel=7,
        stem_stride=2,
        stem_maxpool=True,
        strides=(1, 2, 2, 2),
        shortcut="torchvision",
        stem_widths=tuple(range(16, 65, 8)),
        widths=tuple(range(16, 2049, 8)),
        btns=tuple(range(8, 2049, 8)) if block == "bottleneck" else (),
        kernels=(3,),
        depths=tuple(range(1, 37)),
        reference=reference,
    )


SKELETONS: dict[str, Skeleton] = {
    s.name: s
    for s in (
        _deepmad_skeleton(
            "imagenet", 224, 1000, 2, (2, 2, 2, 1, 2), "Shen et al. 2023; TinyNAS space_k1kxk1"
        ),
        _deepmad_skeleton("cifar", 32, 10, 1, (1, 2, 2, 1, 2), "DeepMAD choices on a CIFAR-size input"),
        Skeleton(
            name="small",
            resolution=28,
            num_classes=10,
            block="basic",
            stem_kernel=3,
            stem_stride=1,
            stem_maxpool=False,
            strides=(2, 2, 2),
            shortcut="torchvision",
            stem_widths=(8, 16, 24, 32),
            widths=tuple(range(8, 41, 8)),
            btns=(),
            kernels=(3,),
            depths=(1, 2, 3),
            reference="He et al. 2016, Sec. 4.2 (CIFAR ResNets), at 28 px",
        ),
        _torchvision_skeleton("torchvision-basic", "basic", "He et al. 2016 (ResNet-18/34); torchvision"),
        _torchvision_skeleton(
            "torchvision-bottleneck", "bottleneck", "He et al. 2016 (ResNet-50+); torchvision v1.5"
        ),
    )
}
"""Skeletons by name (variant table, big_vision style)."""


# --- per-block costs (pure, cached: the MILP and `costs` share them) ----------------------------
# Blocks are counted in closed form on plain ints and a stage builds one `Costs`, instead of
# composing `conv2d` results with `+` and `.holding`: on random architectures nearly every block is
# new, and the composition built ~100 `Costs` objects per architecture (~350 us) where this builds
# ~12 (~65 us). tests/search_spaces/test_resnet.py checks the closed form against that composition.
_Terms = tuple[int, int, int, int, int]
"""(macs, params, weight_bytes, activation_bytes, layers), as in `Costs`."""


def _packed_bytes(n_weights: int, c_out: int, bits: int) -> int:
    """Weight bytes of a conv + BN, as `nasx.costs.conv2d` counts them (BN stays float32)."""
    return weight_tensor_bytes(n_weights, c_out, bits) + FLOAT_BYTES * 2 * c_out


@functools.cache
def _block_terms(
    block: str,
    c_in: int,
    c_out: int,
    btn: int,
    kernel: int,
    stride: int,
    in_size: int,
    bits: int,
    projection: bool,
    shortcut_style: str,
) -> _Terms:
    out = out_size(in_size, kernel, stride)
    hw_in, hw_out = in_size * in_size, out * out
    x, y = c_in * hw_in, c_out * hw_out  # block input and output (float32 values)
    if block == "bottleneck":
        n1, n2, n3 = c_in * btn, btn * btn * kernel * kernel, btn * c_out
        macs = n1 * hw_in + (n2 + n3) * hw_out
        params = n1 + n2 + n3 + 2 * (2 * btn + c_out)
        weight_bytes = (
            _packed_bytes(n1, btn, bits) + _packed_bytes(n2, btn, bits) + _packed_bytes(n3, c_out, bits)
        )
        # conv1 reads x (held for the residual), conv2 and conv3 run while x stays alive.
        t1, t2 = btn * hw_in, btn * hw_out
        peak = max(x + t1 + t2, x + t2 + y)
        layers = 3
    else:
        n1, n2 = c_in * c_out * kernel * kernel, c_out * c_out * kernel * kernel
        macs = (n1 + n2) * hw_out
        params = n1 + n2 + 4 * c_out
        weight_bytes = _packed_bytes(n1, c_out, bits) + _packed_bytes(n2, c_out, bits)
        peak = x + 2 * y
        layers = 2
    if projection:  # 1x1 conv + BN, computed after the main path while its output y is held
        macs += c_in * c_out * hw_out
        params += c_in * c_out + 2 * c_out
        weight_bytes += _packed_bytes(c_in * c_out, c_out, bits)
        if shortcut_style == "deepmad" and stride != 1:  # AvgPool 2x2 s2 first
            pooled = c_in * hw_out
            peak = max(peak, y + x + pooled, y + pooled + y)
        else:  # torchvision's strided 1x1 conv, or deepmad's at stride 1
            peak = max(peak, y + x + y)
    return macs, params, weight_bytes, FLOAT_BYTES * peak, layers


def _costs(terms: _Terms) -> Costs:
    macs, params, weight_bytes, activation_bytes, layers = terms
    return Costs(
        macs=macs, params=params, weight_bytes=weight_bytes, activation_bytes=activation_bytes, layers=layers
    )


@functools.cache
def bottleneck_costs(
    c_in: int,
    c_out: int,
    btn: int,
    kernel: int,
    stride: int,
    in_size: int,
    bits: int,
    projection: bool,
    shortcut_style: str,
) -> Costs:
    """One bottleneck block: 1x1 c_in->btn, k x k btn->btn (stride), 1x1 btn->c_out, BN after each.

    Args:
      c_in, c_out, btn: input, output and bottleneck channels.
      kernel, stride: of the k x k conv.
      in_size: input side in pixels.
      bits: weight bits of every conv of the block.
      projection: whether the shortcut is a 1x1 conv + BN (else identity).
      shortcut_style: ``"deepmad"`` (2x2 average pool if strided, then the 1x1 conv) or
        ``"torchvision"`` (1x1 conv with the stride); see `Skeleton`.

    Memory: the block input stays alive until the residual add; a projection is computed after the
    main path, while the main path's output is held. ``layers`` = 3 (projections count 0).
    Cached (pure).
    """
    return _costs(
        _block_terms(
            "bottleneck", c_in, c_out, btn, kernel, stride, in_size, bits, projection, shortcut_style
        )
    )


@functools.cache
def basic_costs(
    c_in: int,
    c_out: int,
    kernel: int,
    stride: int,
    in_size: int,
    bits: int,
    projection: bool,
    shortcut_style: str,
) -> Costs:
    """One basic block (torchvision BasicBlock): k x k c_in->c_out (stride), k x k c_out->c_out,
    BN after each. Arguments and memory as in `bottleneck_costs`; ``layers`` = 2. Cached (pure)."""
    return _costs(
        _block_terms("basic", c_in, c_out, 0, kernel, stride, in_size, bits, projection, shortcut_style)
    )


@functools.cache
def stage_costs(
    block: str,
    c_in: int,
    c_out: int,
    btn: int,
    kernel: int,
    depth: int,
    stride: int,
    in_size: int,
    bits: int,
    shortcut_style: str,
) -> Costs:
    """One stage of `depth` blocks of kind `block` (`btn` is ignored for basic blocks).

    A stage is its first block, which depends on the previous stage's width `c_in` and carries the
    stride and the projection shortcut, followed by ``depth - 1`` identical inner blocks
    c_out -> c_out at stride 1 with identity shortcuts. A MILP can precompute ``first`` per
    (c_in, c_out, btn, kernel) and ``inner`` per (c_out, btn, kernel) with `bottleneck_costs` /
    `basic_costs`: the stage equals ``first + (depth - 1) * inner``.
    """
    projection = shortcut_style == "deepmad" or c_in != c_out or stride != 1
    btn = btn if block == "bottleneck" else 0
    first = _block_terms(block, c_in, c_out, btn, kernel, stride, in_size, bits, projection, shortcut_style)
    if depth == 1:
        return _costs(first)
    out, n = out_size(in_size, kernel, stride), depth - 1
    inner = _block_terms(block, c_out, c_out, btn, kernel, 1, out, bits, False, shortcut_style)
    return Costs(
        macs=first[0] + n * inner[0],
        params=first[1] + n * inner[1],
        weight_bytes=first[2] + n * inner[2],
        activation_bytes=max(first[3], inner[3]),
        layers=first[4] + n * inner[4],
    )


def _pool(channels: int, in_size: int, out: int) -> Costs:
    """A parameter-free pool: only its input and output are alive."""
    return Costs(activation_bytes=FLOAT_BYTES * channels * (in_size * in_size + out * out))


@functools.cache
def _stem_costs(width: int, kernel: int, stride: int, maxpool: bool, in_size: int, bits: int) -> Costs:
    stem = conv2d(3, width, kernel, in_size, stride=stride, bits=bits)
    if maxpool:  # 3x3 s2 pad 1: output ceil(in / 2), like a SAME pool
        side = out_size(in_size, kernel, stride)
        stem += _pool(width, side, out_size(side, 3, 2))
    return stem


@functools.cache
def _head_costs(width: int, in_size: int, num_classes: int, bits: int) -> Costs:
    return _pool(width, in_size, 1) + dense(width, num_classes, bits=bits)


# --- the space ----------------------------------------------------------------------------------
def _window(grid: tuple[int, ...], lo: int, hi: int) -> tuple[int, ...]:
    """The options of sorted `grid` in [lo, hi]."""
    return grid[bisect.bisect_left(grid, lo) : bisect.bisect_right(grid, hi)]


def _btn_bounds(width: int) -> tuple[int, int]:
    return max(_MIN_BTN, 8 * (width // 80)), width


@final
@dataclass(frozen=True)
class ResNetSpace(AbstractSearchSpace):
    """A ResNet macro space on one skeleton (see the module docstring).

    Attributes:
      skeleton: the fixed part and the option grids.
      bits: weight bit-widths to choose from; ``(32,)`` means no quantization choice.
      name: family name.
    """

    skeleton: Skeleton
    bits: tuple[int, ...] = (4, 8, 16, 32)
    name: str = "resnet"

    @property
    def variant(self) -> str:
        """The skeleton's name."""
        return self.skeleton.name

    @property
    def resolution(self) -> int:
        """Deployment input side in pixels (the skeleton's)."""
        return self.skeleton.resolution

    @property
    def num_classes(self) -> int:
        return self.skeleton.num_classes

    @property
    def num_stages(self) -> int:
        return len(self.skeleton.strides)

    @functools.cached_property
    def choices(self) -> tuple[Choice, ...]:
        sk, n = self.skeleton, self.num_stages
        quantized = self.bits != (32,)
        default_bits = 32 if 32 in self.bits else None

        def bits_choice(name: str, what: str) -> tuple[Choice, ...]:
            return (Choice(name, self.bits, default_bits, f"weight bits of {what}"),) if quantized else ()

        out = [Choice("stem.width", sk.stem_widths, doc="output channels of the stem conv")]
        out += bits_choice("bits.stem", "the stem conv")
        for i in range(1, n + 1):
            if i == 1:
                rule = "output channels of stage 1 (any grid width)"
            elif i < n:
                rule = f"output channels of stage {i}: s{i - 1}.width <= width <= 4 * s{i - 1}.width"
            else:
                rule = f"output channels of the last stage: width <= 4 * s{i - 1}.width (may be narrower)"
            out.append(Choice(f"s{i}.width", sk.widths, doc=rule))
            if sk.block == "bottleneck":
                rule = f"bottleneck channels of stage {i}: max(8, 8 * floor(s{i}.width / 80)) <= btn <= s{i}.width"
                out.append(Choice(f"s{i}.btn", sk.btns, doc=rule))
            out.append(Choice(f"s{i}.kernel", sk.kernels, doc=f"kernel of the k x k convs of stage {i}"))
            rule = f"residual blocks in stage {i}"
            if i == 1 and sk.first_depth_max is not None:
                rule += f" (at most {sk.first_depth_max} in stage 1, TinyNAS rule)"
            out.append(Choice(f"s{i}.depth", sk.depths, doc=rule))
            out += bits_choice(f"s{i}.bits", f"every conv of stage {i}")
        out += bits_choice("bits.head", "the classifier")
        return tuple(out)

    @functools.cached_property
    def nesting(self) -> dict[str, str]:
        """How each choice orders subnets sharing the supernet's weights (`nasx.export.sorted.nests`).

        ``"prefix"``: a smaller option runs on a part of a larger one's weights: a prefix of the
        channels (stem, stage and bottleneck widths), the centre of the kernel, the first blocks
        of a stage (depth). Choices not listed (bits) must be equal.
        """
        return {c.name: "prefix" for c in self.choices if "bits" not in c.name.split(".")}

    @functools.cached_property
    def _rules(self) -> dict[str, tuple[str, int]]:
        """Constrained choice name -> (kind, stage)."""
        rules = {}
        for i in range(1, self.num_stages + 1):
            rules[f"s{i}.width"] = ("width", i)
            rules[f"s{i}.btn"] = ("btn", i)
        if self.skeleton.first_depth_max is not None:
            rules["s1.depth"] = ("depth", 1)
        return rules

    def _width_bounds(self, stage: int, prev: int) -> tuple[int, int]:
        """[lo, hi] of stage `stage` >= 2's width given the previous stage's width."""
        lo = prev if stage < self.num_stages else 0
        return lo, 4 * prev

    def options(self, choice: Choice, arch: Mapping[str, Value]) -> tuple[Value, ...]:
        # Never empty for a valid prefix (module docstring), so sampling walks once without rejection.
        rule = self._rules.get(choice.name)
        if rule is None:
            return choice.options
        kind, i = rule
        if kind == "width":
            if i == 1:
                return choice.options
            return _window(choice.options, *self._width_bounds(i, arch[f"s{i - 1}.width"]))
        if kind == "btn":
            return _window(choice.options, *_btn_bounds(arch[f"s{i}.width"]))
        return _window(choice.options, 0, self.skeleton.first_depth_max)

    @functools.cached_property
    def _keys(self) -> tuple[tuple[str, str, str, str, str], ...]:
        return tuple(
            (f"s{i}.width", f"s{i}.btn", f"s{i}.kernel", f"s{i}.depth", f"s{i}.bits")
            for i in range(1, self.num_stages + 1)
        )

    def costs(self, arch: Arch, resolution: int | None = None) -> Costs:
        sk = self.skeleton
        size = resolution or sk.resolution
        c_in = arch["stem.width"]
        total = _stem_costs(
            c_in, sk.stem_kernel, sk.stem_stride, sk.stem_maxpool, size, arch.get("bits.stem", 32)
        )
        size = out_size(size, sk.stem_kernel, sk.stem_stride)
        if sk.stem_maxpool:
            size = out_size(size, 3, 2)
        for (w_key, btn_key, k_key, d_key, b_key), stride in zip(self._keys, sk.strides, strict=True):
            c_out, kernel = arch[w_key], arch[k_key]
            total += stage_costs(
                sk.block,
                c_in,
                c_out,
                arch.get(btn_key, 0),
                kernel,
                arch[d_key],
                stride,
                size,
                arch.get(b_key, 32),
                sk.shortcut,
            )
            size, c_in = out_size(size, kernel, stride), c_out
        return total + _head_costs(c_in, size, sk.num_classes, arch.get("bits.head", 32))

    # Piecewise prices for solvers that pose the search as a program over per-option constants
    # (solvers.mp). For macs, params, weight_bytes and layers (activation_bytes is a peak, not a
    # sum), `costs` of an architecture equals
    #     stem_costs(stem.width) + sum_i (first_i + (s{i}.depth - 1) * inner_i) + head_costs(s{n}.width)
    # with (first_i, inner_i) = stage_terms(i, s{i-1}.width or stem.width, s{i}.width, ...).
    def stem_costs(self, width: int, *, resolution: int | None = None, bits: int = 32) -> Costs:
        """Costs of the stem (its conv, and max pool on torchvision skeletons) with `width` channels."""
        sk = self.skeleton
        return _stem_costs(
            width, sk.stem_kernel, sk.stem_stride, sk.stem_maxpool, resolution or sk.resolution, bits
        )

    def stage_terms(
        self,
        stage: int,
        c_in: int,
        c_out: int,
        btn: int,
        kernel: int,
        *,
        resolution: int | None = None,
        bits: int = 32,
    ) -> tuple[Costs, Costs]:
        """(first block, one inner block) of stage `stage` (1-based); see `stage_costs`.

        The stage costs ``first + (depth - 1) * inner``; only `first` depends on `c_in` (the
        previous stage's width, or the stem's). `btn` is ignored for basic blocks.
        """
        sk = self.skeleton
        size, stride = self._stage_input_side(stage, resolution), sk.strides[stage - 1]
        projection = sk.shortcut == "deepmad" or c_in != c_out or stride != 1
        btn = btn if sk.block == "bottleneck" else 0
        first = _block_terms(sk.block, c_in, c_out, btn, kernel, stride, size, bits, projection, sk.shortcut)
        out = out_size(size, kernel, stride)
        inner = _block_terms(sk.block, c_out, c_out, btn, kernel, 1, out, bits, False, sk.shortcut)
        return _costs(first), _costs(inner)

    def head_costs(self, width: int, *, resolution: int | None = None, bits: int = 32) -> Costs:
        """Costs of the head (global pool and classifier) after a last stage of `width` channels."""
        size = self._stage_input_side(self.num_stages + 1, resolution)
        return _head_costs(width, size, self.skeleton.num_classes, bits)

    def _stage_input_side(self, stage: int, resolution: int | None) -> int:
        """Input side in px of stage `stage` (``num_stages + 1``: the head's input)."""
        sk = self.skeleton
        size = out_size(resolution or sk.resolution, sk.stem_kernel, sk.stem_stride)
        if sk.stem_maxpool:
            size = out_size(size, 3, 2)
        for stride in sk.strides[: stage - 1]:
            size = out_size(size, 3, stride)  # SAME padding: the side does not depend on the kernel
        return size

    def size(self) -> int:
        """Exact count: a DP over stages keyed by the previous stage's width."""
        sk, n = self.skeleton, self.num_stages
        n_bits = len(self.bits) if self.bits != (32,) else 1
        widths = sk.widths

        def per_width(stage: int, w: int) -> int:
            """Choices of a stage given its width: btn x kernel x depth x bits."""
            n_btn = len(_window(sk.btns, *_btn_bounds(w))) if sk.block == "bottleneck" else 1
            depths = sk.depths
            if stage == 1 and sk.first_depth_max is not None:
                depths = _window(depths, 0, sk.first_depth_max)
            return n_btn * len(sk.kernels) * len(depths) * n_bits

        counts = [per_width(1, w) for w in widths]
        for stage in range(2, n + 1):
            # Spread each previous width's count over the window of widths it allows (difference array).
            delta = [0] * (len(widths) + 1)
            for prev, c in zip(widths, counts, strict=True):
                lo, hi = self._width_bounds(stage, prev)
                delta[bisect.bisect_left(widths, lo)] += c
                delta[bisect.bisect_right(widths, hi)] -= c
            reach = itertools.accumulate(delta[:-1])
            counts = [r * per_width(stage, w) for r, w in zip(reach, widths, strict=True)]
        return sum(counts) * len(sk.stem_widths) * n_bits * n_bits


def space(skeleton: str = "imagenet", *, bits: tuple[int, ...] = (4, 8, 16, 32)) -> ResNetSpace:
    """The ResNet space on a named skeleton (`SKELETONS`).

    Raises:
      UnknownSpaceError: `skeleton` is not in `SKELETONS`.
    """
    if skeleton not in SKELETONS:
        raise UnknownSpaceError(
            f'resnet: unknown skeleton "{skeleton}"; expected one of {", ".join(SKELETONS)}'
        )
    return ResNetSpace(SKELETONS[skeleton], bits=tuple(bits))


# --- TinyNAS's FLOPs convention -----------------------------------------------------------------
def _tinynas_block_flops(c_in: int, c_out: int, btn: int, kernel: int, stride: int, in_size: int) -> int:
    """FLOPs of a TinyNAS ``ResK1KXK1`` main path: the three convs' MACs, 2 per output element
    of each BN and 1 per output element of each of the three ReLUs (the last one after the add)."""
    out = out_size(in_size, kernel, stride)
    hw_in, hw_out = in_size * in_size, out * out
    flops = (c_in * btn + 2 * btn + btn) * hw_in  # conv1 + BN + ReLU
    flops += (btn * btn * kernel * kernel + 2 * btn + btn) * hw_out  # conv2 + BN + ReLU
    flops += (btn * c_out + 2 * c_out + c_out) * hw_out  # conv3 + BN + ReLU after the add
    return flops


def tinynas_flops(arch: Arch, space_: ResNetSpace | None = None, resolution: int | None = None) -> int:
    """FLOPs of a DeepMAD-skeleton architecture as TinyNAS counts them, for comparing with the
    DeepMAD paper and README (nasx's own `Costs.macs` counts conv and FC MACs only).

    TinyNAS's counter (``CnnNet.get_flops`` over ``ConvKXBNRELU`` and ``ResK1KXK1``, see
    ``tinynas/models/blocks_cnn_2d/{blocks_basic,super_res_k1kxk1}.py``) charges, besides conv MACs:
    2 per output element of every BN, 1 per output element of every ReLU, 1 per input element of
    the stride-2 residual average pool, and 1 per output element for the residual add, which it
    counts only in blocks with a projection shortcut (the first block of each stage). The backbone
    it measures has no classifier, so the FC is not counted.

    Args:
      arch: a valid architecture of `space_`.
      space_: a space on a DeepMAD skeleton (default: ``space("imagenet")``).
      resolution: input side in pixels (default: the skeleton's).

    Raises:
      ValueError: the space's skeleton is not a DeepMAD one (bottleneck blocks, deepmad shortcuts).
    """
    sk = (space_ or space()).skeleton
    if sk.block != "bottleneck" or sk.shortcut != "deepmad" or sk.stem_maxpool:
        raise ValueError(f'tinynas_flops: skeleton "{sk.name}" is not a DeepMAD skeleton')
    size = out_size(resolution or sk.resolution, sk.stem_kernel, sk.stem_stride)
    c_in = arch["stem.width"]
    flops = (3 * sk.stem_kernel**2 + 2 + 1) * c_in * size * size  # ConvKXBNRELU: conv + BN + ReLU
    for i, stride in enumerate(sk.strides, start=1):
        c_out, btn, kernel, depth = (arch[f"s{i}.{k}"] for k in ("width", "btn", "kernel", "depth"))
        out = out_size(size, kernel, stride)
        flops += _tinynas_block_flops(c_in, c_out, btn, kernel, stride, size)
        flops += (c_in * c_out + 2 * c_out + c_out) * out * out  # projection conv + BN, the add
        if stride == 2:
            flops += c_in * size * size  # residual average pool
        flops += (depth - 1) * _tinynas_block_flops(c_out, c_out, btn, kernel, 1, out)
        size, c_in = out, c_out
    return flops


# --- presets ------------------------------------------------------------------------------------
def _arch(stem: int, stages: list[tuple[int, int | None, int, int]]) -> dict[str, Value]:
    """Arch values from a stem width and per-stage (width, btn or None, kernel, depth)."""
    values: dict[str, Value] = {"stem.width": stem}
    for i, (width, btn, kernel, depth) in enumerate(stages, start=1):
        values.update({f"s{i}.width": width, f"s{i}.kernel": kernel, f"s{i}.depth": depth})
        if btn is not None:
            values[f"s{i}.btn"] = btn
    return values


def _presets() -> dict[str, Preset]:
    basic, bottleneck, imagenet = space("torchvision-basic"), space("torchvision-bottleneck"), space()
    tv_widths, tv = (64, 128, 256, 512), "He et al. 2016; torchvision models.resnet"

    def tv_basic(depths):
        return _arch(64, [(w, None, 3, d) for w, d in zip(tv_widths, depths, strict=True)])

    def tv_bottleneck(depths):
        return _arch(64, [(4 * w, w, 3, d) for w, d in zip(tv_widths, depths, strict=True)])

    table = {
        "resnet-18": (basic, tv_basic((2, 2, 2, 2)), tv),
        "resnet-34": (basic, tv_basic((3, 4, 6, 3)), tv),
        "resnet-50": (bottleneck, tv_bottleneck((3, 4, 6, 3)), tv + " (v1.5)"),
        "resnet-101": (bottleneck, tv_bottleneck((3, 4, 23, 3)), tv + " (v1.5)"),
        "resnet-152": (bottleneck, tv_bottleneck((3, 8, 36, 3)), tv + " (v1.5)"),
        # TinyNAS configs/classification/models/deepmad-R{18,34,50}.txt @ 8ccaf889.
        "deepmad-r18": (
            imagenet,
            _arch(
                32, [(96, 40, 5, 1), (384, 40, 5, 6), (384, 64, 5, 9), (1024, 104, 3, 10), (672, 104, 5, 12)]
            ),
            "Shen et al. 2023; TinyNAS deepmad-R18.txt",
        ),
        "deepmad-r34": (
            imagenet,
            _arch(
                24,
                [(128, 24, 5, 1), (512, 48, 5, 10), (896, 88, 5, 13), (1024, 104, 5, 11), (616, 128, 5, 14)],
            ),
            "Shen et al. 2023; TinyNAS deepmad-R34.txt",
        ),
        "deepmad-r50": (
            imagenet,
            _arch(
                32,
                [(128, 40, 5, 1), (512, 48, 5, 11), (872, 88, 5, 12), (1024, 104, 5, 13), (1232, 120, 5, 15)],
            ),
            "Shen et al. 2023; TinyNAS deepmad-R50.txt",
        ),
    }
    return {name: Preset(name, s, s.validate(values), ref) for name, (s, values, ref) in table.items()}


PRESETS: dict[str, Preset] = _presets()
