"""A search-space family as one plug-in value: everything the engine needs to know about it.

Each family's package (``search_spaces/<name>/``) exports ``FAMILY``, a frozen `SpaceFamily`; the
registry ``search_spaces.FAMILIES`` maps names to them. Nothing else in nasx is keyed by a family
name: adding a family is one new package and one registry line (see the README, "Adding a search
space"). Optional abilities are fields that may be ``None`` (stitching, arch strings), and what a
space can do beyond `nasx.space.SearchSpace` is told by the protocols below, never by ``hasattr``.

This module imports no JAX: the supernet and the stage adapter are reached through zero-argument
loaders, so that listing, costing and solving never import a deep-learning framework.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from nasx.costs import Block, Costs
from nasx.errors import DatasetError
from nasx.space import Arch, Preset, SearchSpace, Value

__all__ = [
    "SpaceFamily",
    "SkeletonSpace",
    "BlockLatencySpace",
    "StagePricedSpace",
    "BlockPricedSpace",
    "NestedSpace",
    "QuantizedSpace",
    "with_classes",
]


@runtime_checkable
class SkeletonSpace(Protocol):
    """A space on a frozen ``skeleton`` dataclass that has a ``num_classes`` field."""

    skeleton: Any


@runtime_checkable
class BlockLatencySpace(Protocol):
    """A space whose networks are sequences of `Block`s, so a measured latency table can price it."""

    latency: Any

    def distinct_blocks(self, resolution: int | None = None) -> tuple[Block, ...]: ...


@runtime_checkable
class StagePricedSpace(Protocol):
    """A residual network priced stage by stage: stem, (first, inner) block terms, head.

    What DeepMAD's ResNet program and formulas read (`solvers.mp`); the ``skeleton`` gives the
    stem, strides and block type. Costs are additive: a stage costs ``first + (depth - 1) * inner``.
    """

    skeleton: Any

    def stem_costs(self, width: int, *, resolution: int | None = None, bits: int = 32) -> Costs: ...

    def stage_terms(
        self,
        stage: int,
        c_in: int,
        c_out: int,
        btn: int,
        kernel: int,
        *,
        resolution: int | None = None,
        bits: int = 32,
    ) -> tuple[Costs, Costs]: ...

    def head_costs(self, width: int, *, resolution: int | None = None, bits: int = 32) -> Costs: ...


@runtime_checkable
class BlockPricedSpace(Protocol):
    """A network of fixed widths priced block by block: fixed parts plus one term per block option.

    What DeepMAD's MBConv program and formulas read (`solvers.mp`); ``scaled`` is the skeleton at
    the space's width multiplier.
    """

    scaled: Any

    def input_side(self, arch: Mapping[str, Value] | None = None, resolution: int | None = None) -> int: ...

    def placed_blocks(self, arch: Mapping[str, Value], resolution: int | None = None) -> tuple[Any, ...]: ...

    def fixed_costs(self, *, resolution: int | None = None, bits: int = 32) -> Costs: ...

    def block_costs(
        self,
        stage: int,
        block: int,
        kernel: int,
        expand: int,
        se: bool,
        *,
        resolution: int | None = None,
        bits: int = 32,
    ) -> Costs: ...


@runtime_checkable
class NestedSpace(Protocol):
    """A space whose subnets nest (SortedNet): ``nesting`` maps choices to ``"prefix"`` (a smaller
    value runs on a part of a larger one's weights) or ``"any"`` (the weights do not depend on it);
    choices it does not list (bits, ops) must be equal (`nasx.export.sorted.nests`)."""

    @property
    def nesting(self) -> Mapping[str, str]: ...


@runtime_checkable
class QuantizedSpace(Protocol):
    """A space whose weight bit-widths are a choice (``bits``; ``(32,)`` for float only)."""

    bits: tuple[int, ...]


def with_classes(space: SearchSpace, num_classes: int) -> SearchSpace:
    """`space` with a classifier of `num_classes` outputs (its skeleton's ``num_classes`` replaced)."""
    if space.num_classes == num_classes:  # type: ignore[attr-defined]
        return space
    if not isinstance(space, SkeletonSpace):
        raise DatasetError(
            f"the dataset has {num_classes} classes but space {space.name}:{space.variant} has "
            f"{space.num_classes}; choose the variant that matches (e.g. nb201:cifar100)"  # type: ignore[attr-defined]
        )
    skeleton = dataclasses.replace(space.skeleton, num_classes=num_classes)
    return dataclasses.replace(space, skeleton=skeleton)  # type: ignore[type-var]


@dataclass(frozen=True)
class SpaceFamily:
    """One family of search spaces, as the engine sees it.

    Attributes:
      name: the family's name (``--space NAME``, the ``space`` key of run logs).
      space: ``space(variant, *, bits=..., [width_mult=...])`` -> the space value.
      variants: the family's variants (skeletons); the first is the default.
      presets: preset name -> `Preset` (each knows its space and variant).
      supernet: loader of the supernet class (imports JAX only when called).
      training_variant: the small-image variant proxies run on (its choices are the family's).
      supernet_variant: the variant ``nasx train-supernet`` trains when the spec names none,
        sized so that its supernet trains in minutes on a CPU (``None``: `training_variant`).
      default_evaluator: what the bare ``nasx search`` scores with (see the README for why).
      doc: one line for ``nasx spaces``.
      default_rho: DeepMAD's effectiveness bound rho0, for families the MP solver formulates.
      macro_choices: choices scaled to fill the budget after the rest is chosen (NASNet's N, F).
      width_mult: whether ``space`` takes a ``width_mult`` (scaling the skeleton's fixed widths).
      proxy_width_mult: the width of the proxy network proxies run on (families with width_mult).
      proxy_network: shrinks the training-variant space to the network proxies score on.
      proxy_note: how the proxy network differs from the space, for the evaluator's description.
      from_string: parser of the family's own architecture strings (NB201's ``|op~0|+...``).
      stages: loader of the stage adapter (SN-Net stitching); ``None`` if the family has none.
    """

    name: str
    space: Callable[..., SearchSpace]
    variants: tuple[str, ...]
    presets: Mapping[str, Preset]
    supernet: Callable[[], type]
    training_variant: str
    default_evaluator: str
    supernet_variant: str | None = None
    doc: str = ""
    default_rho: float | None = None
    macro_choices: tuple[str, ...] = ()
    width_mult: bool = False
    proxy_width_mult: float | None = None
    proxy_network: Callable[[SearchSpace], SearchSpace] | None = None
    proxy_note: str = ""
    from_string: Callable[[str, SearchSpace], Arch] | None = None
    stages: Callable[[], type] | None = None

    def make(
        self, variant: str | None = None, *, bits: tuple[int, ...] | None = None, **kwargs
    ) -> SearchSpace:
        """The space of `variant` (default: the first), with the family's default bits unless given."""
        if bits is not None:
            kwargs["bits"] = bits
        return self.space(variant or self.variants[0], **kwargs)
