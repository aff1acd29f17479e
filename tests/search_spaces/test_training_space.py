"""Which variant a supernet trains on when the spec names none: the family's CPU-sized one."""

from __future__ import annotations

import pytest

import search_spaces
from search_spaces import training_space


@pytest.mark.parametrize("family", ["mobilenet", "resnet"])
def test_mobilenet_and_resnet_supernets_default_to_their_small_variant(family: str) -> None:
    space = training_space(family, bits=(32,), num_classes=10, width_mult=None)
    assert space.variant == search_spaces.family(family).supernet_variant == "small"
    assert space.variant != search_spaces.family(family).training_variant  # proxies keep theirs
    assert space.resolution == 28  # costed at 28 px, as the variant is defined


def test_a_named_variant_wins_and_families_without_one_keep_their_training_variant() -> None:
    named = training_space("mobilenet:cifar", bits=(32,), num_classes=10, width_mult=None)
    assert named.variant == "cifar"
    for family in ("nasnet", "nb201"):
        fam = search_spaces.family(family)
        if fam.supernet_variant is None:
            space = training_space(family, bits=None, num_classes=10, width_mult=None)
            assert space.variant == fam.training_variant
