"""NASNet search space: two searched cells (normal, reduction) stacked on a fixed skeleton.

The macro structure is TF-slim's ``nets/nasnet`` (tensorflow/models): a stem, then 3 stacks of
``N`` normal cells with a reduction cell before the 2nd and 3rd stack (before normal-cell indices
``int(num_cells / 3)`` and ``int(2 * num_cells / 3)``, ``num_cells = 3N``); the cells of stack
``s`` have ``F * 2**(s - 1)`` filters; then ReLU, global average pool, dropout and FC. The
training-only auxiliary head is not part of the network here and is not counted.

Stems. ``imagenet``: conv0 3x3 stride 2 VALID (``int(32 * stem_multiplier)`` filters) + BN, then
two *stem cells*: reduction cells (the searched one) with ``int(F / 4)`` and ``int(F / 2)``
filters. ``cifar``: conv 3x3 stride 1 with ``int(F * stem_multiplier)`` filters + BN (TF-slim's
``_cifar_stem`` scales the stem by ``num_conv_filters``), no stem cell.

Cells. Each cell has two inputs: ``x``, the previous cell's output, and ``prev``, the one before
(TF-slim's ``cell_outputs[-2]``; with ``skip_reduction_layer_input`` the normal cell after a
reduction takes the reduction cell's ``prev`` instead). The cell base makes hidden state
``h0`` = ReLU -> 1x1 conv to F -> BN of ``x``, and ``h1`` from ``prev``: a factorized reduction
(ReLU, two stride-2 1x1 convs to F/2 on the input and on it shifted by one pixel, concat, BN) if
``prev`` is spatially larger, ReLU -> 1x1 -> BN if only its channels differ, else ``prev`` itself
(with no ``prev``, the first cell after the stem, ``h1`` is ``x`` unchanged). Blocks 1..5 each
add two op outputs; block ``i`` reads states ``0..i`` (0 = h0, 1 = h1, ``k >= 2`` = output of
block ``k - 1``). In a reduction cell ops on h0 / h1 have stride 2, ops on block outputs stride 1.
The output concatenates the states flagged by ``{cell}.out.{k}``; a state whose shape differs
from F channels at the output size (only h1: in a reduction cell, or the unadjusted input of the
first cell) goes through TF-slim's factorized reduction (stride 2) or 1x1 conv + BN (stride 1)
first. Parts of the cell base that neither a block nor the output reads (h0 or h1 of a cell that
ignores it) are not built and not counted.

Ops (``F`` output filters, stride ``s``; every op ends in F channels):

* ``sep_conv_KxK``: 2 x [ReLU, depthwise KxK, pointwise 1x1 to F, BN], stride in the first only
  (TF-slim ``separable_KxK_2``; 4 weight layers).
* ``avg_pool_3x3``, ``max_pool_KxK``: pool, SAME padding, stride s; then 1x1 conv + BN if the
  input has other than F channels.
* ``identity``: nothing, or ReLU -> 1x1 conv (stride s) -> BN if a stride or channel change is
  needed (TF-slim ``none``).
* ``conv_1xK_Kx1``: ReLU, conv 1xK to F (stride s), conv Kx1, BN (2 weight layers).
* ``dil_conv_3x3``: ReLU, 3x3 conv with dilation 2 (stride s), BN.
* ``conv_1x1``, ``conv_3x3``: ReLU, conv (stride s), BN.

Choices, in order: ``N`` (cells per stack), ``F`` (filters of the first stack); for ``c`` in
(``normal``, ``reduce``) and block ``i`` = 1..5 ``{c}.b{i}.in_a``, ``.op_a``, ``.in_b``,
``.op_b``, then ``{c}.out.{k}`` for k = 1..6 (h1 and each block's output); then the weight bits
``bits.stem``, ``bits.stack1``, ``bits.reduce1``, ``bits.stack2``, ``bits.reduce2``,
``bits.stack3``, ``bits.head`` (absent when ``bits == (32,)``). A block output no block reads
must be concatenated (``out.k`` allows only True and is filled in when omitted); h1 and block
outputs that some block reads may be concatenated or not (default False: the paper's rule). This
expresses TF-slim's NASNet-A exactly, which concatenates h1 in its normal cell and state 3 in its
reduction cell although blocks read them. h1 is never forced: an h1 no block reads may be left
out without leaving computation dangling (the paper's literal rule would concatenate it). The two
(input, op) pairs of a block are added, so the canonical form orders them by (input, op index).

Costs (`nasx.costs` conventions). MACs and params count every conv (depthwise and pointwise
apart), BN scale and shift and the FC with its bias; pools, ReLU, adds and concats are free.
``layers`` is the longest weight-layer path through the cells' DAGs (a separable op counts 4, a
pool 0, the 1x1 of the cell base 1). Peak activation memory follows each cell step by step: its
inputs while this or a later cell still reads them, h0 / h1 and block outputs until their last
reader, op outputs and intermediates, and the concatenated output.

Grid: ``N`` in 2..6 (NASNet-A uses 4 for mobile, 6 for large and CIFAR); ``F`` in 16, 24, 32,
44, 64, 88, 128, 168, roughly geometric (steps of ~1.4x) from a tiny model to NASNet-A Large and
through NASNet-A Mobile (44) and CIFAR (32).

References:
  Zoph, Vasudevan, Shlens & Le, "Learning Transferable Architectures for Scalable Image
  Recognition", CVPR 2018. Network definition: tensorflow/models
  ``research/slim/nets/nasnet/nasnet.py`` and ``nasnet_utils.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple, final

from nasx.costs import FLOAT_BYTES, Costs, conv2d, dense, out_size
from nasx.errors import UnknownSpaceError
from nasx.space import AbstractSearchSpace, Arch, Choice, Preset, Value

__all__ = [
    "OPS",
    "CELL_TYPES",
    "DEPTHS",
    "FILTERS",
    "Skeleton",
    "SKELETONS",
    "ENAS_OPS",
    "VARIANT_CHOICES",
    "NasnetSpace",
    "space",
    "CellSlot",
    "schedule",
    "PRESETS",
]

OPS = (
    "identity",
    "conv_1x3_3x1",
    "conv_1x7_7x1",
    "dil_conv_3x3",
    "avg_pool_3x3",
    "max_pool_3x3",
    "max_pool_5x5",
    "max_pool_7x7",
    "conv_1x1",
    "conv_3x3",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "sep_conv_7x7",
)
"""The 13 ops of the NASNet search space (paper Sec. 3), in the paper's order."""
CELL_TYPES = ("normal", "reduce")
DEPTHS = (2, 3, 4, 5, 6)
"""Options of ``N``, normal cells per stack."""
FILTERS = (16, 24, 32, 44, 64, 88, 128, 168)
"""Options of ``F``, filters of the first stack (44: NASNet-A Mobile, 168: Large, 32: CIFAR)."""

