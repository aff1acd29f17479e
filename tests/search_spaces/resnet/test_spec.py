"""Tests of the ResNet / DeepMAD space: reference numbers, constraints, size, cost composition."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nasx.costs import FLOAT_BYTES, Costs, conv2d, out_size
from nasx.errors import InvalidArchError, UnknownSpaceError
from nasx.space import SearchSpace
from search_spaces import resnet
from search_spaces.resnet.spec import PRESETS, SKELETONS, Skeleton, space

# --- reference numbers --------------------------------------------------------------------------
# torchvision: exact regression values. Checked against torchvision's docs (num_params, GFLOPS = MACs)
# for ResNet-18/50 (reference_models.md) and ResNet-34; against the rounded 44.5 M / 7.801 G and
# 60.2 M / 11.514 G that a port of torchvision's weights lists for ResNet-101/152.
TORCHVISION = {  # name: (params, macs, layers)
    "resnet-18": (11_689_512, 1_814_073_344, 18),  # 11,689,512, 1.81 G
    "resnet-34": (21_797_672, 3_663_761_408, 34),  # 21,797,672, 3.66 G
    "resnet-50": (25_557_032, 4_089_184_256, 50),  # 25,557,032, 4.09 G
    "resnet-101": (44_549_160, 7_801_405_440, 101),  # 44.5 M, 7.801 G
    "resnet-152": (60_192_808, 11_513_626_624, 152),  # 60.2 M, 11.514 G
}
# DeepMAD: exact regression values of our count (conv + FC MACs; params with BN and FC), which
# match the reference file's independent count (R18 1.81 G / 11.83 M, R34 3.64 G / 21.69 M,
# R50 4.04 G / 25.44 M); published (TinyNAS README): 1.82 G / 11.69 M, 3.68 G / 21.80 M,
# 4.13 G / 25.55 M. `tinynas_flops` regression values last.
DEEPMAD = {  # name: (macs, params, independent G, independent M, published G, published M, tinynas)
    "deepmad-r18": (1_811_574_016, 11_826_088, 1.81, 11.83, 1.82, 11.69, 1_837_323_208),
    "deepmad-r34": (3_634_913_856, 21_690_160, 3.64, 21.69, 3.68, 21.80, 3_675_274_792),
    "deepmad-r50": (4_042_761_408, 25_441_144, 4.04, 25.44, 4.13, 25.55, 4_087_263_656),
}


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_torchvision_presets_reproduce_torchvision(name):
    params, macs, layers = TORCHVISION[name]
    preset = PRESETS[name]
    c = preset.space.costs(preset.arch)
    assert (c.params, c.macs, c.layers) == (params, macs, layers)


def test_torchvision_macs_within_2_percent_of_published():
    for name, published in {"resnet-18": 1.81e9, "resnet-50": 4.09e9}.items():
        preset = PRESETS[name]
        assert preset.space.costs(preset.arch).macs == pytest.approx(published, rel=0.02)


@pytest.mark.parametrize("name", sorted(DEEPMAD))
def test_deepmad_presets_reproduce_the_independent_count(name):
    macs, params, ind_g, ind_m, pub_g, pub_m, _ = DEEPMAD[name]
    preset = PRESETS[name]
    c = preset.space.costs(preset.arch)
    assert (c.macs, c.params) == (macs, params)
    # The reference gives 2 decimals; R34's 3,634.9 M sits at the rounding edge of its "3.64 G".
    assert c.macs == pytest.approx(ind_g * 1e9, rel=0.002)
    assert round(c.params / 1e6, 2) == ind_m
    assert c.params == pytest.approx(pub_m * 1e6, rel=0.02)
    if name != "deepmad-r50":  # R50: conv+FC MACs are 2.1 % under 4.13 G; see tinynas_flops
        assert c.macs == pytest.approx(pub_g * 1e9, rel=0.02)


@pytest.mark.parametrize("name", sorted(DEEPMAD))
def test_tinynas_flops_reproduce_published_flops(name):
    *_, pub_g, _, tinynas = DEEPMAD[name]
    flops = resnet.tinynas_flops(PRESETS[name].arch)
    assert flops == tinynas
    assert flops == pytest.approx(pub_g * 1e9, rel=0.011)  # measured: +0.95 %, -0.13 %, -1.03 %


def test_tinynas_flops_counts_what_tinynas_counts():
    # One stage on a 224 px input: stem 3x3 s2 3->16 (out 112), then 16->32, btn 8, k3, s2, L = 2.
    one_stage = Skeleton(**{**SKELETONS["imagenet"].__dict__, "name": "one-stage", "strides": (2,)})
    s = resnet.ResNetSpace(one_stage, bits=(32,))
    arch = s.validate({"stem.width": 16, "s1.width": 32, "s1.btn": 8, "s1.kernel": 3, "s1.depth": 2})
    stem = (27 * 16 + 2 * 16 + 16) * 112**2  # conv, BN (2 per output), ReLU
    first = (16 * 8 + 2 * 8 + 8) * 112**2 + (8 * 8 * 9 + 2 * 8 + 8) * 56**2 + (8 * 32 + 2 * 32 + 32) * 56**2
    shortcut = 16 * 112**2 + (16 * 32 + 2 * 32 + 32) * 56**2  # avg pool (per input); 1x1, BN, add
    inner = (32 * 8 + 2 * 8 + 8) * 56**2 + (8 * 8 * 9 + 2 * 8 + 8) * 56**2 + (8 * 32 + 2 * 32 + 32) * 56**2
    assert resnet.tinynas_flops(arch, s) == stem + first + shortcut + inner
    assert s.costs(arch).macs < resnet.tinynas_flops(arch, s)  # conv + FC MACs only


def test_tinynas_flops_rejects_torchvision_skeletons():
    with pytest.raises(ValueError, match="torchvision-basic"):
        resnet.tinynas_flops(PRESETS["resnet-18"].arch, space("torchvision-basic"))


def test_presets_validate_in_their_skeleton():
    expected = {"resnet-18": "torchvision-basic", "resnet-34": "torchvision-basic"}
    expected |= {n: "torchvision-bottleneck" for n in ("resnet-50", "resnet-101", "resnet-152")}
    expected |= {n: "imagenet" for n in DEEPMAD}
    assert set(PRESETS) == set(expected)
    for name, preset in PRESETS.items():
        assert preset.space.variant == expected[name]
        assert preset.space.validate(preset.arch) == preset.arch
        assert preset.space.validate(preset.arch.replace({"bits.head": None})) == preset.arch  # default 32
    for name in DEEPMAD:  # and the DeepMAD structures fit the CIFAR skeleton as well
        space("cifar").validate(PRESETS[name].arch)


def test_layers_count_the_main_path():
    counts = {name: p.space.costs(p.arch).layers for name, p in PRESETS.items()}
    assert counts["resnet-18"] == 18 and counts["resnet-50"] == 50
    # DeepMAD: stem + 3 per inner block + FC (deepmad_formulas.md section 7: 157 before the FC).
    assert counts["deepmad-r50"] == 1 + 3 * (1 + 11 + 12 + 13 + 15) + 1 == 158


def test_activation_bytes_peak_of_resnet_18_is_the_max_pool():
    preset = PRESETS["resnet-18"]
    # The max pool holds its 64x112x112 input and 64x56x56 output; no later tensor pair is larger.
    assert preset.space.costs(preset.arch).activation_bytes == FLOAT_BYTES * (64 * 112**2 + 64 * 56**2)


def test_costs_at_another_resolution_scale_conv_macs():
    preset = PRESETS["deepmad-r50"]
    fc = 1232 * 1000
    at_224 = preset.space.costs(preset.arch).macs - fc
    at_288 = preset.space.costs(preset.arch, resolution=288).macs - fc
    assert at_288 * 7**2 == at_224 * 9**2  # every feature map side grows by 288 / 224 = 9 / 7


def test_bits_change_weight_bytes_of_their_stage_only():
    preset = PRESETS["resnet-50"]
    base = preset.space.costs(preset.arch)
    quant = preset.space.costs(preset.space.validate(preset.arch.replace({"s2.bits": 8})))
    args = ("bottleneck", 256, 512, 128, 3, 4, 2, 56)
    saved = (
        resnet.stage_costs(*args, 32, "torchvision").weight_bytes
        - resnet.stage_costs(*args, 8, "torchvision").weight_bytes
    )
    assert saved > 0
    assert base.weight_bytes - quant.weight_bytes == saved
    assert (quant.macs, quant.params) == (base.macs, base.params)


# --- the space ----------------------------------------------------------------------------------
def test_choice_names_and_order():
    names = [c.name for c in space().choices]
    per_stage = [f"s{i}.{k}" for i in range(1, 6) for k in ("width", "btn", "kernel", "depth", "bits")]
    assert names == ["stem.width", "bits.stem", *per_stage, "bits.head"]
    basic = [c.name for c in space("torchvision-basic", bits=(32,)).choices]
    assert basic == ["stem.width"] + [f"s{i}.{k}" for i in range(1, 5) for k in ("width", "kernel", "depth")]
    bits = {c.name: c for c in space().choices if "bits" in c.name}
    assert all(c.options == (4, 8, 16, 32) and c.default == 32 and c.doc for c in bits.values())


def test_imagenet_and_cifar_share_their_choices():
    imagenet, cifar = space("imagenet"), space("cifar")
    assert imagenet.choices == cifar.choices
    assert (imagenet.resolution, cifar.resolution) == (224, 32)
    assert isinstance(imagenet, SearchSpace) and imagenet == space() and hash(imagenet) == hash(space())
    arch = cifar.sample(np.random.default_rng(3))
    assert imagenet.validate(arch) == arch
    assert imagenet.costs(arch).macs > cifar.costs(arch).macs
    assert imagenet.costs(arch).params - cifar.costs(arch).params == (1000 - 10) * (arch["s5.width"] + 1)


def test_unknown_skeleton():
    with pytest.raises(UnknownSpaceError, match=r'unknown skeleton "imagenet-xl".*imagenet, cifar'):
        space("imagenet-xl")


@pytest.mark.parametrize(
    ("changes", "key", "allowed"),
    [
        ({"s3.width": 504}, "s3.width", "512, 520, ..., 2048 (step 8)"),  # decreasing middle stage
        ({"s2.width": 520}, "s2.width", "128, 136, ..., 512 (step 8)"),  # > 4x stage 1 (128)
        ({"s1.btn": 136}, "s1.btn", "8, 16, ..., 128 (step 8)"),  # btn above width
        ({"s2.btn": 40}, "s2.btn", "48, 56, ..., 512 (step 8)"),  # below 8 * floor(512 / 80)
        ({"s1.depth": 4}, "s1.depth", "1, 2, 3"),  # TinyNAS: first stage depth <= 3
    ],
)
def test_constraint_errors_name_the_key_and_the_range(changes, key, allowed):
    preset = PRESETS["deepmad-r50"]
    with pytest.raises(InvalidArchError) as err:
        preset.space.validate(preset.arch.replace(changes))
    message = str(err.value)
    assert f'"{key}"' in message and allowed in message


def _satisfies_constraints(s: resnet.ResNetSpace, arch) -> bool:
    """The structural rules of the module docstring, written independently of `options`."""
    sk, n = s.skeleton, len(s.skeleton.strides)
    widths = [arch[f"s{i}.width"] for i in range(1, n + 1)]
    ok = all(a <= b for a, b in itertools.pairwise(widths[:-1]))
    ok &= all(b <= 4 * a for a, b in itertools.pairwise(widths))
    if sk.block == "bottleneck":
        for i, w in enumerate(widths, start=1):
            btn = arch[f"s{i}.btn"]
            ok &= max(8, 8 * (w // 10 // 8)) <= btn <= w
    if sk.first_depth_max is not None:
        ok &= arch["s1.depth"] <= sk.first_depth_max
    return ok


@pytest.mark.parametrize("skeleton", sorted(SKELETONS))
def test_samples_validate_and_satisfy_the_constraints(skeleton):
    s, rng = space(skeleton), np.random.default_rng(0)
    archs = [s.sample(rng) for _ in range(300)]
    for arch in archs:
        assert s.validate(arch) == arch
        assert _satisfies_constraints(s, arch)
    n = len(s.skeleton.strides)
    last_narrower = sum(a[f"s{n}.width"] < a[f"s{n - 1}.width"] for a in archs)
    assert len({a.fingerprint for a in archs}) == 300 and last_narrower > 0


@pytest.mark.parametrize("skeleton", ["imagenet", "torchvision-basic"])
def test_mutate_and_crossover_stay_valid(skeleton):
    s, rng = space(skeleton), np.random.default_rng(1)
    population = [s.sample(rng) for _ in range(20)]
    for _ in range(150):
        a, b = population[rng.integers(20)], population[rng.integers(20)]
        child = s.mutate(a, rng)
        cross = s.crossover(a, b, rng)
        for arch in (child, cross):
            assert s.validate(arch) == arch and _satisfies_constraints(s, arch)
        assert child != a
        population[rng.integers(20)] = child


_TINY = Skeleton(
    name="tiny",
    resolution=32,
    num_classes=10,
    block="bottleneck",
    stem_kernel=3,
    stem_stride=1,
    stem_maxpool=False,
    strides=(1, 2, 2),
    shortcut="deepmad",
    stem_widths=(16, 24),
    widths=(16, 40, 88, 168),  # 16 -> 88 and 40 -> 168 exceed 4x; btn >= 16 for 168
    btns=(8, 16, 40, 88, 168),
    kernels=(3,),
    depths=(1, 2),
    first_depth_max=1,
)


def _walk_count(s: resnet.ResNetSpace) -> int:
    """Number of complete architectures, enumerated by walking `options` choice by choice."""

    def walk(i: int, values: dict) -> int:
        if i == len(s.choices):
            return 1
        allowed = s.options(s.choices[i], values)
        return sum(walk(i + 1, {**values, s.choices[i].name: v}) for v in allowed)

    return walk(0, {})


def test_size_equals_brute_force_enumeration():
    s = resnet.ResNetSpace(_TINY, bits=(32,))
    names = [c.name for c in s.choices]
    product = itertools.product(*(c.options for c in s.choices))
    brute = sum(_satisfies_constraints(s, dict(zip(names, values, strict=True))) for values in product)
    assert brute > 100
    assert s.size() == brute == _walk_count(s)
    quantized = resnet.ResNetSpace(_TINY, bits=(8, 32))
    assert quantized.size() == brute * 2 ** (3 + 2)  # bits of the stem, 3 stages and the head


def test_size_of_the_deepmad_space():
    assert space().size() == 697_875_132_575_300_625_941_509_592_580_096
    assert space(bits=(32,)).size() * 4**7 == space().size()


def test_skeleton_rejects_grids_that_could_dead_end():
    with pytest.raises(ValueError, match="bottleneck option"):
        Skeleton(**{**_TINY.__dict__, "btns": (8, 16, 40)})
    with pytest.raises(ValueError, match="depth option"):
        Skeleton(**{**_TINY.__dict__, "depths": (2, 3), "first_depth_max": 1})


# --- closed-form block costs equal the composition of nasx.costs primitives ---------------------
STYLES = ("deepmad", "torchvision")


def _reference_block(kind, c_in, c_out, btn, k, stride, size, bits, projection, style) -> Costs:
    """Composition of `conv2d` with `+` and `.holding`: the block input is held until the add, a
    projection runs after the main path while its output is held."""
    out = out_size(size, k, stride)
    x_bytes, y_bytes = FLOAT_BYTES * c_in * size * size, FLOAT_BYTES * c_out * out * out
    if kind == "bottleneck":
        main = (
            conv2d(c_in, btn, 1, size, bits=bits)
            + conv2d(btn, btn, k, size, stride=stride, bits=bits).holding(x_bytes)
            + conv2d(btn, c_out, 1, out, bits=bits).holding(x_bytes)
        )
    else:
        main = conv2d(c_in, c_out, k, size, stride=stride, bits=bits) + conv2d(
            c_out, c_out, k, out, bits=bits
        ).holding(x_bytes)
    if not projection:
        return main
    if style == "deepmad" and stride == 2:
        pool = Costs(activation_bytes=FLOAT_BYTES * c_in * (size * size + out * out))
        shortcut = pool + conv2d(c_in, c_out, 1, out, bits=bits, layers=0)
    else:
        shortcut = conv2d(c_in, c_out, 1, size, stride=stride, bits=bits, layers=0)
    return main + shortcut.holding(y_bytes)


@pytest.mark.parametrize("kind", ["bottleneck", "basic"])
@pytest.mark.parametrize("style", STYLES)
def test_block_costs_equal_the_conv2d_composition(kind, style):
    cases = itertools.product(
        (16, 96), (24, 96, 512), (8, 40), (3, 5), (1, 2), (7, 56), (4, 32), (False, True)
    )
    for c_in, c_out, btn, k, stride, size, bits, projection in cases:
        if kind == "bottleneck":
            got = resnet.bottleneck_costs(c_in, c_out, btn, k, stride, size, bits, projection, style)
        else:
            got = resnet.basic_costs(c_in, c_out, k, stride, size, bits, projection, style)
        assert got == _reference_block(kind, c_in, c_out, btn, k, stride, size, bits, projection, style)


def test_stage_costs_are_first_block_plus_identical_inner_blocks():
    for style, (c_in, stride) in itertools.product(STYLES, ((64, 2), (256, 1))):
        stage = resnet.stage_costs("bottleneck", c_in, 256, 64, 3, 5, stride, 56, 8, style)
        projection = style == "deepmad" or c_in != 256 or stride != 1
        first = resnet.bottleneck_costs(c_in, 256, 64, 3, stride, 56, 8, projection, style)
        inner = resnet.bottleneck_costs(256, 256, 64, 3, 1, out_size(56, 3, stride), 8, False, style)
        assert stage == first + 4 * inner
    # torchvision: no projection when the shape is kept; deepmad forces one.
    keep = {s: resnet.stage_costs("basic", 64, 64, 0, 3, 1, 1, 56, 32, s).params for s in STYLES}
    assert keep["deepmad"] - keep["torchvision"] == 64 * 64 + 2 * 64


def test_costs_compose_stem_stages_and_head():
    s, rng = space("imagenet"), np.random.default_rng(5)
    for _ in range(20):
        arch = s.sample(rng)
        c_in, size = arch["stem.width"], 112
        total = conv2d(3, c_in, 3, 224, stride=2, bits=arch["bits.stem"])
        for i, stride in enumerate((2, 2, 2, 1, 2), start=1):
            w, k = arch[f"s{i}.width"], arch[f"s{i}.kernel"]
            args = (c_in, w, arch[f"s{i}.btn"], k, arch[f"s{i}.depth"], stride, size, arch[f"s{i}.bits"])
            total += resnet.stage_costs("bottleneck", *args, "deepmad")
            size, c_in = out_size(size, k, stride), w
        fc = c_in * 1000 + 1000
        got = s.costs(arch)
        assert (got.macs, got.params, got.layers) == (
            total.macs + fc - 1000,
            total.params + fc,
            total.layers + 1,
        )
        assert got.activation_bytes == max(total.activation_bytes, FLOAT_BYTES * c_in * (size * size + 1))
