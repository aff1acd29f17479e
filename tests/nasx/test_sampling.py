"""Sandwich, sorted and uniform rules draw valid subnets; extremes are the largest/smallest."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nasx.sampling import draw, extreme, nested_chain
from search_spaces import mobilenet, nb201, resnet


def test_extremes_of_nb201() -> None:
    space = nb201.space()
    largest, smallest = extreme(space, "largest"), extreme(space, "smallest")
    assert set(largest.values()) == {"nor_conv_3x3"}
    assert space.costs(smallest).macs == min(
        space.costs(space.sample(np.random.default_rng(i))).macs for i in range(200)
    )


@pytest.mark.parametrize(
    "space", [mobilenet.space("cifar"), resnet.space("cifar")], ids=["mobilenet", "resnet"]
)
def test_extremes_bound_random_samples(space) -> None:
    big, small = (space.costs(extreme(space, w)) for w in ("largest", "smallest"))
    rng = np.random.default_rng(0)
    for _ in range(50):
        c = space.costs(space.sample(rng))
        assert small.macs <= c.macs <= big.macs and small.params <= c.params <= big.params


@pytest.mark.parametrize("rule", ["sandwich", "sorted", "uniform"])
def test_rules_draw_valid_archs(rule: str) -> None:
    space = mobilenet.space("cifar")
    archs = draw(space, rule, 4, np.random.default_rng(0))
    assert len(archs) == 4 and all(space.validate(a) == a for a in archs)
    if rule == "sandwich":
        assert archs[0] == extreme(space, "largest") and archs[1] == extreme(space, "smallest")


def test_sorted_chain_is_nested() -> None:
    space = mobilenet.space("cifar")
    chain = nested_chain(space, [0.0, 0.3, 0.7, 1.0], np.random.default_rng(0))
    for small, big in itertools.pairwise(chain):
        for key, value in small.items():
            if isinstance(value, int) and not isinstance(value, bool) and key in big:
                assert value <= big[key], key
        assert set(small) <= set(big)  # deeper stages only add blocks
    assert space.costs(chain[0]).macs < space.costs(chain[-1]).macs