_SEP_KERNEL = {"sep_conv_3x3": 3, "sep_conv_5x5": 5, "sep_conv_7x7": 7}
_POOLS = frozenset({"avg_pool_3x3", "max_pool_3x3", "max_pool_5x5", "max_pool_7x7"})
_CONV_KERNEL = {"conv_1x1": 1, "conv_3x3": 3, "dil_conv_3x3": 3}
_SPLIT_KERNEL = {"conv_1x3_3x1": 3, "conv_1x7_7x1": 7}
_UNREACHED = -(10**9)
"""Longest-path length of a state no path reaches from a given cell input."""


@dataclass(frozen=True)
class Skeleton:
    """The fixed macro structure around the two searched cells (TF-slim hyper-parameters).

    Attributes:
      name: the variant name (key of `SKELETONS`).
      resolution: deployment input side in px.
      num_classes: classifier outputs (the classifier has a bias).
      stem: ``"imagenet"`` (conv0 3x3 s2 VALID + 2 reduction stem cells) or ``"cifar"`` (conv 3x3).
      stem_multiplier: stem filters are ``int(32 * m)`` (imagenet) or ``int(F * m)`` (cifar).
      skip_reduction_layer_input: TF-slim's flag: the normal cell after a reduction cell takes the
        reduction cell's ``prev`` as its ``prev`` (instead of the reduction cell's input).
      num_reduction_layers: reduction cells between stacks (``num_reduction_layers + 1`` stacks).
      filter_scaling_rate: filter multiplier at each reduction.
      reference: where the row comes from.
    """

    name: str
    resolution: int
    num_classes: int
    stem: str
    stem_multiplier: float
    skip_reduction_layer_input: bool
    num_reduction_layers: int = 2
    filter_scaling_rate: int = 2
    reference: str = ""

    def __post_init__(self) -> None:
        if self.stem not in ("imagenet", "cifar"):
            raise ValueError(f"skeleton {self.name!r}: stem must be 'imagenet' or 'cifar', got {self.stem!r}")
        if self.num_reduction_layers < 1 or self.filter_scaling_rate < 1:
            raise ValueError(f"skeleton {self.name!r}: needs >= 1 reduction layer and a scaling rate >= 1")


