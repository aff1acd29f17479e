"""The MobileNet (MBConv, Once-for-All) family: skeletons, costs, latency blocks, supernet, stages."""

from __future__ import annotations

from nasx.space_family import SpaceFamily
from search_spaces.mobilenet.spec import *  # noqa: F403  (the family's public names, as before)
from search_spaces.mobilenet.spec import PRESETS, SKELETONS, space
from search_spaces.mobilenet.spec import __all__ as _spec_all


def _supernet() -> type:
    from search_spaces.mobilenet.supernet import MobileNetSupernet

    return MobileNetSupernet


def _stages() -> type:
    from search_spaces.mobilenet.stages import MobileNetStages

    return MobileNetStages


FAMILY = SpaceFamily(
    name="mobilenet",
    space=space,
    variants=tuple(SKELETONS),
    presets=PRESETS,
    supernet=_supernet,
    training_variant="cifar",
    supernet_variant="small",  # trains in minutes on a CPU; name "cifar" for the full-width layout
    default_evaluator="entropy",  # DeepMAD's entropy: analytic, defined on stage-structured spaces
    doc="MBConv stages of Once-for-All / MobileNetV3",
    default_rho=0.5,  # DeepMAD's bound for its larger and MBConv configs
    width_mult=True,
    proxy_width_mult=0.25,
    stages=_stages,
)

__all__ = ["FAMILY", *_spec_all]
