"""NAS-Bench-201: the 15,625 cells of Dong & Yang's benchmark, exactly.

A cell is a DAG on 4 nodes; each of the 6 edges i -> j (i < j) applies one of 5 ops and node j is
the sum of its incoming edges. The macro skeleton is fixed: stem conv 3x3 (16) + BN; 5 cells at
C = 16; a residual reduction block to 32; 5 cells; reduction to 64; 5 cells; BN, ReLU, global
average pool, linear. Arch strings use NB201's own format and round-trip exactly:
``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``.

Quantization: ``space(bits=(4, 8, 16, 32))`` adds one weight bit-width per part (stem, each of the
three stages with the reduction block that opens it, classifier). The default, ``bits=(32,)``,
is the benchmark itself: exactly 15,625 architectures.

References:
  Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture Search",
  ICLR 2020. Network definition: D-X-Y/AutoDL-Projects ``xautodl/models/cell_infers``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from nasx.costs import FLOAT_BYTES, Costs, conv2d, dense
from nasx.errors import InvalidArchError, UnknownSpaceError
from nasx.space import AbstractSearchSpace, Arch, Choice, Preset, Value

__all__ = [
    "SKELETONS",
    "OPS",
    "EDGES",
    "Nb201Space",
    "space",
    "from_string",
    "to_string",
    "benchmark_flops",
    "PRESETS",
]

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""NB201's op list, in its own order."""
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
"""Edges (from, to) in arch-string order."""
STAGE_CHANNELS = (16, 32, 64)
CELLS_PER_STAGE = 5
_CONV_KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}

_NB201_INTERCEPT = {32: 7_943_232, 16: 1_986_112}
"""Non-cell part of NB201's stored FLOPs, minus the classifier (64 x classes), by input size.

NB201's counter adds terms beyond MACs (see `benchmark_flops`); this intercept is taken from its
stored values because it is not fully reproduced from first principles
(../shared/data/nb201/README.md).
"""


def _edge_name(i: int, j: int) -> str:
    return f"edge.{i}->{j}"


SKELETONS = {"cifar10": (32, 10), "cifar100": (32, 100), "imagenet16-120": (16, 120)}
"""NB201's three datasets: variant -> (input px, classes)."""


@dataclass(frozen=True)
class Nb201Space(AbstractSearchSpace):
    """The NB201 cell space on one of its three skeletons (see `SKELETONS`).

    Attributes:
      variant: "cifar10" (32 px, 10 classes), "cifar100" or "imagenet16-120" (16 px, 120).
      bits: weight bit-widths to choose from; ``(32,)`` means no quantization choice.
    """

    variant: str = "cifar10"
    bits: tuple[int, ...] = (32,)
    name: str = "nb201"

    @property
    def resolution(self) -> int:
        return SKELETONS[self.variant][0]

    @property
    def num_classes(self) -> int:
        return SKELETONS[self.variant][1]

    @functools.cached_property
    def choices(self) -> tuple[Choice, ...]:
        edges = tuple(
            Choice(_edge_name(i, j), OPS, doc=f"op on the edge from node {i} to node {j}") for i, j in EDGES
        )
        if self.bits == (32,):
            return edges
        parts = ("stem", "s1", "s2", "s3", "head")
        return edges + tuple(
            Choice(f"bits.{p}", self.bits, default=32 if 32 in self.bits else None, doc=f"weight bits of {p}")
            for p in parts
        )

    def size(self) -> int:
        return len(OPS) ** len(EDGES) * (len(self.bits) ** 5 if self.bits != (32,) else 1)

    def costs(self, arch: Arch, resolution: int | None = None) -> Costs:
        size = resolution or self.resolution
        ops = tuple(arch[_edge_name(i, j)] for i, j in EDGES)
        bits = tuple(arch.get(f"bits.{p}", 32) for p in ("stem", "s1", "s2", "s3", "head"))
        return _network_costs(ops, bits, size, self.num_classes)


def _cell_shape(ops: tuple[str, ...]) -> tuple[int, int]:
    """(conv layers on the longest input->output path, peak live tensors) of one cell.

    Every edge runs, even when disconnected from the output (as in NB201). Computing node j
    holds nodes 0..j, plus the op's output buffer for a conv or pool.
    """
    depth: list[int | None] = [0, None, None, None]  # None = not reachable from the cell input
    peak = 0
    for (i, j), op in zip(EDGES, ops, strict=True):
        if op != "none" and depth[i] is not None:
            via = depth[i] + (op in _CONV_KERNEL)
            depth[j] = via if depth[j] is None else max(depth[j], via)
        peak = max(peak, j + 1 + (op in _CONV_KERNEL or op == "avg_pool_3x3"))
    return depth[3] or 0, peak


@functools.cache
def _stage_cells(n_conv3: int, n_conv1: int, channels: int, size: int, bits: int) -> Costs:
    """The 5 cells of a stage, without memory and depth (which depend on the wiring)."""
    conv3 = conv2d(channels, channels, 3, size, bits=bits)
    conv1 = conv2d(channels, channels, 1, size, bits=bits)
    return (CELLS_PER_STAGE * (n_conv3 * conv3 + n_conv1 * conv1)).replace(activation_bytes=0, layers=0)


