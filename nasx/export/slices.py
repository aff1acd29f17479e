"""Members of a sorted family as slices of one stored set of weights.

A space's `Supernet.extract` builds a standalone network whose weights are slices of the
supernet's (channel prefixes, centred kernels, the first blocks of a stage). `slice_boxes`
finds, for every weight of the extracted network, which supernet array it comes from and which
box of it, without knowing the space: it extracts the same architecture from a copy of the
supernet whose every number holds its own position, and reads the positions back.

`member_forward` turns a member into ``f(weights, x)``: it cuts its weights out of the largest
member's with static slices, so one stored copy of the largest member serves every member.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nasx.errors import NasxError
from nasx.space import Arch
from nasx.supernet import Stats, Supernet

__all__ = ["Box", "Cut", "MemberSliceError", "slice_boxes", "cuts", "member_forward"]


class MemberSliceError(NasxError, ValueError):
    """A member's weights are not boxes of the supernet's, or not inside the largest member's."""


@dataclass(frozen=True)
class Box:
    """``supernet_arrays[leaf][start : start + size]`` on every axis."""

    leaf: int
    start: tuple[int, ...]
    size: tuple[int, ...]

    def within(self, other: Box) -> bool:
        return self.leaf == other.leaf and all(
            o <= s and s + n <= o + m
            for s, n, o, m in zip(self.start, self.size, other.start, other.size, strict=True)
        )


_BASE = 2**23
"""Integers below it are exact in float32 (a 24-bit significand)."""


def _coordinates(shape: tuple[int, ...], axis: int) -> np.ndarray:
    along = np.arange(shape[axis]).reshape([-1 if d == axis else 1 for d in range(len(shape))])
    return np.broadcast_to(along, shape)


def slice_boxes(supernet: Supernet, params: nnx.State, arch: Arch, stats: Stats) -> list[Box]:
    """The box of the supernet's `params` each weight (`nnx.Param`) of ``extract(arch)`` holds.

    Every supernet number gets a global index (array after array, flat); `extract` runs on copies
    of the weights holding those indices, in base-2^23 digits (one pass below 8M numbers).

    Raises:
      MemberSliceError: an extracted weight is not a box of one supernet array (the space's
        `extract` transforms weights, e.g. folds or quantizes them).
    """
    leaves, treedef = jax.tree.flatten(params)
    sizes = [int(np.size(x)) for x in leaves]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    index: list[np.ndarray] | None = None
    digit = 1
    try:
        while index is None or digit < offsets[-1]:
            coded = [
                jnp.asarray((offsets[k] + np.arange(n)) // digit % _BASE, jnp.result_type(x)).reshape(
                    np.shape(x)
                )
                for k, (x, n) in enumerate(zip(leaves, sizes, strict=True))
            ]
            nnx.update(supernet, jax.tree.unflatten(treedef, coded))
            model = supernet.extract(arch, stats)
            found = [
                np.asarray(x).astype(np.int64) * digit
                for x in jax.tree.leaves(nnx.split(model, nnx.Param, ...)[1])
            ]
            index = found if index is None else [a + b for a, b in zip(index, found, strict=True)]
            digit *= _BASE
    finally:  # from the arrays: `params` may share its variables with the module
        nnx.update(supernet, jax.tree.unflatten(treedef, leaves))
    boxes = []
    for p, where in enumerate(index):
        which = np.unique(np.searchsorted(offsets, where, side="right") - 1)
        k = int(which[0]) if len(which) else 0
        if len(which) > 1 or where.ndim != np.ndim(leaves[k]):
            raise MemberSliceError(
                f"weight {p} of the extracted {arch.fingerprint} mixes supernet arrays {which[:4].tolist()} "
                "or changes their rank; this space's extract does not slice, so it has no sorted families"
            )
        coords = np.unravel_index(where - offsets[k], np.shape(leaves[k]))
        start = tuple(int(c.flat[0]) if c.size else 0 for c in coords)
        for d, c in enumerate(coords):
            if not np.array_equal(c, start[d] + _coordinates(where.shape, d)):
                raise MemberSliceError(
                    f"weight {p} of the extracted {arch.fingerprint} is not a contiguous slice of supernet "
                    f"array {k} along axis {d}; this space has no sorted families"
                )
        boxes.append(Box(k, start, tuple(where.shape)))
    return boxes


Cut = tuple[int, tuple[slice, ...]]
"""One member weight: ``weights[index][slices]`` of the largest member's weights."""


def cuts(boxes: Sequence[Box], shared: Sequence[Box]) -> list[Cut]:
    """Where each member weight (at `boxes` of the supernet) lies in the largest member's (at `shared`).

    Raises:
      MemberSliceError: a member weight lies outside every shared weight (it does not nest).
    """
    out = []
    for p, box in enumerate(boxes):
        j = next((j for j, s in enumerate(shared) if box.within(s)), None)
        if j is None:
            raise MemberSliceError(
                f"weight {p} of the member (supernet array {box.leaf}, box {box.start} + {box.size}) is not "
                "inside the largest member's weights: the member does not nest in it"
            )
        offset = [s - o for s, o in zip(box.start, shared[j].start, strict=True)]
        out.append((j, tuple(slice(o, o + n) for o, n in zip(offset, box.size, strict=True))))
    return out


def member_forward(
    model: nnx.Module, boxes: Sequence[Box], shared: Sequence[Box], own_offset: int
) -> tuple[Callable[[list[jax.Array], jax.Array], jax.Array], list[np.ndarray]]:
    """``f(weights, x) -> logits`` of `model` and its own (non-`nnx.Param`) arrays.

    ``weights[:len(shared)]`` are the largest member's weights (at `shared` boxes of the
    supernet); `model`'s weights (at `boxes`) are cut out of them with static slices (`cuts`). Its
    own arrays (batch-norm statistics) are read from ``weights[own_offset:]``.

    Raises:
      MemberSliceError: a weight of `model` lies outside every shared weight (not nested).
    """
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    params_def = jax.tree.structure(params)
    own, own_def = jax.tree.flatten(rest)
    plan = cuts(boxes, shared)

    def forward(weights: list[jax.Array], x: jax.Array) -> jax.Array:
        cut = [weights[j][where] for j, where in plan]
        stats = weights[own_offset : own_offset + len(own)]
        return nnx.merge(graphdef, jax.tree.unflatten(params_def, cut), jax.tree.unflatten(own_def, stats))(x)

    return forward, [np.asarray(x) for x in own]