_TF_SLIM = "tensorflow/models research/slim/nets/nasnet/nasnet.py"
SKELETONS: dict[str, Skeleton] = {
    # mobile_imagenet_config() + build_nasnet_mobile (default_image_size 224).
    "imagenet": Skeleton(
        "imagenet", 224, 1000, "imagenet", 1.0, False, reference=f"{_TF_SLIM} mobile_imagenet_config"
    ),
    # large_imagenet_config() + build_nasnet_large (default_image_size 331).
    "imagenet-large": Skeleton(
        "imagenet-large", 331, 1000, "imagenet", 3.0, True, reference=f"{_TF_SLIM} large_imagenet_config"
    ),
    # cifar_config() + build_nasnet_cifar (default_image_size 32), CIFAR-10.
    "cifar": Skeleton("cifar", 32, 10, "cifar", 3.0, False, reference=f"{_TF_SLIM} cifar_config"),
    # the CIFAR skeleton with the smaller choices of `VARIANT_CHOICES`: a supernet a CPU compiles
    "small": Skeleton(
        "small", 32, 10, "cifar", 3.0, False, reference=f"{_TF_SLIM} cifar_config; ENAS's 5 ops"
    ),
}
"""Variant table. The rows but ``small`` have the same choices, so an architecture transfers
between them; ``small``'s cells are cells of the others."""
ENAS_OPS = ("identity", "avg_pool_3x3", "max_pool_3x3", "sep_conv_3x3", "sep_conv_5x5")
"""The 5 ops of ENAS's cell space (Pham et al. 2018, Sec. 2.3), a subset of `OPS`."""
VARIANT_CHOICES: dict[str, dict] = {
    "small": {"ops": ENAS_OPS, "depths": (1,), "filters": (8, 12, 16), "num_blocks": 3, "bits": (32,)}
}
"""Variants whose choices differ from the default ones. ``small`` is the supernet ``nasx
train-supernet --space nasnet`` trains by default, sized for a CPU: every op of every block input
runs at the largest width, and the 13-op supernet's train step did not compile here in 15 minutes
even at N=1, F=16 (1,601 convolutions, 49 MB of StableHLO); ENAS's 5 ops with 5 blocks at N=1
still took over 4.5 minutes (743 convolutions), and with 3 blocks at F <= 32 compiled in 129 s but
asked for 31 GB at 64 images x 4 subnets. 3 blocks at N=1, F <= 16: see benchmarks/compile.py."""


