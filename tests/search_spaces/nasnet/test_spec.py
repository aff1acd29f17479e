"""NASNet space: published costs of NASNet-A, canonical form, concat choices, exact size."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re

import numpy as np
import pytest

from nasx.errors import InvalidArchError, UnknownSpaceError
from nasx.space import Arch
from search_spaces import nasnet

MOBILE = nasnet.PRESETS["nasnet-a-mobile"].arch


def _by_name(space: nasnet.NasnetSpace) -> dict:
    return {c.name: c for c in space.choices}


@pytest.mark.parametrize(
    ("name", "macs", "params", "published_macs", "published_params"),
    [
        # TF-slim README: 564 M MACs / 5.3 M params and 23.8 G / 88.9 M. The params equal Keras'
        # trainable count (5,289,978); with BN statistics added they equal Keras' totals
        # (5,326,716 and 88,949,818), checked once by instrumenting the counter.
        ("nasnet-a-mobile", 563_638_816, 5_289_978, 564e6, 5.3e6),
        ("nasnet-a-large", 23_783_414_658, 88_753_150, 23_800e6, 88.9e6),
        # Zoph et al. 2018, Table 1: NASNet-A (6 @ 768) on CIFAR-10, 3.3 M params (no MACs given).
        ("nasnet-a-cifar", 544_333_312, 3_346_538, None, 3.3e6),
    ],
)
def test_presets_reproduce_published_costs(
    name: str, macs: int, params: int, published_macs: float | None, published_params: float
) -> None:
    preset = nasnet.PRESETS[name]
    c = preset.space.costs(preset.arch)
    if published_macs is not None:
        assert c.macs == pytest.approx(published_macs, rel=0.02)
    assert c.params == pytest.approx(published_params, rel=0.02)
    assert (c.macs, c.params) == (macs, params)  # regression values of this counter


def test_preset_layers_follow_the_longest_path() -> None:
    """Mobile: conv0, 9 per reduction cell (1x1 base + sep5 + sep3 chained), 5 per normal cell, FC."""
    assert nasnet.space().costs(MOBILE).layers == 1 + 4 * 9 + 12 * 5 + 1


def test_hand_counted_identity_network() -> None:
    """CIFAR skeleton, N=2, F=16, every block adds two identities of h0: only cell bases and
    the strided 1x1 identities of the reduction cells have weights; every cell concatenates
    its 5 block outputs (5F channels)."""
    space = nasnet.NasnetSpace(skeleton=nasnet.SKELETONS["cifar"], bits=(32,))
    values = {"N": 2, "F": 16}
    for cell in nasnet.CELL_TYPES:
        for i in range(1, 6):
            values |= {f"{cell}.b{i}.in_a": 0, f"{cell}.b{i}.op_a": "identity"}
            values |= {f"{cell}.b{i}.in_b": 0, f"{cell}.b{i}.op_b": "identity"}
    arch = space.validate(values)
    c = space.costs(arch)

    def conv1x1(c_in: int, c_out: int, out_px: int) -> tuple[int, int]:
        return c_in * c_out * out_px**2, c_in * c_out + 2 * c_out

    parts = [(3 * 48 * 9 * 32**2, 3 * 48 * 9 + 2 * 48)]  # stem: 3x3 to 3F = 48, BN
    parts += [conv1x1(48, 16, 32), conv1x1(80, 16, 32)]  # stack 1 bases (48 then 5F = 80 in)
    parts += [conv1x1(80, 32, 32)] + 10 * [conv1x1(32, 32, 16)]  # reduction 1: base, 10 strided 1x1
    parts += 2 * [conv1x1(160, 32, 16)]
    parts += [conv1x1(160, 64, 16)] + 10 * [conv1x1(64, 64, 8)]
    parts += 2 * [conv1x1(320, 64, 8)]
    parts += [(320 * 10, 320 * 10 + 10)]  # classifier with bias
    assert c.macs == sum(m for m, _ in parts)
    assert c.params == sum(p for _, p in parts)
    assert c.layers == 1 + 1 + 1 + 2 + 1 + 1 + 2 + 1 + 1 + 1
    # Peak: the concat of the 2nd cell: its input (80 ch, kept as the next cell's prev), the 5
    # block outputs and the 80-channel output, all at 32 x 32, float32.
    assert c.activation_bytes == 4 * (80 + 5 * 16 + 80) * 32 * 32


def test_schedule_follows_tf_slim_wiring() -> None:
    """Outputs are numbered [none, stem, slot 0, slot 1, ...]; a cell reads the last two, except
    that with skip_reduction_layer_input the cell after a reduction reads the reduction's prev."""
    mobile = nasnet.schedule(nasnet.SKELETONS["imagenet"], 4)
    assert [s.reduction for s in mobile] == [True, True] + ([False] * 4 + [True]) * 2 + [False] * 4
    assert [s.part for s in mobile] == [0, 0, 1, 1, 1, 1, 2, 3, 3, 3, 3, 4, 5, 5, 5, 5]
    assert [s.scale for s in mobile] == [0.25, 0.5] + [1] * 4 + [2] * 5 + [4] * 5
    assert [(s.x, s.prev) for s in mobile[:3]] == [(1, 0), (2, 1), (3, 2)]  # stem cells, cell 0
    red, after = mobile[6], mobile[7]
    assert (red.x, red.prev) == (7, 6) and (after.x, after.prev) == (8, 7)
    large = nasnet.schedule(nasnet.SKELETONS["imagenet-large"], 4)
    assert (large[6].x, large[6].prev) == (7, 6) and (large[7].x, large[7].prev) == (8, 6)
    assert large[6].keep_prev and not large[6].keep_x  # the next cell reads the reduction's prev
    assert mobile[6].keep_x and not mobile[6].keep_prev
    cifar = nasnet.schedule(nasnet.SKELETONS["cifar"], 2)
    assert len(cifar) == 8 and (cifar[0].x, cifar[0].prev) == (1, 0)
    assert not (cifar[-1].keep_x or cifar[-1].keep_prev)


