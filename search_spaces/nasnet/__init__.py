"""The NASNet family: two searched cells on a fixed skeleton (`spec`), their supernet (`supernet`)."""

from __future__ import annotations

import dataclasses

from nasx.space import SearchSpace
from nasx.space_family import SpaceFamily
from search_spaces.nasnet.spec import *  # noqa: F403  (the family's public names, as before)
from search_spaces.nasnet.spec import PRESETS, SKELETONS, space
from search_spaces.nasnet.spec import __all__ as _spec_all


def _supernet() -> type:
    from search_spaces.nasnet.supernet import NasnetSupernet

    return NasnetSupernet


def _proxy_network(space: SearchSpace) -> SearchSpace:
    """Cells are scored in a one-cell-per-stack, 16-filter network."""
    return dataclasses.replace(space, depths=(1,), filters=(16,))


FAMILY = SpaceFamily(
    name="nasnet",
    space=space,
    variants=tuple(SKELETONS),
    presets=PRESETS,
    supernet=_supernet,
    training_variant="cifar",
    supernet_variant="small",  # ENAS's 5 ops, N <= 2, F <= 32: the 13-op supernet does not compile on a CPU
    # the analytic parameter count: the supernet with all 13 candidate ops takes minutes to build
    # and compile on a CPU, and on NB201 params ranks cells as well as the best zero-cost proxies
    default_evaluator="params",
    doc="NASNet cells (Zoph et al. 2018) on the TF-Slim skeletons",
    macro_choices=("N", "F"),
    proxy_network=_proxy_network,
    proxy_note=" (cells in a N=1, F=16 network)",
)

__all__ = ["FAMILY", *_spec_all]
