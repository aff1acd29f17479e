"""Generic properties every search space must have: parametrized over all families and variants."""

from __future__ import annotations

import itertools
import json
import re

import numpy as np
import pytest

import search_spaces
from nasx.errors import ArchFormatError, InvalidArchError
from nasx.space import Arch, SearchSpace

SPACES = [
    pytest.param(factory(variant), id=f"{family}:{variant}")
    for family, factory in search_spaces.SPACES.items()
    for variant in search_spaces.SKELETONS[family]
] + [pytest.param(search_spaces.nb201.space(bits=(4, 8, 16, 32)), id="nb201:cifar10+bits")]
N_SAMPLES = 150


def _samples(space: SearchSpace, n: int = N_SAMPLES, seed: int = 0) -> list[Arch]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


@pytest.mark.parametrize("space", SPACES)
def test_samples_validate_and_are_canonical(space: SearchSpace) -> None:
    for arch in _samples(space):
        assert space.validate(arch) == arch
        assert space.canonical(arch) == arch
        assert all(space.options(c, arch) for c in space.choices if c.name in arch)
        # inactive choices are absent, active ones present: one meaning, one Arch
        active = {c.name for c in space.choices if space.options(c, arch)}
        assert set(arch) == active


@pytest.mark.parametrize("space", SPACES)
def test_sampling_is_seeded(space: SearchSpace) -> None:
    assert _samples(space, 20, seed=3) == _samples(space, 20, seed=3)
    assert _samples(space, 20, seed=3) != _samples(space, 20, seed=4)


@pytest.mark.parametrize("space", SPACES)
def test_json_round_trip_and_fingerprint(space: SearchSpace) -> None:
    for arch in _samples(space, 30):
        text = arch.to_json()
        back = Arch.from_json(text)
        assert back == arch and hash(back) == hash(arch)
        assert back.fingerprint == arch.fingerprint
        shuffled = dict(reversed(list(json.loads(text).items())))
        assert Arch(shuffled).fingerprint == arch.fingerprint
        assert space.validate(json.loads(text)) == arch


@pytest.mark.parametrize("space", SPACES)
def test_encode_decode_round_trip(space: SearchSpace) -> None:
    for arch in _samples(space, 50):
        vec = space.encode(arch)
        assert vec.shape == (len(space.choices),) and vec.dtype == np.int32
        assert ((vec == -1) == np.array([c.name not in arch for c in space.choices])).all()
        assert space.decode(vec) == arch


@pytest.mark.parametrize("space", SPACES)
def test_mutate_and_crossover_stay_valid(space: SearchSpace) -> None:
    rng = np.random.default_rng(1)
    archs = _samples(space, 40)
    changed = 0
    for a, b in itertools.pairwise(archs):
        m = space.mutate(a, rng)
        assert space.validate(m) == m
        changed += m != a
        c = space.crossover(a, b, rng)
        assert space.validate(c) == c
        assert space.crossover(a, a, rng) == a
    assert changed == len(archs) - 1, "every mutation must change the architecture"


@pytest.mark.parametrize("space", SPACES)
def test_validate_names_the_bad_key(space: SearchSpace) -> None:
    arch = _samples(space, 1)[0]
    # a choice with one option is filled in when omitted (nasnet:small's N): take one with several
    required = next(c for c in space.choices if c.name in arch and c.default is None and len(c.options) > 1)

    missing = {k: v for k, v in arch.items() if k != required.name}
    name = re.escape(required.name)
    with pytest.raises(InvalidArchError, match=f'missing choice "{name}"'):
        space.validate(missing)

    with pytest.raises(InvalidArchError, match=re.escape('unknown choice "no.such.choice"')):
        space.validate({**arch, "no.such.choice": 1})

    bad_value = "not-an-option"
    with pytest.raises(InvalidArchError, match=f'"{name}" = "{bad_value}" is not allowed; expected one of'):
        space.validate({**arch, required.name: bad_value})

    with pytest.raises(ArchFormatError):
        space.validate({**arch, required.name: [1, 2]})


@pytest.mark.parametrize("space", SPACES)
def test_decode_rejects_out_of_range(space: SearchSpace) -> None:
    vec = space.encode(_samples(space, 1)[0])
    i = int(np.flatnonzero(vec >= 0)[0])
    vec[i] = len(space.choices[i].options)
    with pytest.raises(InvalidArchError, match=re.escape(f'position {i} ("{space.choices[i].name}")')):
        space.decode(vec)
    with pytest.raises(InvalidArchError, match="shape"):
        space.decode(vec[:-1])


@pytest.mark.parametrize("space", SPACES)
def test_costs_are_positive_and_deterministic(space: SearchSpace) -> None:
    for arch in _samples(space, 20):
        c = space.costs(arch)
        assert c.macs > 0 and c.params > 0 and c.weight_bytes > 0 and c.activation_bytes > 0 and c.layers > 0
        assert all(
            isinstance(v, int) for v in (c.macs, c.params, c.weight_bytes, c.activation_bytes, c.layers)
        )
        assert c == space.costs(Arch.from_json(arch.to_json()))


@pytest.mark.parametrize("space", SPACES)
def test_size_is_consistent(space: SearchSpace) -> None:
    n = space.size()
    assert isinstance(n, int) and n >= 1
    assert space.log10_size() == pytest.approx(np.log10(float(n)))
    distinct = len(set(_samples(space, 60)))
    assert distinct <= n


def test_every_preset_validates_in_its_space() -> None:
    assert search_spaces.PRESETS, "no presets"
    for name, preset in search_spaces.PRESETS.items():
        assert preset.name == name
        assert preset.space.validate(preset.arch) == preset.arch
        assert preset.space.name in search_spaces.SPACES


def test_variants_of_a_family_share_choice_names() -> None:
    """An architecture transfers between a family's ImageNet-size and CIFAR-size skeletons."""
    for family in ("nasnet", "mobilenet", "resnet"):
        names = {v: [c.name for c in search_spaces.SPACES[family](v).choices] for v in ("imagenet", "cifar")}
        assert names["imagenet"] == names["cifar"], family


def test_bits_are_an_ordinary_choice_defaulting_to_32() -> None:
    for family, factory in search_spaces.SPACES.items():
        space = factory(search_spaces.SKELETONS[family][0], bits=(4, 8, 16, 32))
        bits = [c for c in space.choices if c.name.startswith("bits.") or c.name.endswith(".bits")]
        assert bits, family
        assert all(c.options == (4, 8, 16, 32) and c.default == 32 for c in bits), family
        arch = space.sample(np.random.default_rng(0))
        no_bits = {k: v for k, v in arch.items() if k not in {c.name for c in bits}}
        assert all(space.validate(no_bits)[c.name] == 32 for c in bits if c.name in arch)
        plain = factory(search_spaces.SKELETONS[family][0], bits=(32,))
        assert not any(c.name.startswith("bits.") or c.name.endswith(".bits") for c in plain.choices)