def test_swapped_pairs_are_one_architecture() -> None:
    space = nasnet.space()
    values = MOBILE.to_dict()
    for cell, block in (("normal", 1), ("reduce", 4)):
        key = f"{cell}.b{block}."
        values |= {
            key + "in_a": MOBILE[key + "in_b"],
            key + "op_a": MOBILE[key + "op_b"],
            key + "in_b": MOBILE[key + "in_a"],
            key + "op_b": MOBILE[key + "op_a"],
        }
    assert values != MOBILE.to_dict()
    swapped = space.validate(json.loads(json.dumps(values)))
    assert swapped == MOBILE and swapped.fingerprint == MOBILE.fingerprint
    # the canonical order is (input, op index): the reduction cell's block 4 reads state 2 first
    assert (MOBILE["reduce.b4.in_a"], MOBILE["reduce.b4.op_a"]) == (2, "avg_pool_3x3")
    # with equal inputs the op order decides
    same_input = space.validate(
        values | {"normal.b5.op_a": "sep_conv_3x3", "normal.b5.op_b": "identity"}
    )  # fmt: skip
    assert (same_input["normal.b5.op_a"], same_input["normal.b5.op_b"]) == ("identity", "sep_conv_3x3")


def test_concat_choices_are_forced_or_optional() -> None:
    space = nasnet.space()
    choices = _by_name(space)
    # NASNet-A reduction cell: blocks read states 0..3; block outputs 4, 5, 6 are unread
    for k, allowed in [(1, (False, True)), (2, (False, True)), (3, (False, True))]:
        assert space.options(choices[f"reduce.out.{k}"], MOBILE) == allowed
    for k in (4, 5, 6):
        assert space.options(choices[f"reduce.out.{k}"], MOBILE) == (True,)
    # omitted: read states (and h1) default to False, unread block outputs are filled in as True
    omitted = {k: v for k, v in MOBILE.items() if ".out." not in k}
    paper_rule = space.validate(omitted)
    assert [paper_rule[f"reduce.out.{k}"] for k in range(1, 7)] == [False] * 3 + [True] * 3
    assert [paper_rule[f"normal.out.{k}"] for k in range(1, 7)] == [False] + [True] * 5
    # TF-slim's concat differs from the paper's rule (h1 in the normal cell, state 3 in the
    # reduction cell); the costs see the extra channels
    assert paper_rule != MOBILE and space.costs(paper_rule).params < space.costs(MOBILE).params
    with pytest.raises(InvalidArchError, match=re.escape('"reduce.out.5" = false is not allowed here')):
        space.validate(MOBILE.replace({"reduce.out.5": False}))
    # making a state read turns its forced flag into a free one
    rewired = space.validate(MOBILE.replace({"reduce.b5.in_b": 4, "reduce.out.4": False}))
    assert rewired["reduce.out.4"] is False


