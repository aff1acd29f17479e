"""Which variant a supernet trains on when the spec names none: the one sized for the data's px."""

from __future__ import annotations

import pytest

import search_spaces
from search_spaces import training_space


@pytest.mark.parametrize("family", ["mobilenet", "resnet"])
def test_28px_data_gets_the_28px_variant_and_others_keep_the_training_variant(family: str) -> None:
    fam = search_spaces.family(family)
    for px in (28, 32, 8, None):
        space = training_space(family, bits=(32,), num_classes=10, width_mult=None, image_size=px)
        assert space.variant == (fam.variant_for_px[28] if px == 28 else fam.training_variant)
    small = training_space(family, bits=(32,), num_classes=10, width_mult=None, image_size=28)
    assert small.resolution == 28  # the variant chosen for 28 px data is costed at 28 px


def test_a_named_variant_wins_and_families_without_a_table_keep_theirs() -> None:
    named = training_space("mobilenet:cifar", bits=(32,), num_classes=10, width_mult=None, image_size=28)
    assert named.variant == "cifar"
    for family in ("nasnet", "nb201"):
        fam = search_spaces.family(family)
        space = training_space(family, bits=None, num_classes=10, width_mult=None, image_size=28)
        assert space.variant == fam.training_variant
