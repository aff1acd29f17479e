"""Stitching layers between the stage boundaries of two networks (SN-Net), and their costs.

A network that can be stitched is a chain of *segments* cut at its stage boundaries (a family's
`Staged` adapter, in ``search_spaces.stages``): segment 0 maps images to boundary 0, segment k
boundary k-1 to boundary k, the last one the last boundary to logits. A configuration runs the
*front* anchor's segments up to its boundary i, a stitching layer, then the *back* anchor's
segments after its boundary j; an anchor alone is a configuration without a stitch.

A stitch point (i, j) is compatible when both boundaries have the same spatial side, both at the
side the networks run at and at the resolution the cost model prices them at. The stitching layer
is a 1x1 convolution with bias from the front's channels to the back's (any widths), initialised
by least squares so that it maps the front's activations at boundary i to the back's at boundary j
on the same images. The costs of a configuration are analytic: the front's segments, the stitch's
`nasx.costs.conv2d`, the back's segments.

References:
  Pan, Cai & Zhuang, "Stitchable Neural Networks", CVPR 2023 (stitching layers, least-squares
  initialisation, ``snnet.py`` of ziplab/SN-Net).
  Lenc & Vedaldi, "Understanding image representations by measuring their equivariance and
  equivalence", CVPR 2015 (stitching layers between networks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jax
import numpy as np
from flax import nnx

from nasx.costs import Costs, conv2d
from nasx.errors import NasxError
from nasx.nn.layers import Conv
from nasx.space import Arch

__all__ = [
    "Staged",
    "StitchPointError",
    "Boundary",
    "boundaries",
    "stitch_points",
    "Stitch",
    "stitch_costs",
    "least_squares",
    "Configuration",
    "StitchedNetworks",
    "configuration_costs",
    "run_configuration",
    "used_modules",
]


class StitchPointError(NasxError, ValueError):
    """Two anchors without a pair of stage boundaries of the same spatial side."""


class Staged(Protocol):
    """How a family's standalone model splits at its stage boundaries (``search_spaces.stages``)."""

    def resolution(self, arch: Arch) -> int:
        """Input side in px the space's cost model prices `arch` at."""
        ...

    def segments(self, model: nnx.Module, arch: Arch) -> list[nnx.Module]:
        """The model's segments, ``x -> segment(x)``, sharing its weights (stored BN statistics)."""
        ...

    def segment_costs(self, arch: Arch) -> list[Costs]:
        """Analytic costs of each segment; they sum to ``space.costs(arch)``."""
        ...


@dataclass(frozen=True)
class Boundary:
    """A stage boundary: channels, side in px where the networks run, side at the costs' resolution."""

    channels: int
    side_px: int
    cost_side_px: int


def boundaries(segments: Sequence[nnx.Module], run_side_px: int, cost_side_px: int) -> list[Boundary]:
    """The boundaries after every segment but the last, from the shapes of an abstract forward pass."""

    def shapes(side: int) -> list[tuple[int, ...]]:
        def run(x: jax.Array) -> list[jax.Array]:
            outs = []
            for segment in segments[:-1]:
                x = segment(x)
                outs.append(x)
            return outs

        return [o.shape for o in jax.eval_shape(run, jax.ShapeDtypeStruct((1, side, side, 3), np.float32))]

    return [
        Boundary(run[-1], run[1], cost[1])
        for run, cost in zip(shapes(run_side_px), shapes(cost_side_px), strict=True)
    ]


def stitch_points(front: Sequence[Boundary], back: Sequence[Boundary]) -> list[tuple[int, int]]:
    """Every (i, j): front boundary i and back boundary j of the same sides (run and costed).

    Raises:
      StitchPointError: no pair matches (e.g. anchors at different resolutions); names the sides.
    """
    points = [
        (i, j)
        for i, a in enumerate(front)
        for j, b in enumerate(back)
        if (a.side_px, a.cost_side_px) == (b.side_px, b.cost_side_px)
    ]
    if not points:
        raise StitchPointError(
            f"no compatible stitch point: the front anchor's boundaries have sides "
            f"{[a.cost_side_px for a in front]} px, the back anchor's {[b.cost_side_px for b in back]} px "
            f"(at {[a.side_px for a in front]} and {[b.side_px for b in back]} px where they run); "
            "stitch anchors of the same space at the same input resolution"
        )
    return points