def test_validate_names_the_key_and_the_allowed_options() -> None:
    space = nasnet.space()
    cases = [
        ({"normal.b2.in_a": 3}, '"normal.b2.in_a" = 3 is not allowed; expected one of 0, 1, 2'),
        ({"reduce.b1.op_b": "conv_9x9"}, '"reduce.b1.op_b" = "conv_9x9" is not allowed; expected one of "identity"'),
        ({"F": 45}, '"F" = 45 is not allowed; expected one of 16, 24, 32, 44, 64, 88, 128, 168'),
        ({"bits.stack2": 2}, '"bits.stack2" = 2 is not allowed; expected one of 4, 8, 16, 32'),
    ]  # fmt: skip
    for change, message in cases:
        with pytest.raises(InvalidArchError, match=re.escape(message)):
            space.validate(MOBILE.replace(change))
    with pytest.raises(InvalidArchError, match=re.escape('missing choice "N"')):
        space.validate({k: v for k, v in MOBILE.items() if k != "N"})


def test_samples_validate_and_are_canonical() -> None:
    space = nasnet.space()
    rank = {op: i for i, op in enumerate(nasnet.OPS)}
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(300)]
    assert len(set(archs)) == 300
    for arch in archs:
        assert space.validate(arch) == arch
        for cell in nasnet.CELL_TYPES:
            reads = set()
            for i in range(1, 6):
                a = (arch[f"{cell}.b{i}.in_a"], rank[arch[f"{cell}.b{i}.op_a"]])
                b = (arch[f"{cell}.b{i}.in_b"], rank[arch[f"{cell}.b{i}.op_b"]])
                assert a <= b and b[0] <= i
                reads |= {a[0], b[0]}
            assert all(arch[f"{cell}.out.{k}"] for k in range(2, 7) if k not in reads)
    seen_optional = {arch["normal.out.1"] for arch in archs}
    assert seen_optional == {False, True}


def test_mutate_and_crossover_stay_valid() -> None:
    space = nasnet.space()
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(60)]
    for a, b in itertools.pairwise(archs):
        m = space.mutate(a, rng)
        assert m != a and space.validate(m) == m
        c = space.crossover(a, b, rng)
        assert space.validate(c) == c


def _brute_force_size(space: nasnet.NasnetSpace) -> int:
    """Walk every choice with the options the space allows given the ones before; dedupe canonically."""
    found: set[Arch] = set()

    def walk(i: int, values: dict) -> None:
        if i == len(space.choices):
            found.add(space.canonical(Arch(values)))
            return
        choice = space.choices[i]
        for value in space.options(choice, values):
            walk(i + 1, {**values, choice.name: value})

    walk(0, {})
    return len(found)


@pytest.mark.parametrize(
    "space",
    [
        nasnet.NasnetSpace(ops=("identity", "avg_pool_3x3"), bits=(32,), depths=(2,), filters=(16,), num_blocks=1),
        nasnet.NasnetSpace(ops=("identity",), bits=(32,), depths=(2, 3), filters=(16,), num_blocks=2),
        nasnet.NasnetSpace(ops=("identity",), bits=(8, 32), depths=(2,), filters=(16,), num_blocks=1),
    ],
    ids=["1-block-2-ops", "2-blocks", "1-block-bits"],
)  # fmt: skip
def test_size_equals_brute_force(space: nasnet.NasnetSpace) -> None:
    assert space.size() == _brute_force_size(space)