@final
@dataclass(frozen=True)
class NasnetSpace(AbstractSearchSpace):
    """The NASNet cell space on one skeleton (see the module docstring for the choices).

    Attributes:
      skeleton: the macro structure (one of `SKELETONS` or a custom one).
      bits: weight bit-widths to choose from per part; ``(32,)`` means no quantization choice.
      ops: the op list every block input chooses from (a subset of `OPS`).
      depths, filters: options of ``N`` and ``F``.
      num_blocks: blocks per cell (the paper's B; 5 for NASNet-A). Smaller values exist to make
        the space small enough to enumerate in tests.
      name: the family name.
    """

    skeleton: Skeleton = SKELETONS["imagenet"]
    bits: tuple[int, ...] = (4, 8, 16, 32)
    ops: tuple[str, ...] = OPS
    depths: tuple[int, ...] = DEPTHS
    filters: tuple[int, ...] = FILTERS
    num_blocks: int = 5
    name: str = "nasnet"

    def __post_init__(self) -> None:
        unknown = [op for op in self.ops if op not in OPS]
        if unknown or not self.ops:
            raise ValueError(f"nasnet: unknown ops {unknown}; expected a subset of {', '.join(OPS)}")
        if self.num_blocks < 1 or not self.depths or min(self.depths) < 1:
            raise ValueError("nasnet: num_blocks and every depth option must be >= 1")
        if not self.filters or min(self.filters) < 4:  # stem cells have int(F / 4) filters
            raise ValueError(f"nasnet: filter options {self.filters} must be >= 4")
        if not self.bits or min(self.bits) < 1:
            raise ValueError(f"nasnet: bit-widths {self.bits} must be >= 1")

    @property
    def variant(self) -> str:
        return self.skeleton.name

    @property
    def resolution(self) -> int:
        return self.skeleton.resolution

    @property
    def num_classes(self) -> int:
        return self.skeleton.num_classes

    @functools.cached_property
    def bit_parts(self) -> tuple[str, ...]:
        """Parts with their own weight bits, in network order."""
        parts = ["stem", "stack1"]
        for r in range(1, self.skeleton.num_reduction_layers + 1):
            parts += [f"reduce{r}", f"stack{r + 1}"]
        return (*parts, "head")

    @functools.cached_property
    def choices(self) -> tuple[Choice, ...]:
        out = [
            Choice("N", self.depths, doc="normal cells per stack"),
            Choice("F", self.filters, doc="filters of the first stack, doubled at each reduction"),
        ]
        for cell in CELL_TYPES:
            for i in range(1, self.num_blocks + 1):
                inputs = tuple(range(i + 1))
                for side in ("a", "b"):
                    out.append(
                        Choice(
                            f"{cell}.b{i}.in_{side}",
                            inputs,
                            doc=f"state block {i} reads: 0 = h0, 1 = h1, k >= 2 = output of block k-1",
                        )
                    )
                    out.append(Choice(f"{cell}.b{i}.op_{side}", self.ops, doc=f"op on in_{side}"))
            for k in range(1, self.num_blocks + 2):
                what = "h1" if k == 1 else f"the output of block {k - 1}"
                out.append(
                    Choice(
                        f"{cell}.out.{k}",
                        (False, True),
                        default=False,
                        doc=f"whether the cell output concatenates {what}; "
                        "a block output no block reads must be concatenated",
                    )
                )
        if self.bits != (32,):
            default = 32 if 32 in self.bits else None
            out += [
                Choice(f"bits.{p}", self.bits, default=default, doc=f"weight bits of {p}")
                for p in self.bit_parts
            ]
        return tuple(out)

    @functools.cached_property
    def _op_rank(self) -> dict[str, int]:
        return {op: i for i, op in enumerate(self.ops)}

    def options(self, choice: Choice, arch: Mapping[str, Value]) -> tuple[Value, ...]:
        cell, _, rest = choice.name.partition(".out.")
        if not rest or rest == "1":  # h1 may always be left out: it leaves nothing dangling
            return choice.options
        return (False, True) if int(rest) in _reads(arch, cell, self.num_blocks) else (True,)

    def canonical(self, arch: Arch) -> Arch:
        rank = self._op_rank
        changes: dict[str, Value] = {}
        for cell in CELL_TYPES:
            for in_a, op_a, in_b, op_b in _keys(cell, self.num_blocks)[0]:
                a, b = (arch[in_a], arch[op_a]), (arch[in_b], arch[op_b])
                if (b[0], rank[b[1]]) < (a[0], rank[a[1]]):
                    changes.update({in_a: b[0], op_a: b[1], in_b: a[0], op_b: a[1]})
        return arch.replace(changes) if changes else arch

    def size(self) -> int:
        """Exact count: a DP over blocks keyed by the set of block outputs read so far."""
        n_ops = len(self.ops)
        by_used: dict[int, int] = {0: 1}  # bitmask of read block outputs -> canonical block lists
        for i in range(1, self.num_blocks + 1):
            nxt: dict[int, int] = {}
            for used, count in by_used.items():
                for j in range(i + 1):
                    for k in range(j, i + 1):
                        pairs = n_ops * (n_ops + 1) // 2 if j == k else n_ops * n_ops
                        mask = used | (1 << j if j >= 2 else 0) | (1 << k if k >= 2 else 0)
                        nxt[mask] = nxt.get(mask, 0) + count * pairs
            by_used = nxt
        # h1 and each read block output may or may not be concatenated; the others must be.
        cells = sum(count * 2 ** (1 + used.bit_count()) for used, count in by_used.items())
        quantized = len(self.bits) ** len(self.bit_parts) if self.bits != (32,) else 1
        return len(self.depths) * len(self.filters) * cells**2 * quantized

    def costs(self, arch: Arch, resolution: int | None = None) -> Costs:
        values = arch.to_dict()  # plain dict: C-speed lookups
        normal, reduce = (_cell_of(values, cell, self.num_blocks) for cell in CELL_TYPES)
        bits = tuple(values.get(f"bits.{p}", 32) for p in self.bit_parts)
        return _network_costs(
            self.skeleton, values["N"], values["F"], normal, reduce, bits, resolution or self.resolution
        )


def space(skeleton: str = "imagenet", *, bits: tuple[int, ...] | None = None) -> NasnetSpace:
    """The NASNet space on one skeleton of `SKELETONS`; ``bits=(32,)`` drops quantization.

    Default bits: (4, 8, 16, 32), and float (32,) for ``small``: with weight bits as a choice every
    subnet of a step has its own fake-quantized weights, which XLA:CPU convolves as a grouped
    convolution; ``small``'s train step then outgrew this 24 GB machine (killed by the kernel at
    15.8 GiB resident, other jobs running; float: 15.4 GiB of temporaries, benchmarks/compile.py).
    """
    if skeleton not in SKELETONS:
        raise UnknownSpaceError(
            f'nasnet: unknown skeleton "{skeleton}"; expected one of {", ".join(SKELETONS)}'
        )
    choices = dict(VARIANT_CHOICES.get(skeleton, {}))
    default_bits = choices.pop("bits", (4, 8, 16, 32))
    return NasnetSpace(skeleton=SKELETONS[skeleton], bits=tuple(bits or default_bits), **choices)


# --- reading an architecture -----------------------------------------------------------------


@functools.cache
def _keys(cell: str, num_blocks: int) -> tuple[tuple[tuple[str, str, str, str], ...], tuple[str, ...]]:
    """Choice names of a cell: per block (in_a, op_a, in_b, op_b), and the ``out.k`` flags."""
    blocks = tuple(
        tuple(f"{cell}.b{i}.{part}" for part in ("in_a", "op_a", "in_b", "op_b"))
        for i in range(1, num_blocks + 1)
    )
    return blocks, tuple(f"{cell}.out.{k}" for k in range(1, num_blocks + 2))


