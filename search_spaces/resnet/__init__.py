"""The ResNet family: DeepMAD's bottleneck space and torchvision's ResNets, supernet, stages."""

from __future__ import annotations

from nasx.space_family import SpaceFamily
from search_spaces.resnet.spec import *  # noqa: F403  (the family's public names, as before)
from search_spaces.resnet.spec import PRESETS, SKELETONS, space
from search_spaces.resnet.spec import __all__ as _spec_all


def _supernet() -> type:
    from search_spaces.resnet.supernet import ResNetSupernet

    return ResNetSupernet


def _stages() -> type:
    from search_spaces.resnet.stages import ResNetStages

    return ResNetStages


FAMILY = SpaceFamily(
    name="resnet",
    space=space,
    variants=tuple(SKELETONS),
    presets=PRESETS,
    supernet=_supernet,
    training_variant="cifar",
    supernet_variant="small",  # trains in minutes on a CPU; name "cifar" for the full-width layout
    default_evaluator="entropy",  # DeepMAD's entropy: analytic, defined on stage-structured spaces
    doc="ResNet stages (DeepMAD's space; torchvision ResNets as presets)",
    default_rho=0.3,  # DeepMAD's bound for its ResNet configs
    stages=_stages,
)

__all__ = ["FAMILY", *_spec_all]
