"""The NAS-Bench-201 family: its 15,625 cells exactly (`spec`) and their supernet (`supernet`)."""

from __future__ import annotations

from nasx.space_family import SpaceFamily
from search_spaces.nb201.spec import *  # noqa: F403  (the family's public names, as before)
from search_spaces.nb201.spec import PRESETS, SKELETONS, from_string, space
from search_spaces.nb201.spec import __all__ as _spec_all


def _supernet() -> type:
    from search_spaces.nb201.supernet import Nb201Supernet

    return Nb201Supernet


FAMILY = SpaceFamily(
    name="nb201",
    space=space,
    variants=tuple(SKELETONS),
    presets=PRESETS,
    supernet=_supernet,
    training_variant="cifar10",
    default_evaluator="synflow",  # synflow on the small NB201 supernet takes seconds
    doc="NAS-Bench-201 cells (Dong & Yang 2020)",
    from_string=from_string,
)

__all__ = ["FAMILY", *_spec_all]