def _reads(arch: Mapping[str, Value], cell: str, num_blocks: int) -> set[Value]:
    """States the blocks of `cell` read (as far as `arch` gives them)."""
    blocks = _keys(cell, num_blocks)[0]
    return {arch.get(key) for block in blocks for key in (block[0], block[2])}


_Cell = tuple[tuple[tuple[int, str, int, str], ...], tuple[bool, ...]]
"""A cell: per block (in_a, op_a, in_b, op_b), and the concat flag of h1 and each block output."""


def _cell_of(arch: Mapping[str, Value], cell: str, num_blocks: int) -> _Cell:
    blocks, outs = _keys(cell, num_blocks)
    return (
        tuple((arch[a], arch[oa], arch[b], arch[ob]) for a, oa, b, ob in blocks),
        tuple(arch[k] for k in outs),
    )


# --- costs ----------------------------------------------------------------------------------


@functools.cache
def _op_costs(op: str, c_in: int, in_size: int, filters: int, stride: int, bits: int) -> tuple:
    """(macs, params, weight_bytes, layers, work_bytes, fresh) of one op.

    ``work_bytes`` is the peak of the activations the op allocates (its output included) beyond
    its input; ``fresh`` says whether the output is a new tensor (False: it is the input).
    """
    size = out_size(in_size, 1, stride)
    if op in _SEP_KERNEL:
        k = _SEP_KERNEL[op]
        c = (
            conv2d(c_in, c_in, k, in_size, stride=stride, groups=c_in, bits=bits, bn=False)
            + conv2d(c_in, filters, 1, size, bits=bits)
            + conv2d(filters, filters, k, size, groups=filters, bits=bits, bn=False)
            + conv2d(filters, filters, 1, size, bits=bits)
        )
        work = max(c_in + filters, 2 * filters) * size * size
    elif op in _POOLS:
        if c_in == filters:
            c, work = Costs(), c_in * size * size
        else:
            c, work = conv2d(c_in, filters, 1, size, bits=bits), (c_in + filters) * size * size
    elif op == "identity":
        if stride == 1 and c_in == filters:
            return 0, 0, 0, 0, 0, False
        c, work = conv2d(c_in, filters, 1, in_size, stride=stride, bits=bits), filters * size * size
    elif op in _SPLIT_KERNEL:
        k = _SPLIT_KERNEL[op]
        c = conv2d(c_in, filters, (1, k), in_size, stride=stride, bits=bits, bn=False) + conv2d(
            filters, filters, (k, 1), size, bits=bits
        )
        work = 2 * filters * size * size
    elif op in _CONV_KERNEL:
        c = conv2d(c_in, filters, _CONV_KERNEL[op], in_size, stride=stride, bits=bits)
        work = filters * size * size
    else:
        raise ValueError(f"nasnet: unknown op {op!r}")
    return c.macs, c.params, c.weight_bytes, c.layers, FLOAT_BYTES * work, True


@functools.cache
def _adjust(c_in: int, in_size: int, filters: int, size: int, bits: int) -> tuple[int, int, int]:
    """(macs, params, weight_bytes) of bringing a tensor to F channels at side `size`.

    ReLU -> 1x1 conv -> BN at the same size; TF-slim's factorized reduction when the input is
    larger: two stride-2 1x1 convs to F/2 (the second on the input shifted by one pixel), concat,
    BN. For odd F the two paths have ``F // 2`` and ``F - F // 2`` filters (TF-slim needs even F).
    """
    if in_size == size:
        c = conv2d(c_in, filters, 1, in_size, bits=bits)
    else:
        half = filters // 2
        c = (
            conv2d(c_in, half, 1, in_size, stride=2, bits=bits, bn=False)
            + conv2d(c_in, filters - half, 1, in_size, stride=2, bits=bits, bn=False)
            + Costs(params=2 * filters, weight_bytes=FLOAT_BYTES * 2 * filters)
        )
    return c.macs, c.params, c.weight_bytes


@functools.lru_cache(maxsize=4096)  # bounded: keyed by the cell, which differs per architecture
def _structure(cell: _Cell) -> tuple:
    """Shape-free facts of a cell: (last_read, live, concat).

    ``last_read[k]``: the last step reading state k (-1: none), where step 0 adjusts h1, step 1
    makes h0, step i + 1 runs block i and step B + 2 concatenates. ``live[j]``: how many block
    outputs made before step j + 2 are read at or after it. ``concat``: the concatenated states.
    """
    blocks, flags = cell
    concat_step = len(blocks) + 2
    last_read = [-1] * (len(blocks) + 2)
    for i, (in_a, _, in_b, _) in enumerate(blocks, start=2):
        last_read[in_a] = last_read[in_b] = i
    concat = tuple(k for k, flag in enumerate(flags, start=1) if flag)
    for k in concat:
        last_read[k] = concat_step
    live = [0] * (len(blocks) + 1)
    for k in range(2, concat_step):
        for step in range(k + 1, last_read[k] + 1):
            live[step - 2] += 1
    return tuple(last_read), tuple(live), concat