class Stitch(nnx.Module):
    """A stitching layer: 1x1 convolution with bias from the front's channels to the back's."""

    def __init__(self, c_in: int, c_out: int, *, rngs: nnx.Rngs) -> None:
        self.conv = Conv(c_in, c_out, 1, use_bias=True, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.conv(x)

    def set(self, weight: np.ndarray, bias: np.ndarray) -> None:
        """Set the (c_in, c_out) weight matrix and the bias."""
        self.conv.kernel[...] = np.asarray(weight, np.float32)[None, None]
        self.conv.bias[...] = np.asarray(bias, np.float32)

    def costs(self, side_px: int) -> Costs:
        """Analytic costs on a `side_px` map: a 1x1 conv with bias, no batch norm."""
        return stitch_costs(self.conv.in_features, self.conv.out_features, side_px)


def stitch_costs(c_in: int, c_out: int, side_px: int) -> Costs:
    """Costs of a stitching layer `c_in` -> `c_out` channels on a `side_px` map."""
    return conv2d(c_in, c_out, 1, side_px, bias=True, bn=False)


def least_squares(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(weight, bias, residual) minimising ``|x @ weight + bias - y|^2`` over rows (float64).

    Args:
      x: (n, c_in) front activations, one row per pixel of each image.
      y: (n, c_out) back activations at the same pixels.

    Returns:
      weight (c_in, c_out), bias (c_out,), and the residual sum of squares.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    solution, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = float(np.sum(np.square(design @ solution - y)))
    return solution[:-1], solution[-1], residual


@dataclass(frozen=True)
class Configuration:
    """One network of a stitched family: the front anchor up to boundary `front_boundary`, stitch
    `stitch`, the back anchor after boundary `back_boundary`; an anchor alone has no stitch."""

    front: int
    back: int
    front_boundary: int | None = None
    back_boundary: int | None = None
    stitch: int | None = None

    @property
    def is_anchor(self) -> bool:
        return self.stitch is None

    @property
    def name(self) -> str:
        if self.is_anchor:
            return f"anchor{self.front}"
        return f"a{self.front}b{self.front_boundary}-a{self.back}b{self.back_boundary}"

    def to_dict(self) -> dict[str, int | str | None]:
        return {
            "name": self.name,
            "front_anchor": self.front,
            "front_boundary": self.front_boundary,
            "stitch": self.stitch,
            "back_anchor": self.back,
            "back_boundary": self.back_boundary,
        }


def configuration_costs(
    config: Configuration,
    segment_costs: Sequence[Sequence[Costs]],
    stitch_costs_: Sequence[Costs],
) -> Costs:
    """Analytic costs: front segments 0..i, the stitch, back segments j+1..; an anchor's own segments."""
    if config.is_anchor:
        parts = list(segment_costs[config.front])
    else:
        parts = [
            *segment_costs[config.front][: config.front_boundary + 1],
            stitch_costs_[config.stitch],
            *segment_costs[config.back][config.back_boundary + 1 :],
        ]
    total = Costs()
    for part in parts:
        total += part
    return total


@dataclass
class StitchedNetworks:
    """Anchors (segment lists, smallest first), stitching layers and every configuration.

    Attributes:
      archs: the anchors' architectures.
      anchors: per anchor, its segments (`nasx.export.stitch_layers.Staged.segments`).
      stitches: the stitching layers; `points` describes each.
      configurations: the anchors alone, then one per stitch.
      segment_costs: per anchor, the analytic costs of its segments.
      boundaries: per anchor, its stage boundaries.
      points: per stitch, where it joins (anchors, boundaries, channels, side, residuals).
    """

    archs: list[Arch]
    anchors: nnx.List
    stitches: nnx.List
    configurations: list[Configuration]
    segment_costs: list[list[Costs]]
    boundaries: list[list[Boundary]]
    points: list[dict[str, Any]]

    def costs(self, config: Configuration) -> Costs:
        """Analytic costs of `config`, at the resolution the space's cost model uses."""
        stitch = [s.costs(p["cost_side_px"]) for s, p in zip(self.stitches, self.points, strict=True)]
        return configuration_costs(config, self.segment_costs, stitch)


def run_configuration(
    config: Configuration, anchors: Sequence[Sequence[nnx.Module]], stitches: Sequence[Stitch], x: jax.Array
) -> jax.Array:
    """Logits of `config` on images `x`; `anchors` are segment lists, `stitches` stitching layers."""
    for module in used_modules(config, anchors, stitches):
        x = module(x)
    return x


def used_modules(
    config: Configuration, anchors: Sequence[Sequence[nnx.Module]], stitches: Sequence[Stitch]
) -> list[nnx.Module]:
    """The modules `config` runs, in order (what its parameters are counted from)."""
    if config.is_anchor:
        return list(anchors[config.front])
    return [
        *anchors[config.front][: config.front_boundary + 1],
        stitches[config.stitch],
        *anchors[config.back][config.back_boundary + 1 :],
    ]