def test_size_of_five_block_cells() -> None:
    """With one op, enumerate the canonical 5-block cells directly (input multisets per block)."""
    cells = 0
    for b1 in _input_pairs(1):
        for b2 in _input_pairs(2):
            for b3 in _input_pairs(3):
                for b4 in _input_pairs(4):
                    for b5 in _input_pairs(5):
                        read_outputs = {s for s in (*b1, *b2, *b3, *b4, *b5) if s >= 2}
                        cells += 2 * 2 ** len(read_outputs)  # h1 free; read outputs free
    space = nasnet.NasnetSpace(ops=("identity",), bits=(32,))
    assert space.size() == len(nasnet.DEPTHS) * len(nasnet.FILTERS) * cells**2
    assert 38 < nasnet.space().log10_size() < 39  # the default space: ~6.8e38 architectures


def _input_pairs(block: int) -> list[tuple[int, int]]:
    return [(j, k) for j in range(block + 1) for k in range(j, block + 1)]


def test_skeletons_share_choices_and_transfer() -> None:
    full = [k for k in nasnet.SKELETONS if k not in nasnet.VARIANT_CHOICES]
    choices = {k: [(c.name, c.options, c.default) for c in nasnet.space(k).choices] for k in full}
    assert all(v == choices["imagenet"] for v in choices.values())
    assert {nasnet.space(k).resolution for k in nasnet.SKELETONS} == {224, 331, 32}
    assert nasnet.space("cifar").variant == "cifar" and nasnet.space("cifar").num_classes == 10
    for k in full:
        assert nasnet.space(k).validate(MOBILE) == MOBILE


def test_the_small_variant_is_the_cifar_network_on_enas_ops() -> None:
    """`small`'s cells are NASNet cells of ENAS's 5 ops; an architecture of it costs the same as
    the same architecture in the full CIFAR space (same skeleton, same network)."""
    small, cifar = nasnet.space("small", bits=(32,)), nasnet.space("cifar", bits=(32,))
    assert (small.ops, small.depths, small.filters, small.num_blocks) == (
        nasnet.ENAS_OPS,
        (1,),
        (8, 12, 16),
        3,
    )
    assert set(nasnet.ENAS_OPS) <= set(nasnet.OPS) and small.resolution == cifar.resolution == 32
    rng = np.random.default_rng(0)
    for _ in range(5):
        arch = small.sample(rng)
        same = dataclasses.replace(cifar, num_blocks=3, depths=(1, 2), filters=(8, 12, 16))
        assert same.costs(same.validate(arch)) == small.costs(arch)


def test_costs_across_skeletons_and_resolutions() -> None:
    """The same arch: fewer params on CIFAR (no stem cells, 10 classes); MACs of the same order,
    as TF-slim's CIFAR network runs its first stack at 32 px and the ImageNet one at 28 px."""
    imagenet, cifar, large = (nasnet.space(k).costs(MOBILE) for k in ("imagenet", "cifar", "imagenet-large"))
    assert cifar.params < imagenet.params - 1000 * 1056 // 2
    assert 0.5 < cifar.macs / imagenet.macs < 2
    assert large.macs > 2 * imagenet.macs  # 331 px and a 3x stem
    small = nasnet.space().costs(MOBILE, resolution=112)
    assert small.params == imagenet.params and 0.2 < small.macs / imagenet.macs < 0.3
    assert nasnet.space().costs(MOBILE, resolution=32).macs < imagenet.macs / 20


def test_bits_apply_to_their_part() -> None:
    space = nasnet.space()
    full = space.costs(MOBILE)
    head4 = space.costs(MOBILE.replace({"bits.head": 4}))
    fc_weights = 1056 * 1000
    assert full.weight_bytes - head4.weight_bytes == 4 * fc_weights - (fc_weights // 2 + 4 * 1000)
    assert (head4.macs, head4.params) == (full.macs, full.params)
    all4 = space.costs(MOBILE.replace({f"bits.{p}": 4 for p in space.bit_parts}))
    assert 0.12 < all4.weight_bytes / full.weight_bytes < 0.2  # 4/32 plus scales and BN in float
    assert nasnet.space(bits=(32,)).size() * 4**7 == space.size()
    assert not any(c.name.startswith("bits.") for c in nasnet.space(bits=(32,)).choices)


def test_unknown_skeleton() -> None:
    with pytest.raises(UnknownSpaceError, match='unknown skeleton "imagenet-xl"; expected one of imagenet, '):
        nasnet.space("imagenet-xl")