@functools.lru_cache(maxsize=4096)
def _cell_body(cell: _Cell, filters: int, stride: int, s_x: int, c_1: int, bits: int) -> tuple:
    """The blocks and the concat of a cell, which depend on its inputs only through h0 and h1.

    Args:
      cell: the cell.
      filters, stride: F and the stride of ops on h0 / h1.
      s_x: side of h0 and h1 in px.
      c_1: channels of h1 (F, or those of ``x`` when the cell has no ``prev``).
      bits: weight bits.

    Returns:
      (macs, params, weight_bytes, layers_from_h0, layers_from_h1, c_out, s_out, last_read,
      profile): the longest weight-layer paths from h0 / h1 to the output (`_UNREACHED` if
      none); `_structure`'s last_read; per step from block 1 to the concat, the bytes of block
      outputs alive plus the bytes the step allocates (op outputs and intermediates, the output).
    """
    last_read, live, concat = _structure(cell)
    s_out = -(-s_x // stride)
    state_bytes = FLOAT_BYTES * filters * s_out * s_out
    args = (
        (filters, s_x, filters, stride, bits),  # on h0
        (c_1, s_x, filters, stride, bits),  # on h1
        (filters, s_out, filters, 1, bits),  # on block outputs
    )
    macs = params = weight_bytes = 0
    from_h0, from_h1 = [0, _UNREACHED], [_UNREACHED, 0]  # longest path from h0 / h1 to each state
    profile = []
    for (in_a, op_a, in_b, op_b), n_live in zip(cell[0], live, strict=False):
        ma, pa, wa, la, work_a, fresh_a = _op_costs(op_a, *args[min(in_a, 2)])
        mb, pb, wb, lb, work_b, fresh_b = _op_costs(op_b, *args[min(in_b, 2)])
        macs += ma + mb
        params += pa + pb
        weight_bytes += wa + wb
        held = state_bytes if fresh_a else 0
        # the sum goes into a fresh op output, or into a new tensor if both ops are identities
        peak = max(work_a, held + work_b, 0 if fresh_a or fresh_b else state_bytes)
        profile.append(n_live * state_bytes + peak)
        from_h0.append(max(from_h0[in_a] + la, from_h0[in_b] + lb))
        from_h1.append(max(from_h1[in_a] + la, from_h1[in_b] + lb))

    out0, out1 = max(from_h0[k] for k in concat), max(from_h1[k] for k in concat)
    work = len(concat) * state_bytes
    if concat[0] == 1 and (s_x != s_out or c_1 != filters):  # h1's shape differs from the output's
        m, p, w = _adjust(c_1, s_x, filters, s_out, bits)
        macs, params, weight_bytes = macs + m, params + p, weight_bytes + w
        out1, work = max(out1, 1), work + state_bytes
    profile.append(live[-1] * state_bytes + work)
    c_out = len(concat) * filters
    return macs, params, weight_bytes, out0, out1, c_out, s_out, last_read, tuple(profile)


@functools.lru_cache(maxsize=4096)
def _cell_costs(
    cell: _Cell,
    filters: int,
    stride: int,
    c_x: int,
    s_x: int,
    c_p: int,
    s_p: int,
    bits: int,
    keep_x: bool,
    keep_p: bool,
) -> tuple:
    """(macs, params, weight_bytes, peak_bytes, layers_from_x, layers_from_prev, c_out, s_out).

    ``c_p = 0`` means no ``prev`` (h1 is ``x``). ``keep_x`` / ``keep_p``: a later cell reads that
    input too, so it stays alive through this one. ``layers_from_*``: the longest path of weight
    layers from that input to the output (`_UNREACHED` if none).

    Memory: the cell runs as steps (adjust h1, make h0, blocks 1..B, concat); the peak is the
    largest sum over a step of the tensors made before it and read at or after it, plus what the
    step allocates.
    """
    c_1 = filters if c_p else c_x
    macs, params, weight_bytes, out0, out1, c_out, s_out, last_read, profile = _cell_body(
        cell, filters, stride, s_x, c_1, bits
    )
    l0, l1 = last_read[0], last_read[1]
    x_bytes = FLOAT_BYTES * c_x * s_x * s_x
    p_bytes = FLOAT_BYTES * c_p * s_p * s_p
    h_bytes = FLOAT_BYTES * filters * s_x * s_x
    end = len(last_read) + 1
    # last step reading x, prev and the tensors of h0 / h1 (when they are tensors of their own)
    x_last, p_last, h1_last = (end if keep_x else -1), (end if keep_p else -1), -1
    work0 = work1 = 0
    from_p = _UNREACHED
    if not c_p:
        x_last = max(x_last, l1)
    elif l1 >= 0 and (s_p != s_x or c_p != filters):
        m, p, w = _adjust(c_p, s_p, filters, s_x, bits)
        macs, params, weight_bytes = macs + m, params + p, weight_bytes + w
        p_last, h1_last, from_p = max(p_last, 0), l1, 1 + out1
        work0 = 2 * h_bytes if s_p != s_x else h_bytes  # factorized: both paths, then the concat
    else:  # h1 is prev itself (or unused)
        p_last, from_p = max(p_last, l1), out1
    from_x = _UNREACHED
    if l0 >= 0:
        m, p, w = _adjust(c_x, s_x, filters, s_x, bits)
        macs, params, weight_bytes = macs + m, params + p, weight_bytes + w
        x_last, work1, from_x = max(x_last, 1), h_bytes, 1 + out0
    if not c_p:
        from_x = max(from_x, out1)

    peak = max(
        x_bytes * (x_last >= 0) + p_bytes * (p_last >= 0) + work0,
        x_bytes * (x_last >= 1) + p_bytes * (p_last >= 1) + h_bytes * (h1_last >= 1) + work1,
    )
    step = 2
    for body_bytes in profile:
        held = body_bytes
        if x_last >= step:
            held += x_bytes
        if p_last >= step:
            held += p_bytes
        if l0 >= step:
            held += h_bytes
        if h1_last >= step:
            held += h_bytes
        if held > peak:
            peak = held
        step += 1
    return macs, params, weight_bytes, peak, from_x, from_p, c_out, s_out


# --- wiring ---------------------------------------------------------------------------------


class CellSlot(NamedTuple):
    """One cell of the network, in order, with its wiring.

    Attributes:
      reduction: a reduction cell (a stem cell or between stacks) rather than a normal cell.
      part: index into `NasnetSpace.bit_parts` of the part whose weight bits it uses.
      scale: its filters are ``int(F * scale)``.
      x, prev: its two inputs, as indices into [no input, stem output, output of slot 0,
        output of slot 1, ...]; ``prev == 0``: none (h1 is ``x``).
      keep_x, keep_prev: whether a later cell reads that input too.
    """

    reduction: bool
    part: int
    scale: float
    x: int
    prev: int
    keep_x: bool
    keep_prev: bool


@functools.cache
def schedule(skeleton: Skeleton, n: int) -> tuple[CellSlot, ...]:
    """The cells of a network with `n` normal cells per stack, following TF-slim's bookkeeping.

    TF-slim keeps the list ``cell_outputs`` (starting ``[None, stem output]``); a cell reads
    ``x`` = the last entry and ``prev`` = the one before, except that with
    ``skip_reduction_layer_input`` the normal cell after a reduction cell reads the reduction
    cell's ``prev``.
    """
    rate, n_red = skeleton.filter_scaling_rate, skeleton.num_reduction_layers
    cells: list[tuple[bool, int, float, int, int]] = []
    n_tensors = 2  # [None, stem output]
    if skeleton.stem == "imagenet":
        for i, scale in enumerate((1.0 / rate**2, 1.0 / rate)):  # the two stem cells
            cells.append((True, 0, scale, n_tensors - 1, n_tensors - 2 if i else 0))
            n_tensors += 1
    num_cells = (n_red + 1) * n
    reductions = [r * num_cells // (n_red + 1) for r in range(1, n_red + 1)]
    scale, stack, prev = 1.0, 0, 0
    for cell_num in range(num_cells):
        if skeleton.skip_reduction_layer_input:
            prev = n_tensors - 2
        if cell_num in reductions:
            scale *= rate
            stack += 1
            cells.append((True, 2 * stack, scale, n_tensors - 1, n_tensors - 2))
            n_tensors += 1
        if not skeleton.skip_reduction_layer_input:
            prev = n_tensors - 2
        cells.append((False, 1 + 2 * stack, scale, n_tensors - 1, prev))
        n_tensors += 1
    out = []
    for j, (is_red, part, sc, x, p) in enumerate(cells):
        later = {t for c in cells[j + 1 :] for t in (c[3], c[4])}
        out.append(CellSlot(is_red, part, sc, x, p, x in later, p in later))
    return tuple(out)


def _network_costs(
    skeleton: Skeleton, n: int, f: int, normal: _Cell, reduce: _Cell, bits: tuple[int, ...], size: int
) -> Costs:
    fb = FLOAT_BYTES
    if skeleton.stem == "imagenet":
        c_stem = int(32 * skeleton.stem_multiplier)
        stem = conv2d(3, c_stem, 3, size, stride=2, padding="valid", bits=bits[0])
        s_stem = out_size(size, 3, 2, "valid")
    else:
        c_stem = int(f * skeleton.stem_multiplier)
        stem = conv2d(3, c_stem, 3, size, bits=bits[0])
        s_stem = size
    macs, params, weight_bytes, peak = stem.macs, stem.params, stem.weight_bytes, stem.activation_bytes
    tensors = [(0, 0, _UNREACHED), (c_stem, s_stem, 1)]  # (channels, side, layers from the input)
    seen: dict[tuple, tuple] = {}  # cells 3..N of a stack repeat; skip hashing the cell again
    for is_red, part, scale, x, p, keep_x, keep_p in schedule(skeleton, n):
        c_x, s_x, d_x = tensors[x]
        c_p, s_p, d_p = tensors[p]
        context = (is_red, int(f * scale), c_x, s_x, c_p, s_p, bits[part], keep_x, keep_p)
        cell = seen.get(context)
        if cell is None:
            cell = seen[context] = _cell_costs(
                reduce if is_red else normal, context[1], 2 if is_red else 1, *context[2:]
            )
        m, pa, w, pk, l_x, l_p, c_out, s_out = cell
        macs, params, weight_bytes, peak = macs + m, params + pa, weight_bytes + w, max(peak, pk)
        tensors.append((c_out, s_out, max(d_x + l_x, d_p + l_p)))
    c_last, s_last, depth = tensors[-1]
    head = dense(c_last, skeleton.num_classes, bits=bits[-1])
    peak = max(peak, fb * (c_last * s_last * s_last + c_last), head.activation_bytes)
    return Costs(
        macs=macs + head.macs,
        params=params + head.params,
        weight_bytes=weight_bytes + head.weight_bytes,
        activation_bytes=peak,
        layers=depth + head.layers,
    )


# --- presets ---------------------------------------------------------------------------------


def _cell_values(cell: str, blocks: tuple, concat: tuple[int, ...]) -> dict[str, Value]:
    values: dict[str, Value] = {}
    for i, (in_a, op_a, in_b, op_b) in enumerate(blocks, start=1):
        values |= {
            f"{cell}.b{i}.in_a": in_a,
            f"{cell}.b{i}.op_a": op_a,
            f"{cell}.b{i}.in_b": in_b,
            f"{cell}.b{i}.op_b": op_b,
        }
    return values | {f"{cell}.out.{k}": k in concat for k in range(1, len(blocks) + 2)}


# TF-slim NasNetANormalCell / NasNetAReductionCell (nasnet_utils.py): hiddenstate_indices, operations
# and the states its used_hiddenstates leave for the concat.
_NASNET_A = {
    **_cell_values(
        "normal",
        (
            (0, "sep_conv_5x5", 1, "sep_conv_3x3"),
            (1, "sep_conv_5x5", 1, "sep_conv_3x3"),
            (0, "avg_pool_3x3", 1, "identity"),
            (1, "avg_pool_3x3", 1, "avg_pool_3x3"),
            (0, "sep_conv_3x3", 0, "identity"),
        ),
        concat=(1, 2, 3, 4, 5, 6),
    ),
    **_cell_values(
        "reduce",
        (
            (0, "sep_conv_5x5", 1, "sep_conv_7x7"),
            (0, "max_pool_3x3", 1, "sep_conv_7x7"),
            (0, "avg_pool_3x3", 1, "sep_conv_5x5"),
            (3, "identity", 2, "avg_pool_3x3"),
            (2, "sep_conv_3x3", 0, "max_pool_3x3"),
        ),
        concat=(3, 4, 5, 6),
    ),
}

_README = "TF-slim research/slim/nets/nasnet/README.md"
_PAPER = "Zoph et al. 2018, Table 1 (also quoted in Cai et al. 2018, Path-Level Network Transformation)"


def _presets() -> dict[str, Preset]:
    rows = {
        # name: (skeleton, N, F, reference)
        "nasnet-a-mobile": ("imagenet", 4, 44, f"NASNet-A Mobile 4 @ 1056: 564 M MACs, 5.3 M params ({_README})"),
        "nasnet-a-large": ("imagenet-large", 6, 168, f"NASNet-A Large 6 @ 4032: 23.8 G MACs, 88.9 M params ({_README})"),
        "nasnet-a-cifar": ("cifar", 6, 32, f"NASNet-A 6 @ 768 on CIFAR-10: 3.3 M params ({_PAPER})"),
    }  # fmt: skip
    out = {}
    for name, (skeleton, n, f, reference) in rows.items():
        s = space(skeleton)
        out[name] = Preset(name, s, s.validate({"N": n, "F": f, **_NASNET_A}), reference)
    return out


PRESETS: dict[str, Preset] = _presets()