@functools.cache
def _reduction_costs(c_in: int, size: int, bits: int) -> Costs:
    """ResNet basic block, stride 2: conv3x3 s2 + BN, conv3x3 + BN; avg-pool + 1x1 shortcut."""
    c_out, out = 2 * c_in, size // 2
    shortcut = conv2d(c_in, c_out, 1, out, bits=bits, bn=False, layers=0)
    branch = conv2d(c_in, c_out, 3, size, stride=2, bits=bits) + conv2d(c_out, c_out, 3, out, bits=bits)
    return (branch + shortcut).holding(FLOAT_BYTES * c_in * size * size)


def _network_costs(ops: tuple[str, ...], bits: tuple[int, ...], size: int, num_classes: int) -> Costs:
    stem_bits, stage_bits, head_bits = bits[0], bits[1:4], bits[4]
    n_conv3, n_conv1 = ops.count("nor_conv_3x3"), ops.count("nor_conv_1x1")
    cell_depth, cell_tensors = _cell_shape(ops)
    total = conv2d(3, STAGE_CHANNELS[0], 3, size, bits=stem_bits)
    peak = 0
    for stage, channels in enumerate(STAGE_CHANNELS):
        if stage > 0:
            total += _reduction_costs(channels // 2, size, stage_bits[stage])
            size //= 2
        total += _stage_cells(n_conv3, n_conv1, channels, size, stage_bits[stage])
        peak = max(peak, cell_tensors * FLOAT_BYTES * channels * size * size)
    last = STAGE_CHANNELS[-1]
    head_bn = Costs(params=2 * last, weight_bytes=FLOAT_BYTES * 2 * last)
    total += head_bn + dense(last, num_classes, bits=head_bits)
    return total.replace(
        activation_bytes=max(total.activation_bytes, peak),
        layers=total.layers + len(STAGE_CHANNELS) * CELLS_PER_STAGE * cell_depth,
    )


def benchmark_flops(arch: Arch, resolution: int = 32, num_classes: int = 10) -> int:
    """FLOPs as NB201 stores them (its own convention, for comparing with the benchmark).

    NB201's counter charges each cell conv its MACs plus 3 per output element, and each 3x3
    average pool 9 per output element; the rest of the network is a fixed intercept. nasx's own
    `Costs.macs` counts MACs only.
    """
    ops = [arch[_edge_name(i, j)] for i, j in EDGES]
    flops, size = _NB201_INTERCEPT[resolution] + STAGE_CHANNELS[-1] * num_classes, resolution
    for channels in STAGE_CHANNELS:
        elements = channels * size * size
        for op in ops:
            if op in _CONV_KERNEL:
                flops += CELLS_PER_STAGE * (_CONV_KERNEL[op] ** 2 * channels * elements + 3 * elements)
            elif op == "avg_pool_3x3":
                flops += CELLS_PER_STAGE * 9 * elements
        size //= 2
    return flops


def to_string(arch: Mapping[str, Value]) -> str:
    """NB201 arch string of a cell, e.g. ``|nor_conv_3x3~0|+|skip_connect~0|none~1|+|...|``."""
    groups = []
    for j in (1, 2, 3):
        groups.append("|" + "|".join(f"{arch[_edge_name(i, j)]}~{i}" for i in range(j)) + "|")
    return "+".join(groups)


def from_string(text: str, space_: Nb201Space | None = None) -> Arch:
    """Parse an NB201 arch string into an `Arch` of `space_` (default: the plain NB201 space)."""
    space_ = space_ or space()
    groups = text.strip().split("+")
    if len(groups) != 3:
        raise InvalidArchError(
            f'NB201 arch string "{text}": expected 3 groups separated by "+", got {len(groups)}'
        )
    values: dict[str, Value] = {}
    for j, group in enumerate(groups, start=1):
        items = [t for t in group.strip().strip("|").split("|")]
        if len(items) != j:
            raise InvalidArchError(f'NB201 arch string "{text}": group {j} must have {j} ops, got "{group}"')
        for item in items:
            op, _, src = item.partition("~")
            if not src.isdigit() or int(src) >= j:
                raise InvalidArchError(f'NB201 arch string "{text}": "{item}" must be op~i with i < {j}')
            if op not in OPS:
                raise InvalidArchError(
                    f'NB201 arch string "{text}": unknown op "{op}"; expected one of {", ".join(OPS)}'
                )
            values[_edge_name(int(src), j)] = op
    return space_.validate(values)


def space(variant: str = "cifar10", *, bits: tuple[int, ...] = (32,)) -> Nb201Space:
    """The NB201 space of one dataset variant; ``bits=(4, 8, 16, 32)`` adds quantization."""
    if variant not in SKELETONS:
        raise UnknownSpaceError(f'nb201: unknown variant "{variant}"; expected one of {", ".join(SKELETONS)}')
    return Nb201Space(variant=variant, bits=tuple(bits))


def _presets() -> dict[str, Preset]:
    s = space()
    cells = {
        # The ResNet-like cell of the NB201 paper (Fig. 1 / Sec. 2.1).
        "nb201-resnet": "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|",
        # Best CIFAR-100 cell of the benchmark (index 9930, README of ../shared/data/nb201).
        "nb201-9930": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        "nb201-all-conv3x3": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        "nb201-none": "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    }
    return {name: Preset(name, s, from_string(cell, s), "Dong & Yang 2020") for name, cell in cells.items()}


PRESETS: dict[str, Preset] = _presets()
