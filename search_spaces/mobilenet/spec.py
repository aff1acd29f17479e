"""MBConv search space of Once-for-All / MobileNetV3: depth, kernel, expansion, SE and bits.

A network is a fixed stem (3x3 conv) and first block (MBConv, expansion 1, kernel 3), a tuple of
searchable stages of MBConv blocks with fixed output widths, and a fixed head (1x1 expansion conv,
global average pool, optional "feature mix" 1x1 conv, classifier). Per stage the search picks a
depth and whether every block has squeeze-excitation (SE); per block a kernel (3, 5, 7), an
expansion ratio (3, 4, 6) and weight bits; per network the input resolution and the bits of stem
and head. The macro structure is a *skeleton* (`SKELETONS`):

* ``imagenet`` (default): the OFA MobileNetV3 space at width 1.2 (stages 32, 48, 96, 136, 192);
* ``cifar``: the same stages and choices on 32 px CIFAR-10 (stem stride 1, first stage stride 1),
  so that an architecture searched on CIFAR transfers to ImageNet and is budgeted there;
* ``mobilenet-v2``: MobileNetV2 1.0 (stages 24, 32, 64, 96, 160, 320; ReLU6, depths 1-4);
* ``efficientnet-b0``: EfficientNet-B0 (stages 24, 40, 80, 112, 192, 320; swish; SE squeezing
  to a quarter of the block input, also in the first block);
* ``small``: sized for 28-32 px images (Fashion-MNIST, digits) and supernet training on a CPU,
  stride-2 stem and four stages 16, 24, 40, 56 at 14, 14, 7 and 4 px, depths 1-3, expansions
  2, 3, 4, 6, head 256, no feature mix; costs at a fixed 28 px, from 1.5M MACs (34K params) to
  19.3M MACs (575K params). Its choices are not those of the others (four stages, other depths
  and expansions): an architecture does not transfer to them.

Choices, in order (``D`` = a stage's largest depth):

* ``resolution``: deployment input side in px (128, 132, ..., 256; default 224);
* ``bits.stem``: weight bits of the stem conv and the fixed first block;
* per stage s: ``s{s}.depth``, ``s{s}.se``, then ``s{s}.b{j}.kernel``, ``s{s}.b{j}.expand``,
  ``s{s}.b{j}.bits`` for j = 1..D; block j's choices exist only when ``s{s}.depth >= j``;
* ``bits.head``: weight bits of the final expansion conv, the feature mix and the classifier.

A width multiplier (``space(..., width_mult=0.5)``) scales every fixed width of the skeleton (stem,
first block, stages, head) by the MobileNet rule ``make_divisible(width * width_mult, 8)``, as in
MobileNetV2/V3 and OFA; the choices do not depend on it, so an architecture transfers between
widths, and the costs follow the scaled widths. It makes CPU-sized proxy supernets.

Bits choices default to 32 and are omitted when ``bits == (32,)``. The ``cifar`` skeleton carries
the ``resolution`` choice (so its choices equal ``imagenet``'s) but its costs are at its fixed
32 px: the choice only matters once the architecture is deployed on the ``imagenet`` skeleton.
``small`` has the one option 28 (its fixed resolution); its supernet and networks run on any
input side (a 32 px input too), and their costs stay those at 28 px.

Costs are a sum of per-block terms (`mbconv_costs`) plus stem and head, so pricing an
architecture takes microseconds and the MP solver can treat per-block costs as constants.
Presets (`PRESETS`) reproduce torchvision's MobileNetV2 and EfficientNet-B0 parameter counts
exactly and the OFA-595M net's published MACs and parameters.

References:
  Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018.
  Howard et al., "Searching for MobileNetV3", ICCV 2019.
  Cai et al., "Once-for-All: Train One Network and Specialize it for Efficient Deployment",
  ICLR 2020 (the space; mit-han-lab/once-for-all ``ofa/imagenet_classification``).
  Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML 2019.
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

from nasx.costs import FLOAT_BYTES, Block, Costs, conv2d, dense, out_size
from nasx.errors import UnknownSpaceError
from nasx.space import AbstractSearchSpace, Arch, Choice, Preset, Value
from search_spaces.mobilenet.blocks import distinct_blocks, fixed_blocks, network_blocks, option_block
from search_spaces.mobilenet.skeletons import (
    ACTIVATIONS,
    SKELETONS,
    Skeleton,
    Stage,
    make_divisible,
    scale_widths,
    squeeze_width,
)

if TYPE_CHECKING:
    from nasx.hardware.latency import LatencyTable

__all__ = [
    "ACTIVATIONS",
    "Stage",
    "Skeleton",
    "SKELETONS",
    "MobileNetSpace",
    "space",
    "mbconv_costs",
    "make_divisible",
    "squeeze_width",
    "scale_widths",
    "PRESETS",
]


@functools.cache
def _mbconv_terms(
    c_in: int, c_out: int, kernel: int, expand: int, stride: int, se: bool, bits: int, se_squeeze: str
) -> tuple[int, int, int, int, int, int, tuple[tuple[int, int, int], ...]]:
    """The resolution-free form of `mbconv_costs`.

    Returns ``(params, weight_bytes, layers, macs_in, macs_out, macs_fixed, live)``: the block's
    MACs are ``macs_in * in_px + macs_out * out_px + macs_fixed`` (pixel counts of its input and
    output), and each ``(a, b, c)`` of `live` gives the activation bytes alive during one layer as
    ``a * in_px + b * out_px + c``; the block's peak is their maximum. This holds because every
    conv of the block is 1x1 or depthwise (MACs = weights x output pixels) or an SE conv on a
    pooled vector.
    """
    mid = c_in * expand
    depthwise = conv2d(mid, mid, kernel, 1, stride=stride, groups=mid, bits=bits)
    projection = conv2d(mid, c_out, 1, 1, bits=bits)
    parts = [depthwise, projection]
    macs_in = macs_fixed = squeeze = 0
    if expand > 1:
        parts.append(conv2d(c_in, mid, 1, 1, bits=bits))
        macs_in = parts[-1].macs
    if se:
        squeeze = squeeze_width(c_in, mid, se_squeeze)
        excite = conv2d(mid, squeeze, 1, 1, bits=bits, bias=True, bn=False, layers=0)
        scale = conv2d(squeeze, mid, 1, 1, bits=bits, bias=True, bn=False, layers=0)
        parts += [excite, scale]
        macs_fixed = excite.macs + scale.macs
    held = c_in if stride == 1 and c_in == c_out else 0  # residual: the block input waits for the add
    if expand > 1:  # the first layer reads the block input itself, so it holds nothing extra
        live = [(c_in + mid, 0, 0), (held + mid, mid, 0)]
    else:
        live = [(mid, mid, 0)]
    if se:
        live.append((held, mid, mid + squeeze))  # the depthwise output waits to be rescaled
    live.append((held, mid + c_out, 0))
    return (
        sum(p.params for p in parts),
        sum(p.weight_bytes for p in parts),
        sum(p.layers for p in parts),
        macs_in,
        depthwise.macs + projection.macs,
        macs_fixed,
        tuple((FLOAT_BYTES * a, FLOAT_BYTES * b, FLOAT_BYTES * c) for a, b, c in live),
    )


@functools.cache  # pure; the MP solver reuses it
def mbconv_costs(
    c_in: int,
    c_out: int,
    kernel: int,
    expand: int,
    stride: int,
    se: bool,
    in_size: int,
    bits: int,
    se_squeeze: str = "mid",
) -> Costs:
    """Costs of one MBConv (inverted residual) block on an `in_size` px input.

    The block: 1x1 expansion to ``mid = c_in * expand`` + BN + act (absent if ``expand == 1``);
    depthwise ``kernel`` x ``kernel`` conv, stride `stride` + BN + act; if `se`, squeeze-excitation
    (1x1 conv with bias to the squeeze width, ReLU, 1x1 conv with bias back to ``mid``,
    hard-sigmoid); 1x1 linear projection to `c_out` + BN; identity shortcut when ``stride == 1``
    and ``c_in == c_out`` (the block input stays alive until the add). It counts 3 layers with
    an expansion conv and 2 without; SE layers count 0. All weights are at `bits`.

    With fixed stage widths a network's cost is a sum of these per-block terms plus the stem and
    head, so the MP solver can take them as constants per (stage, block position, block option).
    `MobileNetSpace.costs` adds up exactly these terms (from the same resolution-free form,
    without building a `Costs` per block).

    Args:
      c_in, c_out: input and output channels.
      kernel: depthwise kernel side.
      expand: expansion ratio (1 = no expansion conv).
      stride: depthwise stride.
      se: whether the block has squeeze-excitation.
      in_size: input side in px.
      bits: weight bits of every layer of the block.
      se_squeeze: ``"mid"`` (make_divisible(mid / 4, 8)) or ``"input"`` (max(1, c_in // 4)).
    """
    params, weight_bytes, layers, macs_in, macs_out, macs_fixed, live = _mbconv_terms(
        c_in, c_out, kernel, expand, stride, se, bits, se_squeeze
    )
    in_px, out_px = in_size * in_size, out_size(in_size, kernel, stride) ** 2
    return Costs(
        macs=macs_in * in_px + macs_out * out_px + macs_fixed,
        params=params,
        weight_bytes=weight_bytes,
        activation_bytes=max(a * in_px + b * out_px + c for a, b, c in live),
        layers=layers,
    )


@functools.cache
def _stem_costs(
    stem_width: int,
    stem_stride: int,
    first_width: int,
    first_stride: int,
    first_se: bool,
    rule: str,
    size: int,
    bits: int,
) -> tuple[Costs, int]:
    """Stem conv + fixed first block (MBConv, expansion 1, kernel 3), and the side they output."""
    stem = conv2d(3, stem_width, 3, size, stride=stem_stride, bits=bits)
    size = out_size(size, 3, stem_stride)
    first = mbconv_costs(stem_width, first_width, 3, 1, first_stride, first_se, size, bits, rule)
    return stem + first, out_size(size, 3, first_stride)


@functools.cache
def _head_costs(
    c_in: int, head_width: int, mix_width: int, mix_bias: bool, num_classes: int, size: int, bits: int
) -> Costs:
    """Final expansion conv, global pool, feature mix (if `mix_width`) and classifier."""
    head = conv2d(c_in, head_width, 1, size, bits=bits)
    features = head_width
    if mix_width:
        head += conv2d(features, mix_width, 1, 1, bits=bits, bias=mix_bias, bn=False)
        features = mix_width
    return head + dense(features, num_classes, bits=bits)


@dataclass(frozen=True)
class PlacedBlock:
    """One searchable MBConv block of an architecture's network, where it sits in it.

    `MobileNetSpace.placed_blocks` lists them; the latency blocks (`search_spaces.mobilenet.blocks`),
    the stitching segments (`search_spaces.stages`) and DeepMAD's formulas (`solvers.mp`) read
    the network from this one list.
    """

    stage: int  # 1-based
    c_in: int
    c_out: int
    kernel: int
    expand: int
    stride: int
    se: bool
    in_side_px: int
    bits: int
    act: str

    @property
    def out_side_px(self) -> int:
        return out_size(self.in_side_px, self.kernel, self.stride)


@final
@dataclass(frozen=True)
class MobileNetSpace(AbstractSearchSpace):
    """The MBConv space on one skeleton (see the module docstring for the choices).

    Attributes:
      skeleton: the fixed macro structure (a value of `SKELETONS` or a custom one).
      bits: weight bit-widths to choose from; ``(32,)`` means no quantization choice.
      name: family name.
      width_mult: multiplier of every fixed width of the skeleton (`scale_widths`); the choices
        do not depend on it, the costs (and the networks) follow `scaled`.
      latency: a measured latency table (`nasx.hardware.latency.attach`); with one, `costs` predicts
        ``latency_ms`` from the architecture's blocks (`search_spaces.mobilenet.blocks`).
    """

    skeleton: Skeleton
    bits: tuple[int, ...] = (4, 8, 16, 32)
    name: str = "mobilenet"
    width_mult: float = 1.0
    latency: LatencyTable | None = None

    def __post_init__(self) -> None:
        if not self.bits or min(self.bits) < 1:
            raise ValueError(f"mobilenet: bit-widths {self.bits} must be >= 1")
        if not self.width_mult > 0:
            raise ValueError(f"mobilenet: width multiplier {self.width_mult} must be > 0")

    @functools.cached_property
    def scaled(self) -> Skeleton:
        """The skeleton at `width_mult`: the fixed widths the network actually has."""
        return scale_widths(self.skeleton, self.width_mult)

    @property
    def variant(self) -> str:
        """The skeleton's name."""
        return self.skeleton.name

    @property
    def resolution(self) -> int:
        """Default deployment resolution in px (the fixed one for skeletons such as cifar)."""
        return self.skeleton.fixed_resolution or self.skeleton.default_resolution

    def input_side(self, arch: Mapping[str, Value] | None = None, resolution: int | None = None) -> int:
        """The input side in px costs apply at: `resolution` if given, else the skeleton's fixed
        one (cifar: the arch's choice is ignored), else the arch's ``resolution`` choice, else the
        skeleton's default."""
        sk = self.skeleton
        chosen = (arch or {}).get("resolution", sk.default_resolution)
        return int(resolution or sk.fixed_resolution or chosen)

    def placed_blocks(
        self, arch: Mapping[str, Value], resolution: int | None = None
    ) -> tuple[PlacedBlock, ...]:
        """The searchable blocks of a valid `arch`'s network, in order, at `input_side` px."""
        sk, out = self.scaled, []
        side, c_in = self.block_input_side(1, 1, self.input_side(arch, resolution)), sk.first_width
        for s, stage in enumerate(sk.stages, start=1):
            for j in range(1, int(arch[f"s{s}.depth"]) + 1):
                key = f"s{s}.b{j}"
                block = PlacedBlock(
                    s,
                    c_in,
                    stage.width,
                    int(arch[f"{key}.kernel"]),
                    int(arch[f"{key}.expand"]),
                    stage.stride if j == 1 else 1,
                    bool(arch[f"s{s}.se"]),
                    side,
                    int(arch.get(f"{key}.bits", 32)),
                    stage.act,
                )
                out.append(block)
                side, c_in = block.out_side_px, stage.width
        return tuple(out)

    @property
    def num_classes(self) -> int:
        return self.skeleton.num_classes

    def stem_costs(self, side_px: int, bits: int = 32) -> tuple[Costs, int]:
        """Stem conv + fixed first block at `side_px`, and the side they output."""
        sk = self.scaled
        return _stem_costs(
            sk.stem_width,
            sk.stem_stride,
            sk.first_width,
            sk.first_stride,
            sk.first_se,
            sk.se_squeeze,
            side_px,
            bits,
        )

    def head_costs(self, c_in: int, side_px: int, bits: int = 32) -> Costs:
        """Final expansion conv, pool, feature mix and classifier on `c_in` channels of `side_px`."""
        sk = self.scaled
        return _head_costs(c_in, sk.head_width, sk.mix_width, sk.mix_bias, sk.num_classes, side_px, bits)

    @functools.cached_property
    def choices(self) -> tuple[Choice, ...]:
        sk = self.skeleton
        quantized = self.bits != (32,)

        def bits(name: str, what: str) -> tuple[Choice, ...]:
            default = 32 if 32 in self.bits else None
            return (
                (Choice(name, self.bits, default=default, doc=f"weight bits of {what}"),) if quantized else ()
            )

        fixed = f"; costs use {sk.fixed_resolution} px" if sk.fixed_resolution else ""
        out = [
            Choice(
                "resolution", sk.resolutions, default=sk.default_resolution, doc=f"input side in px{fixed}"
            ),
            *bits("bits.stem", "the stem conv and the first block"),
        ]
        for s, stage in enumerate(sk.stages, start=1):
            out.append(Choice(f"s{s}.depth", stage.depths, doc=f"number of blocks of stage {s}"))
            out.append(
                Choice(f"s{s}.se", (False, True), doc=f"squeeze-excitation in every block of stage {s}")
            )
            for j in range(1, max(stage.depths) + 1):
                when = f"; exists only if s{s}.depth >= {j}"
                out.append(Choice(f"s{s}.b{j}.kernel", sk.kernels, doc=f"depthwise kernel side{when}"))
                out.append(Choice(f"s{s}.b{j}.expand", sk.expands, doc=f"expansion ratio{when}"))
                out.extend(bits(f"s{s}.b{j}.bits", f"block {j} of stage {s}{when}"))
        out.extend(bits("bits.head", "the final conv, feature mix and classifier"))
        return tuple(out)

    @functools.cached_property
    def _active_if(self) -> dict[str, tuple[str, int]]:
        """Block choice name -> (depth choice, least depth at which it exists)."""
        rules = {}
        for choice in self.choices:
            parts = choice.name.split(".")
            if len(parts) == 3:  # s{s}.b{j}.{field}
                rules[choice.name] = (f"{parts[0]}.depth", int(parts[1][1:]))
        return rules

    @functools.cached_property
    def _plan(self) -> tuple[tuple[int, int, str, str, dict[int, operator.itemgetter]], ...]:
        """Per stage: width, stride, depth and SE keys, and per depth a getter of the block values.

        The getter returns ``(kernel, expand, bits)`` of each block, flattened (kernel and expand
        only when bits are not a choice), so that `costs` reads an architecture in a few C calls.
        """
        fields = ("kernel", "expand", "bits") if self.bits != (32,) else ("kernel", "expand")
        plan = []
        for s, stage in enumerate(self.scaled.stages, start=1):
            getters = {
                depth: operator.itemgetter(
                    *(f"s{s}.b{j}.{field}" for j in range(1, depth + 1) for field in fields)
                )
                for depth in stage.depths
            }
            plan.append((stage.width, stage.stride, f"s{s}.depth", f"s{s}.se", getters))
        return tuple(plan)

    @functools.cached_property
    def nesting(self) -> dict[str, str]:
        """How each choice orders subnets sharing the supernet's weights (`nasx.export.sorted.nests`).

        ``"prefix"``: a smaller option runs on a part of a larger one's weights: fewer blocks
        (depth), a prefix of the mid channels (expand), the centre of the kernel, no SE before SE,
        a smaller input (resolution). ``"any"``: the weights do not depend on it (the resolution of
        a skeleton whose costs use a fixed one). Choices not listed (bits) must be equal.
        """
        rules = {c.name: "prefix" for c in self.choices if "bits" not in c.name.split(".")}
        if self.skeleton.fixed_resolution:
            rules["resolution"] = "any"
        return rules

    def options(self, choice: Choice, arch: Mapping[str, Value]) -> tuple[Value, ...]:
        rule = self._active_if.get(choice.name)
        if rule is not None and arch.get(rule[0], 0) < rule[1]:
            return ()
        return choice.options

    def size(self) -> int:
        sk = self.skeleton
        n_bits = len(self.bits) if self.bits != (32,) else 1
        per_block = len(sk.kernels) * len(sk.expands) * n_bits
        total = len(sk.resolutions) * n_bits**2
        for stage in sk.stages:
            total *= 2 * sum(per_block**d for d in stage.depths)
        return total

    def costs(self, arch: Arch, resolution: int | None = None) -> Costs:
        """Costs of a valid `arch` at `resolution` px.

        The resolution is `resolution` if given, else the arch's ``resolution`` choice, else (for
        a skeleton with a fixed resolution such as cifar, whose choice is then ignored) the fixed one.
        """
        sk = self.scaled
        values = arch.to_dict() if isinstance(arch, Arch) else dict(arch)
        size = self.input_side(values, resolution)
        stem, size = self.stem_costs(size, values.get("bits.stem", 32))
        macs, params, weight_bytes, peak, layers = (
            stem.macs,
            stem.params,
            stem.weight_bytes,
            stem.activation_bytes,
            stem.layers,
        )
        c_in, rule, terms = sk.first_width, sk.se_squeeze, _mbconv_terms
        quantized = self.bits != (32,)
        # mbconv_costs() per block, summed as plain ints: a Costs per (block, input size) would
        # make the first thousands of calls, with cold caches, several times slower.
        for width, stride, depth_key, se_key, getters in self._plan:
            se = values[se_key]
            picked = iter(getters[values[depth_key]](values))
            for kernel, expand, bits in zip(
                picked, picked, picked if quantized else itertools.repeat(32), strict=False
            ):
                block_params, block_bytes, block_layers, macs_in, macs_out, macs_fixed, live = terms(
                    c_in, width, kernel, expand, stride, se, bits, rule
                )
                in_px = size * size
                if stride != 1:
                    size, stride = out_size(size, kernel, stride), 1
                out_px = size * size
                macs += macs_in * in_px + macs_out * out_px + macs_fixed
                params += block_params
                weight_bytes += block_bytes
                layers += block_layers
                for a, b, c in live:
                    live_bytes = a * in_px + b * out_px + c
                    if live_bytes > peak:
                        peak = live_bytes
                c_in = width
        head = self.head_costs(c_in, size, values.get("bits.head", 32))
        latency_ms = None if self.latency is None else self.latency.predict(self.blocks(values, resolution))
        return Costs(
            macs=macs + head.macs,
            params=params + head.params,
            weight_bytes=weight_bytes + head.weight_bytes,
            activation_bytes=max(peak, head.activation_bytes),
            layers=layers + head.layers,
            latency_ms=latency_ms,
        )

    def blocks(self, arch: Mapping[str, Value], resolution: int | None = None) -> tuple[Block, ...]:
        """The blocks (layers) of a valid `arch`'s network at the resolution `costs` uses, in order."""

        return network_blocks(self, arch, resolution)

    def distinct_blocks(self, resolution: int | None = None) -> tuple[Block, ...]:
        """Every distinct block of the space's networks at `resolution` px: a latency table's keys."""

        return distinct_blocks(self, resolution)

    # Piecewise prices for solvers that pose the search as a program over per-option constants
    # (solvers.mp). For macs, params, weight_bytes and layers (activation_bytes is a peak, not a
    # sum), `costs` of an architecture equals
    #     fixed_costs() + sum over its active blocks (s, j) of block_costs(s, j, kernel, expand, se)
    # when every layer has the same bits.
    def fixed_costs(self, *, resolution: int | None = None, bits: int = 32) -> Costs:
        """Costs of the fixed parts: stem, first block and head (expansion conv, mix, classifier)."""
        sk = self.scaled
        size = self.input_side(None, resolution)
        stem, _ = self.stem_costs(size, bits)
        last = sk.stages[-1].width if sk.stages else sk.first_width
        side = self.block_input_side(len(sk.stages) + 1, 1, size)
        head = self.head_costs(last, side, bits)
        if self.latency is None:
            return stem + head

        return (stem + head).replace(latency_ms=self.latency.predict(fixed_blocks(self, size, bits)))

    def block_costs(
        self,
        stage: int,
        block: int,
        kernel: int,
        expand: int,
        se: bool,
        *,
        resolution: int | None = None,
        bits: int = 32,
    ) -> Costs:
        """Costs of block `block` of stage `stage` (both 1-based) with the given options.

        Block 1 reads the previous stage's width and carries the stage's stride; later blocks map
        the stage's width to itself at stride 1 (`mbconv_costs`).
        """
        sk = self.scaled
        size = self.input_side(None, resolution)
        width, stride = sk.stages[stage - 1].width, sk.stages[stage - 1].stride
        c_in = width if block > 1 else (sk.stages[stage - 2].width if stage > 1 else sk.first_width)
        costs = mbconv_costs(
            c_in,
            width,
            kernel,
            expand,
            stride if block == 1 else 1,
            se,
            self.block_input_side(stage, block, size),
            bits,
            sk.se_squeeze,
        )
        if self.latency is None:
            return costs

        block_ms = self.latency.blocks_ms([option_block(self, stage, block, kernel, expand, se, size, bits)])
        return costs.replace(latency_ms=block_ms)  # the overhead is in fixed_costs

    def block_input_side(self, stage: int, block: int, resolution: int) -> int:
        """Input side in px of block `block` of stage `stage` (``len(stages) + 1``: the head)."""
        sk = self.scaled  # SAME padding: sides do not depend on the kernels
        size = out_size(out_size(resolution, 3, sk.stem_stride), 3, sk.first_stride)
        for s in sk.stages[: stage - 1]:
            size = out_size(size, 3, s.stride)
        if block > 1:
            size = out_size(size, 3, sk.stages[stage - 1].stride)
        return size


def space(
    skeleton: str = "imagenet", *, bits: tuple[int, ...] = (4, 8, 16, 32), width_mult: float = 1.0
) -> MobileNetSpace:
    """The MBConv space on a named skeleton (`SKELETONS`): imagenet (OFA, default), cifar, ...

    `width_mult` scales every fixed width (`scale_widths`); the choices are the same at any width.

    Raises:
      UnknownSpaceError: `skeleton` is not a key of `SKELETONS`.
    """
    if skeleton not in SKELETONS:
        raise UnknownSpaceError(
            f'mobilenet: unknown skeleton "{skeleton}"; expected one of {", ".join(SKELETONS)}'
        )
    return MobileNetSpace(SKELETONS[skeleton], bits=tuple(bits), width_mult=float(width_mult))


def _blocks(stages: Mapping[int, tuple[bool, tuple[tuple[int, int], ...]]]) -> dict[str, Value]:
    """Arch values from ``{stage: (se, ((kernel, expand), ...))}``."""
    values: dict[str, Value] = {}
    for s, (se, blocks) in stages.items():
        values[f"s{s}.depth"], values[f"s{s}.se"] = len(blocks), se
        for j, (kernel, expand) in enumerate(blocks, start=1):
            values[f"s{s}.b{j}.kernel"], values[f"s{s}.b{j}.expand"] = kernel, expand
    return values


def _presets() -> dict[str, Preset]:
    v2, ofa, b0 = space("mobilenet-v2"), space("imagenet"), space("efficientnet-b0")
    k3e6 = (3, 6)
    mobilenet_v2 = _blocks({s: (False, (k3e6,) * n) for s, n in enumerate((2, 3, 4, 3, 3, 1), start=1)})
    # Blocks 2-20 of the OFA net, as listed in shared/reference/reference_models.md.
    ofa_595m = _blocks(
        {
            1: (False, ((3, 3), (5, 4), (3, 3))),
            2: (True, ((5, 4), (5, 4), (3, 6), (5, 3))),
            3: (False, ((7, 6), (5, 6), (3, 3), (5, 4))),
            4: (True, ((3, 6), (5, 6), (7, 6), (3, 4))),
            5: (True, ((3, 6), (3, 6), (5, 6), (3, 3))),
        }
    )
    kernels_b0 = (3, 5, 3, 5, 5, 3)
    efficientnet_b0 = _blocks(
        {
            s: (True, ((k, 6),) * n)
            for s, (k, n) in enumerate(zip(kernels_b0, (2, 2, 3, 3, 4, 1), strict=True), start=1)
        }
    )
    return {
        "mobilenet-v2": Preset(
            "mobilenet-v2",
            v2,
            v2.validate({"resolution": 224, **mobilenet_v2}),
            "Sandler et al. 2018; torchvision",
        ),
        "ofa-595m": Preset(
            "ofa-595m",
            ofa,
            ofa.validate({"resolution": 236, **ofa_595m}),
            "Cai et al. 2020; OFA flops@595M_top1@80.0_finetune@75",
        ),
        "efficientnet-b0": Preset(
            "efficientnet-b0",
            b0,
            b0.validate({"resolution": 224, **efficientnet_b0}),
            "Tan & Le 2019; torchvision",
        ),
    }


PRESETS: dict[str, Preset] = _presets()
