"""Tests of the MBConv (OFA / MobileNetV3) space: reference numbers, conditional choices, size, costs."""

from __future__ import annotations

import numpy as np
import pytest

from nasx.costs import FLOAT_BYTES, Costs, conv2d, dense, out_size
from nasx.errors import InvalidArchError, UnknownSpaceError
from nasx.sampling import extreme
from nasx.space import Arch, SearchSpace
from search_spaces.mobilenet.spec import (
    PRESETS,
    SKELETONS,
    MobileNetSpace,
    Skeleton,
    Stage,
    make_divisible,
    mbconv_costs,
    scale_widths,
    space,
)

# --- reference numbers (shared/reference/reference_models.md) ----------------------------------


def _within(value: int, reference: float, rtol: float = 0.02) -> bool:
    return abs(value - reference) <= rtol * reference


def test_mobilenet_v2_preset_is_torchvision() -> None:
    """torchvision mobilenet_v2: 3,504,872 params exactly; 300.8 M MACs (paper: 300 M)."""
    preset = PRESETS["mobilenet-v2"]
    c = preset.space.costs(preset.arch)
    assert c.params == 3_504_872
    assert c.macs == 300_774_272  # regression; the reference file's independent count is 300.8 M
    assert _within(c.macs, 300.8e6, rtol=0.001) and _within(c.macs, 300e6)
    assert c.layers == 53  # stem + 2 + 16 x 3 + final conv + FC
    # Peak: the first stride-2 depthwise conv, 96 x 112^2 in and 96 x 56^2 out, float32.
    assert c.activation_bytes == FLOAT_BYTES * 96 * (112 * 112 + 56 * 56)
    assert c.weight_bytes == FLOAT_BYTES * c.params  # 32 bits everywhere


def test_ofa_595m_preset_matches_the_model_zoo() -> None:
    """OFA flops@595M_top1@80.0: 595 M MACs and 9.1 M params published; 595.2 M / 9.14 M counted."""
    preset = PRESETS["ofa-595m"]
    assert preset.arch["resolution"] == 236 and preset.space.variant == "imagenet"
    c = preset.space.costs(preset.arch)
    assert (c.macs, c.params) == (595_189_032, 9_135_928)  # regression
    assert _within(c.macs, 595e6) and _within(c.params, 9.1e6)
    assert _within(c.macs, 595.2e6, rtol=0.001) and _within(c.params, 9.14e6, rtol=0.001)
    assert c.layers == 1 + 2 + 19 * 3 + 3  # stem, first block, 19 MBConvs, final conv + mix + FC


def test_efficientnet_b0_preset_is_torchvision() -> None:
    """torchvision efficientnet_b0: 5,288,548 params exactly; 0.39 G MACs (385.8 M counted)."""
    preset = PRESETS["efficientnet-b0"]
    c = preset.space.costs(preset.arch)
    assert c.params == 5_288_548
    assert c.macs == 385_814_752  # regression
    assert _within(c.macs, 390e6) and _within(c.macs, 385.8e6, rtol=0.001)


def test_presets_are_valid_in_their_spaces() -> None:
    for name, preset in PRESETS.items():
        assert preset.space.validate(preset.arch) == preset.arch, name
        assert preset.space.variant in SKELETONS and preset.reference


def test_make_divisible_is_the_mobilenet_rule() -> None:
    # MobileNetV3's SE squeezes: 72 -> 24 (18 rounds to 16, more than 10 % down), 120 -> 32, 240 -> 64.
    assert [make_divisible(v / 4) for v in (72, 120, 240, 480, 16)] == [24, 32, 64, 120, 8]


# --- cost composition ---------------------------------------------------------------------------


def _reference_block(c_in, c_out, kernel, expand, stride, se, size, bits, rule="mid") -> Costs:
    """MBConv composed from nasx.costs primitives with `+` and `holding`, layer by layer."""
    mid, out = c_in * expand, out_size(size, kernel, stride)
    held = FLOAT_BYTES * c_in * size * size if stride == 1 and c_in == c_out else 0
    layers = [conv2d(c_in, mid, 1, size, bits=bits)] if expand > 1 else []
    layers.append(conv2d(mid, mid, kernel, size, stride=stride, groups=mid, bits=bits))
    if se:
        squeeze = make_divisible(mid / 4) if rule == "mid" else max(1, c_in // 4)
        excite = conv2d(mid, squeeze, 1, 1, bits=bits, bias=True, bn=False, layers=0)
        excite += conv2d(squeeze, mid, 1, 1, bits=bits, bias=True, bn=False, layers=0)
        layers.append(excite.holding(FLOAT_BYTES * mid * out * out))
    layers.append(conv2d(mid, c_out, 1, out, bits=bits))
    total = layers[0]  # the first layer reads the held input itself
    for layer in layers[1:]:
        total += layer.holding(held)
    return total


def test_mbconv_costs_equal_the_primitives_composed() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        c_in, c_out = (int(c) for c in rng.choice([8, 16, 24, 40], size=2))
        stride = int(rng.choice([1, 2]))
        args = (c_in, c_out, int(rng.choice([3, 5, 7])), int(rng.choice([1, 3, 4, 6])), stride)
        se, size, bits = bool(rng.integers(2)), int(rng.integers(1, 60)), int(rng.choice([4, 8, 32]))
        rule = str(rng.choice(["mid", "input"]))
        got = mbconv_costs(*args, se, size, bits, rule)
        assert got == _reference_block(*args, se, size, bits, rule), (args, se, size, bits, rule)
    # By hand: 16 -> 16, k3, e6, stride 1, no SE, at 8 px: expansion, depthwise, projection.
    c = mbconv_costs(16, 16, 3, 6, 1, False, 8, 32)
    assert c.macs == (16 * 96 + 9 * 96 + 96 * 16) * 64 and c.layers == 3
    assert c.params == 16 * 96 + 9 * 96 + 96 * 16 + 2 * (96 + 96 + 16)
    assert c.activation_bytes == FLOAT_BYTES * (16 + 96 + 96) * 64  # depthwise in/out + held input
    assert mbconv_costs(16, 24, 3, 1, 2, False, 8, 32).layers == 2  # no expansion conv


def _reference_network(space_: MobileNetSpace, arch: Arch, size: int) -> Costs:
    """Stem + first block + sum of mbconv_costs per block + head, from the skeleton spec."""
    sk, rule = space_.skeleton, space_.skeleton.se_squeeze
    stem_bits, head_bits = arch.get("bits.stem", 32), arch.get("bits.head", 32)
    total = conv2d(3, sk.stem_width, 3, size, stride=sk.stem_stride, bits=stem_bits)
    size = out_size(size, 3, sk.stem_stride)
    total += mbconv_costs(
        sk.stem_width, sk.first_width, 3, 1, sk.first_stride, sk.first_se, size, stem_bits, rule
    )
    size, c_in = out_size(size, 3, sk.first_stride), sk.first_width
    for s, stage in enumerate(sk.stages, start=1):
        for j in range(1, arch[f"s{s}.depth"] + 1):
            kernel, stride = arch[f"s{s}.b{j}.kernel"], stage.stride if j == 1 else 1
            bits = arch.get(f"s{s}.b{j}.bits", 32)
            total += mbconv_costs(
                c_in,
                stage.width,
                kernel,
                arch[f"s{s}.b{j}.expand"],
                stride,
                arch[f"s{s}.se"],
                size,
                bits,
                rule,
            )
            size, c_in = out_size(size, kernel, stride), stage.width
    total += conv2d(c_in, sk.head_width, 1, size, bits=head_bits)
    features = sk.head_width
    if sk.mix_width:
        total += conv2d(features, sk.mix_width, 1, 1, bits=head_bits, bias=sk.mix_bias, bn=False)
        features = sk.mix_width
    return total + dense(features, sk.num_classes, bits=head_bits)


@pytest.mark.parametrize(
    ("skeleton", "bits"),
    [*((name, (4, 8, 16, 32)) for name in SKELETONS), ("imagenet", (32,))],
    ids=[*(f"{name}-quantized" for name in SKELETONS), "imagenet-float"],
)
def test_costs_are_stem_plus_mbconv_terms_plus_head(skeleton: str, bits: tuple[int, ...]) -> None:
    """costs() equals an independent sum of mbconv_costs(): what the MP solver relies on."""
    space_ = space(skeleton, bits=bits)
    rng = np.random.default_rng(1)
    for _ in range(100):
        arch = space_.sample(rng)
        size = space_.skeleton.fixed_resolution or arch["resolution"]
        assert space_.costs(arch) == _reference_network(space_, arch, size)
        assert space_.costs(arch, resolution=160) == _reference_network(space_, arch, 160)


def test_resolution_comes_from_argument_then_arch_then_skeleton() -> None:
    imagenet, cifar = space("imagenet"), space("cifar")
    assert (imagenet.resolution, cifar.resolution, space("mobilenet-v2").resolution) == (224, 32, 224)
    arch = PRESETS["ofa-595m"].arch  # resolution 236
    assert (
        imagenet.costs(arch) == imagenet.costs(arch, resolution=236) != imagenet.costs(arch, resolution=224)
    )
    assert imagenet.costs(arch.replace({"resolution": 224})) == imagenet.costs(arch, resolution=224)
    # cifar ignores the choice and uses its 32 px, unless told otherwise.
    assert (
        cifar.costs(arch)
        == cifar.costs(arch.replace({"resolution": 128}))
        == cifar.costs(arch, resolution=32)
    )
    assert cifar.costs(arch, resolution=64).macs > cifar.costs(arch).macs


def test_macs_scale_quadratically_with_resolution() -> None:
    s = space("imagenet")
    arch = s.sample(np.random.default_rng(2))
    small, large = s.costs(arch, resolution=128), s.costs(arch, resolution=256)
    fixed = dense(1152, 1536).macs + dense(1536, 1000).macs  # feature mix + classifier: no pixels
    assert 3.9 < (large.macs - fixed) / (small.macs - fixed) <= 4.0  # exact 4 but for SE vectors
    assert large.params == small.params and large.weight_bytes == small.weight_bytes
    assert large.activation_bytes == 4 * small.activation_bytes


def test_lower_bits_shrink_weight_bytes_only() -> None:
    s = space("imagenet")
    arch = PRESETS["ofa-595m"].arch
    full = s.costs(arch)
    four = s.costs(arch.replace({k: 4 for k in arch if "bits" in k}))
    assert (four.macs, four.params, four.layers) == (full.macs, full.params, full.layers)
    assert 0.12 < four.weight_bytes / full.weight_bytes < 0.2  # 4/32 plus scales, biases, BN


# --- choices ------------------------------------------------------------------------------------


def test_choice_grid_and_names() -> None:
    s = space("imagenet")
    names = [c.name for c in s.choices]
    assert names[:4] == ["resolution", "bits.stem", "s1.depth", "s1.se"]
    assert names[4:7] == ["s1.b1.kernel", "s1.b1.expand", "s1.b1.bits"]
    assert names[-1] == "bits.head" and len(names) == 2 + 5 * (2 + 4 * 3) + 1
    by_name = {c.name: c for c in s.choices}
    assert 224 in by_name["resolution"].options and 236 in by_name["resolution"].options
    assert by_name["s3.b2.kernel"].options == (3, 5, 7) and by_name["s3.b2.expand"].options == (3, 4, 6)
    assert by_name["s5.depth"].options == (2, 3, 4) and by_name["s2.se"].options == (False, True)
    assert all(c.doc for c in s.choices)
    assert all(by_name[n].default == 32 for n in names if n.endswith("bits") or n.startswith("bits."))
    float_only = [c.name for c in space("imagenet", bits=(32,)).choices]
    assert float_only == [n for n in names if "bits" not in n]


def test_imagenet_and_cifar_have_the_same_choices() -> None:
    imagenet, cifar = space("imagenet"), space("cifar")
    assert [(c.name, c.options, c.default) for c in imagenet.choices] == [
        (c.name, c.options, c.default) for c in cifar.choices
    ]
    assert imagenet.size() == cifar.size()
    arch = imagenet.sample(np.random.default_rng(3))
    assert cifar.validate(arch) == arch


def test_small_is_sized_for_28_px_on_a_cpu() -> None:
    """Four stages at 14, 14, 7 and 4 px (stride-2 stem), costs at a fixed 28 px: 1.5-19.3M MACs."""
    s = space("small", bits=(32,))
    by_name = {c.name: c for c in s.choices}
    assert s.resolution == 28 and by_name["resolution"].options == (28,) and s.num_classes == 10
    assert [by_name[f"s{i}.depth"].options for i in range(1, 5)] == [(1, 2, 3)] * 4
    assert "s5.depth" not in by_name and s.scaled.mix_width == 0
    assert by_name["s4.b3.kernel"].options == (3, 5, 7) and by_name["s4.b3.expand"].options == (2, 3, 4, 6)
    assert [s.block_input_side(i, 2, 28) for i in range(1, 5)] == [14, 14, 7, 4]
    big = extreme(s, "largest")
    largest, smallest = s.costs(big), s.costs(extreme(s, "smallest"))
    assert (largest.macs, largest.params) == (19_324_912, 575_202)
    assert (smallest.macs, smallest.params) == (1_540_528, 34_170)
    assert s.costs(big, resolution=32).macs > largest.macs  # other sides only when asked for


def test_blocks_beyond_the_depth_are_absent() -> None:
    s = space("imagenet")
    arch = s.validate(
        PRESETS["ofa-595m"].arch.replace(
            {"s1.depth": 2, "s1.b3.kernel": None, "s1.b3.expand": None, "s1.b3.bits": None}
        )
    )
    assert "s1.b2.kernel" in arch and not [k for k in arch if k.startswith(("s1.b3.", "s1.b4."))]
    with pytest.raises(InvalidArchError, match=r'"s1\.b3\.kernel" is not used by this architecture'):
        s.validate(arch.replace({"s1.b3.kernel": 5}))


def test_missing_choice_is_named_with_its_options() -> None:
    s = space("imagenet")
    arch = PRESETS["ofa-595m"].arch
    with pytest.raises(InvalidArchError, match=r'missing choice "s2\.b4\.kernel"; expected one of 3, 5, 7'):
        s.validate(arch.replace({"s2.b4.kernel": None}))
    with pytest.raises(
        InvalidArchError, match=r'"s3\.b1\.expand" = 5 is not allowed; expected one of 3, 4, 6'
    ):
        s.validate(arch.replace({"s3.b1.expand": 5}))
    with pytest.raises(InvalidArchError, match=r'"s1\.depth" = 1 is not allowed'):
        s.validate(arch.replace({"s1.depth": 1}))


def test_omitted_bits_default_to_32() -> None:
    s = space("imagenet")
    arch = PRESETS["ofa-595m"].arch
    bare = {k: v for k, v in arch.items() if "bits" not in k}
    filled = s.validate(bare)
    bits_keys = [k for k in filled if "bits" in k]
    assert len(bits_keys) == 2 + 19 and all(filled[k] == 32 for k in bits_keys)
    assert filled == arch


def test_samples_are_valid_and_use_every_depth() -> None:
    s = space("imagenet")
    rng = np.random.default_rng(4)
    depths = set()
    for _ in range(300):
        arch = s.sample(rng)
        assert s.validate(arch) == arch
        for stage in range(1, 6):
            depth = arch[f"s{stage}.depth"]
            depths.add(depth)
            assert sorted(k for k in arch if k.startswith(f"s{stage}.b")) == sorted(
                f"s{stage}.b{j}.{f}" for j in range(1, depth + 1) for f in ("kernel", "expand", "bits")
            )
    assert depths == {2, 3, 4}


def _block_keys(arch: Arch, stage: int) -> set[str]:
    return {k for k in arch if k.startswith(f"s{stage}.b")}


def test_mutation_and_crossover_stay_valid_and_follow_depth() -> None:
    s = space("imagenet")
    rng = np.random.default_rng(5)
    depth_changes = 0
    for _ in range(300):
        parent = s.sample(rng)
        child = s.mutate(parent, rng)
        assert s.validate(child) == child
        for stage in range(1, 6):
            old, new = parent[f"s{stage}.depth"], child[f"s{stage}.depth"]
            assert len(_block_keys(child, stage)) == 3 * new
            if new != old:
                depth_changes += 1
                kept = _block_keys(parent, stage) & _block_keys(child, stage)
                assert len(kept) == 3 * min(old, new)  # the shared blocks keep their keys
    assert depth_changes > 10
    shallow = s.validate(
        {**PRESETS["ofa-595m"].arch.to_dict(), "s1.depth": 4, "s1.b4.kernel": 7, "s1.b4.expand": 6}
    )
    deep_or_not = {s.crossover(PRESETS["ofa-595m"].arch, shallow, rng)["s1.depth"] for _ in range(50)}
    assert deep_or_not == {3, 4}
    for _ in range(100):
        a, b = s.sample(rng), s.sample(rng)
        child = s.crossover(a, b, rng)
        assert s.validate(child) == child


def test_encode_decode_round_trip() -> None:
    s = space("mobilenet-v2")
    rng = np.random.default_rng(6)
    for _ in range(50):
        arch = s.sample(rng)
        assert s.decode(s.encode(arch)) == arch


# --- size ---------------------------------------------------------------------------------------


def _brute_force_count(space_: MobileNetSpace) -> int:
    """Walk every choice in order with the space's own options(): count the distinct archs."""
    choices, archs = space_.choices, set()

    def walk(i: int, values: dict) -> None:
        if i == len(choices):
            archs.add(Arch(values))
            return
        allowed = space_.options(choices[i], values)
        if not allowed:
            walk(i + 1, values)
        for value in allowed:
            walk(i + 1, {**values, choices[i].name: value})

    walk(0, {})
    return len(archs)


def _tiny(stages: int, bits: tuple[int, ...]) -> MobileNetSpace:
    skeleton = Skeleton(
        name="tiny",
        stem_width=8,
        first_width=8,
        stages=tuple(Stage(8 * (s + 2), 2, "relu", (1, 2)) for s in range(stages)),
        head_width=64,
        resolutions=(32, 64),
        default_resolution=32,
        kernels=(3, 5),
        expands=(3, 6),
    )
    return MobileNetSpace(skeleton, bits=bits)


@pytest.mark.parametrize(
    ("stages", "bits"), [(2, (32,)), (1, (8, 32))], ids=["2-stages-float", "1-stage-quantized"]
)
def test_size_equals_brute_force(stages: int, bits: tuple[int, ...]) -> None:
    s = _tiny(stages, bits)
    assert s.size() == _brute_force_count(s)
    # 2 stages x (4 + 4^2) blocks x 2 SE, 2 resolutions; 1 stage x (8 + 8^2) x 2 SE, 2 res, 2^2 bits.
    assert s.size() == {(2, (32,)): 2 * 40**2, (1, (8, 32)): 2 * 144 * 4}[(stages, bits)]


def test_size_of_the_imagenet_space() -> None:
    per_block = 3 * 3 * 4
    per_stage = 2 * sum(per_block**d for d in (2, 3, 4))
    assert space("imagenet").size() == 33 * 4**2 * per_stage**5
    assert space("imagenet", bits=(32,)).size() == 33 * (2 * sum(9**d for d in (2, 3, 4))) ** 5


# --- factory ------------------------------------------------------------------------------------


def test_factory_and_protocol() -> None:
    s = space()
    assert isinstance(s, SearchSpace) and s.name == "mobilenet" and s.variant == "imagenet"
    assert next(iter(SKELETONS)) == "imagenet" and {"cifar", "mobilenet-v2"} <= set(SKELETONS)
    assert space("cifar").skeleton.num_classes == 10 and space("cifar").skeleton.stem_stride == 1
    with pytest.raises(
        UnknownSpaceError, match=r'unknown skeleton "mobilenet-v9"; expected one of imagenet, cifar'
    ):
        space("mobilenet-v9")
    with pytest.raises(ValueError, match="bit-widths"):
        space(bits=())


# --- width multiplier ---------------------------------------------------------------------------


def test_width_multiplier_keeps_the_choices_and_scales_every_fixed_width() -> None:
    full, half, quarter = space("cifar"), space("cifar", width_mult=0.5), space("cifar", width_mult=0.25)
    assert [(c.name, c.options, c.default) for c in half.choices] == [
        (c.name, c.options, c.default) for c in full.choices
    ]
    assert half.size() == full.size() and half.variant == full.variant == "cifar"
    sk = quarter.scaled  # make_divisible(w / 4, 8): 24 -> 8, 136 -> 32 (34 rounds down), 1152 -> 288
    assert (sk.stem_width, sk.first_width, sk.head_width, sk.mix_width) == (8, 8, 288, 384)
    assert [s.width for s in sk.stages] == [8, 16, 24, 32, 48]
    assert [s.width for s in half.scaled.stages] == [16, 24, 48, 72, 96]
    assert space("mobilenet-v2", width_mult=0.5).scaled.mix_width == 0  # no feature mix stays none
    assert quarter.skeleton == full.skeleton == full.scaled  # the choices' skeleton is unscaled


def test_width_multiplier_one_changes_nothing() -> None:
    assert space("imagenet", width_mult=1.0) == space("imagenet")
    custom = _tiny(1, (32,))
    odd = Skeleton(**{**custom.skeleton.__dict__, "stem_width": 12})  # not a multiple of 8
    assert MobileNetSpace(odd, width_mult=1.0).scaled.stem_width == 12
    rng = np.random.default_rng(7)
    for name in SKELETONS:
        s = space(name)
        arch = s.sample(rng)
        assert space(name, width_mult=1.0).costs(arch) == s.costs(arch)
    for preset in PRESETS.values():  # the published numbers are at width 1
        assert preset.space.width_mult == 1.0


def test_costs_follow_the_scaled_widths() -> None:
    rng = np.random.default_rng(8)
    for name in ("imagenet", "cifar", "efficientnet-b0"):
        small, large = space(name, width_mult=0.5), space(name, width_mult=1.5)
        arch = small.sample(rng)
        assert large.validate(arch) == arch  # the same architecture at every width
        size = small.skeleton.fixed_resolution or arch["resolution"]
        # costs at width m are the costs of the explicitly scaled skeleton at width 1
        assert small.costs(arch) == _reference_network(
            MobileNetSpace(scale_widths(small.skeleton, 0.5)), arch, size
        )
        c_small, c_full, c_large = small.costs(arch), space(name).costs(arch), large.costs(arch)
        assert c_small.params < c_full.params < c_large.params
        assert c_small.macs < c_full.macs < c_large.macs
        assert c_small.layers == c_full.layers == c_large.layers
    with pytest.raises(ValueError, match="width multiplier"):
        space(width_mult=0.0)
