"""Sorted families (SortedNet): a chain of nested Pareto architectures sharing one set of weights.

`nests(a, b, space)` says whether subnet `a` runs on a part of `b`'s weights (every width, depth
and kernel choice of `a` at most `b`'s, everything else equal; the space says which choice is
which through its ``nesting`` rules). `best_chain` picks, among the chains of nested front
architectures, the one whose points dominate the largest hypervolume (ties: more members);
`choose_chain` does so for a search's front (its architectures and objective values).
`finetune_sorted` trains the chain's members together, every member's loss each step on the
shared weights, and `export_sorted` writes the family:

* ``weights.npz`` (and the same arrays as an Orbax ``checkpoint/``): the weights of the largest
  member, stored once, then each member's batch-norm statistics (the only per-member arrays);
* ``members/NN-FINGERPRINT/``: ``arch.json``, ``costs.json``, ``metrics.json`` and
  ``model.stablehlo``, the member's forward pass serialized with ``jax.export``: it takes every
  array of ``weights.npz`` and slices its own weights out of the largest member's, so plain JAX
  runs member i: ``exported.call([npz[f"w{i}"] for i in range(len(npz.files))], x)``;
* ``family.json``: the ordered member list (smallest first), the chain's hypervolume, storage.

`nasx.load_family` reads it back.

References:
  Valipour et al., "SortedNet: A Scalable and Generalized Framework for Training Modular Deep
  Neural Networks", 2023. Yu et al., "Slimmable Neural Networks", ICLR 2019 (private batch-norm
  statistics per width).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx

from nasx.data import Dataset, batch_indices
from nasx.errors import NasxError
from nasx.evaluate import calibrate, calibration_images
from nasx.export.slices import member_forward, slice_boxes
from nasx.export.standalone import PLATFORMS
from nasx.outputs import atomic, write_bytes, write_json, write_text
from nasx.pareto import hypervolume
from nasx.space import Arch, SearchSpace
from nasx.space_family import NestedSpace
from nasx.supernet import Supernet, functional
from nasx.train import make_step

__all__ = [
    "SortedFamilyError",
    "SortedChain",
    "nests",
    "nesting_matrix",
    "reference_point",
    "best_chain",
    "choose_chain",
    "finetune_sorted",
    "export_sorted",
    "MAX_CHAINS",
]

log = logging.getLogger(__name__)

MAX_CHAINS = 100_000
"""Most maximal chains `best_chain` enumerates when the dynamic program does not apply."""


class SortedFamilyError(NasxError, ValueError):
    """No sorted family can be made: an empty front, or a space whose subnets do not nest."""


# --- nesting ----------------------------------------------------------------------------------
def _rules(space: SearchSpace) -> Mapping[str, str]:
    if not isinstance(space, NestedSpace):
        raise SortedFamilyError(
            f'space "{space.name}:{space.variant}" declares no nesting of its subnets (a `nesting` '
            "property), so it has no sorted families; export --family standalone instead"
        )
    return space.nesting


def nests(a: Arch, b: Arch, space: SearchSpace) -> bool:
    """Whether subnet `a` runs on a part of `b`'s supernet weights (SortedNet's nested order).

    A choice the space's ``nesting`` marks ``"prefix"`` (widths, depths, kernels, expansions)
    must be at most `b`'s; ``"any"`` is ignored; every other choice (bits, ops) must be equal.
    Choices `a` lacks (blocks past its depth) are free. Reflexive and transitive.
    """
    rules = _rules(space)
    for name, value in a.items():
        rule = rules.get(name, "equal")
        if rule == "any":
            continue
        if name not in b:
            return False
        other = b[name]
        if rule == "prefix":
            if not value <= other:
                return False
        elif type(value) is not type(other) or value != other:
            return False
    return True


def nesting_matrix(archs: Sequence[Arch], space: SearchSpace) -> np.ndarray:
    """``m[i, j]`` = `archs[i]` nests in `archs[j]` (`nests`)."""
    return np.array([[nests(a, b, space) for b in archs] for a in archs], dtype=bool).reshape(
        len(archs), len(archs)
    )


# --- the chain of most hypervolume ------------------------------------------------------------
def reference_point(points: np.ndarray, maximize: Sequence[bool], margin: float = 0.1) -> list[float]:
    """The front's worst value of each objective, a `margin` of its range further out.

    The margin lets the worst point of each objective still count in the hypervolume.
    """
    f = np.asarray(points, dtype=float)
    reference = []
    for j, up in enumerate(maximize):
        worst, best = (f[:, j].min(), f[:, j].max()) if up else (f[:, j].max(), f[:, j].min())
        span = abs(best - worst) or max(abs(worst), 1.0)
        reference.append(float(worst - margin * span if up else worst + margin * span))
    return reference


def best_chain(
    points: np.ndarray, nested: np.ndarray, maximize: Sequence[bool], reference: Sequence[float]
) -> list[int]:
    """Indices (smallest first) of the chain of nested points whose hypervolume is largest.

    A chain is a set of points each pair of which nest (`nested[i, j]`: i nests in j; a
    transitive relation). Ties in hypervolume (relative 1e-9) go to the chain with more members,
    then to the one whose sorted indices come first. Adding a point never lowers a hypervolume,
    so only maximal chains compete.

    When along every nested pair all objectives but one get worse or stay (the costs of a subnet
    never exceed its supernet's, and accuracy is what grows), a chain's hypervolume is the sum of
    what each member adds to the one before it, and a dynamic program over the pairs finds the
    best chain exactly in O(n^2) hypervolumes. Otherwise the maximal chains are enumerated (up to
    `MAX_CHAINS`) and each chain's hypervolume computed in full.

    Raises:
      SortedFamilyError: no points, or more than `MAX_CHAINS` maximal chains to enumerate.
    """
    f = np.asarray(points, dtype=float)
    n = len(f)
    if n == 0:
        raise SortedFamilyError("the Pareto front is empty: there is no chain to choose")
    nested = np.asarray(nested, dtype=bool)
    ties = np.triu(nested & nested.T, 1)  # equal architectures: keep front order
    below = (nested & ~nested.T) | ties
    np.fill_diagonal(below, False)

    def volume(chain: Sequence[int]) -> float:
        return hypervolume(f[list(chain)], reference, maximize)

    scale = volume(range(n)) or 1.0

    def key(chain: Sequence[int], hv: float) -> tuple:
        return (round(hv / scale, 9), len(chain), tuple(-i for i in sorted(chain)))

    order = sorted(range(n), key=lambda j: (int(below[:, j].sum()), j))  # predecessors first
    if _decomposable(f, below, maximize):
        best: dict[int, tuple[list[int], float]] = {}
        for j in order:
            alone = volume([j])
            chain, hv = [j], alone
            for i in order:
                if below[i, j] and i in best:
                    prev_chain, prev_hv = best[i]
                    candidate = prev_hv + volume([i, j]) - volume([i])
                    if key([*prev_chain, j], candidate) > key(chain, hv):
                        chain, hv = [*prev_chain, j], candidate
            best[j] = (chain, hv)
        return max(best.values(), key=lambda t: key(*t))[0]
    chains = _maximal_chains(below, order)
    return max(((c, volume(c)) for c in chains), key=lambda t: key(*t))[0]


@dataclass(frozen=True)
class SortedChain:
    """The chain `choose_chain` picked from a front, and how (the ``chain`` of ``family.json``).

    Attributes:
      archs: the chain, nested, smallest first.
      distinct: how many distinct architectures the front had.
      objectives: the objectives' names, as the search named them.
      maximize: whether each objective is maximized.
      reference: the hypervolume's reference point (`reference_point` of the front).
      hypervolume: what the chain dominates.
      front_hypervolume: what the whole front dominates.
      front_indices: the chain's members among the front's distinct architectures.
    """

    archs: list[Arch]
    distinct: int
    objectives: list[str]
    maximize: list[bool]
    reference: list[float]
    hypervolume: float
    front_hypervolume: float
    front_indices: list[int]

    def to_dict(self) -> dict[str, Any]:
        """How the chain was chosen, as JSON (``family.json``'s ``chain``)."""
        return {
            "objectives": self.objectives,
            "maximize": self.maximize,
            "reference": self.reference,
            "hypervolume": self.hypervolume,
            "front_hypervolume": self.front_hypervolume,
            "front_indices": self.front_indices,
        }


def choose_chain(
    archs: Sequence[Arch],
    points: Sequence[Sequence[float]],
    objectives: Sequence[str],
    maximize: Sequence[bool],
    space: SearchSpace,
) -> SortedChain:
    """The chain of nested front architectures of most hypervolume (`best_chain`).

    Args:
      archs: the front's architectures, as architectures of `space` (the supernet's network).
      points: each architecture's objective values, in the order of `objectives`.
      objectives: the objectives' names.
      maximize: whether each objective is maximized.
      space: the space whose ``nesting`` rules say which architecture nests in which.

    Architectures that are equal in `space` (they differed only in what it lacks, e.g. bits) count
    once, with the objective values of the first.
    """
    distinct: list[Arch] = []
    values: list[list[float]] = []
    for arch, point in zip(archs, points, strict=True):
        if arch not in distinct:
            distinct.append(arch)
            values.append([float(v) for v in point])
    f = np.asarray(values)
    maximize = list(maximize)
    reference = reference_point(f, maximize)
    picked = best_chain(f, nesting_matrix(distinct, space), maximize, reference)
    return SortedChain(
        archs=[distinct[i] for i in picked],
        distinct=len(distinct),
        objectives=list(objectives),
        maximize=maximize,
        reference=reference,
        hypervolume=hypervolume(f[picked], reference, maximize),
        front_hypervolume=hypervolume(f, reference, maximize),
        front_indices=picked,
    )


def _decomposable(f: np.ndarray, below: np.ndarray, maximize: Sequence[bool]) -> bool:
    """Whether one objective improves and all others worsen (or stay) along every nested pair."""
    g = np.where(np.broadcast_to(np.asarray(maximize, dtype=bool), (f.shape[1],)), -f, f)  # to minimize
    pairs = np.argwhere(below)
    if not len(pairs):
        return True
    worse = g[pairs[:, 1]] >= g[pairs[:, 0]]  # (pairs, objectives): the larger member is worse
    better = g[pairs[:, 1]] <= g[pairs[:, 0]]
    return any(np.all(better[:, k]) and np.all(np.delete(worse, k, axis=1)) for k in range(f.shape[1]))


def _maximal_chains(below: np.ndarray, order: Sequence[int]) -> list[list[int]]:
    """Every maximal chain: a path of covering pairs from a minimal to a maximal point."""
    cover = below & ~((below.astype(int) @ below.astype(int)) > 0)
    count = {}
    for j in reversed(order):  # chains starting at j
        nxt = np.flatnonzero(cover[j])
        count[j] = sum(count[k] for k in nxt) if len(nxt) else 1
    total = sum(count[j] for j in order if not below[:, j].any())
    if total > MAX_CHAINS:
        raise SortedFamilyError(
            f"the front's {len(order)} architectures form {total:,} maximal nested chains (limit "
            f"{MAX_CHAINS:,}) and their objectives do not decompose; export fewer front members"
        )
    chains: list[list[int]] = []

    def walk(path: list[int]) -> None:
        nxt = np.flatnonzero(cover[path[-1]])
        if not len(nxt):
            chains.append(path)
        for k in nxt:
            walk([*path, int(k)])

    for j in order:
        if not below[:, j].any():
            walk([j])
    return chains


# --- sorted fine-tuning -----------------------------------------------------------------------
def finetune_sorted(
    supernet: Supernet,
    params: nnx.State,
    space: SearchSpace,
    chain: Sequence[Arch],
    data: Dataset,
    steps: int,
    *,
    batch_size: int = 64,
    learning_rate: float = 0.01,
    seed: int = 0,
) -> tuple[nnx.State, list[dict[str, float]]]:
    """`steps` of SortedNet training of `chain` on `data`; returns the new params and per-step metrics.

    Every step runs all members on one augmented batch and sums their cross-entropies, so the
    shared weights take every member's gradient (no distillation: each member learns from the
    labels). SGD with Nesterov momentum at a constant `learning_rate` (a fine-tuning rate, a tenth
    of the supernet's default peak) and the supernet's weight decay.
    """
    if steps <= 0:
        return params, []
    _, _, apply = functional(supernet)
    tx = optax.chain(optax.add_decayed_weights(4e-5), optax.sgd(learning_rate, momentum=0.9, nesterov=True))
    step = make_step(apply, tx, flip=data.flip, distill=False)
    archs = jnp.asarray(np.stack([space.encode(a) for a in reversed(chain)]))  # largest first
    opt_state, key, history = tx.init(params), jax.random.key(seed), []
    for i in range(steps):
        index = batch_indices(len(data.x_train), batch_size, seed, i)
        x, y = jnp.asarray(data.x_train[index]), jnp.asarray(data.y_train[index])
        params, opt_state, metrics = step(params, opt_state, archs, x, y, jax.random.fold_in(key, i))
        history.append({"step": i + 1, **{k: float(v) for k, v in metrics.items()}})
        log.info("sorted fine-tuning step %d/%d: loss %.4f", i + 1, steps, history[-1]["loss"])
    return params, history


# --- writing the family -----------------------------------------------------------------------
def export_sorted(
    supernet: Supernet,
    params: nnx.State,
    space: SearchSpace,
    chain: Sequence[Arch],
    data: Dataset,
    out: str | Path,
    *,
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the sorted family of `chain` (nested, smallest first) of `supernet` (weights `params`).

    Each member is re-calibrated (batch norm) on training images and extracted; its held-out
    accuracy on `data` is measured with the very function that is serialized. `meta` is added to
    ``family.json`` (e.g. how the chain was chosen) and, its plain values, to each ``metrics.json``.

    Returns:
      The manifest written to ``family.json``.

    Raises:
      SortedFamilyError: `chain` is empty or a member does not nest in the next.
    """
    chain = [space.validate(a) for a in chain]
    if not chain:
        raise SortedFamilyError("a sorted family needs at least one architecture; the chain is empty")
    for i, (a, b) in enumerate(itertools.pairwise(chain)):
        if not nests(a, b, space):
            raise SortedFamilyError(
                f"member {i} ({a.fingerprint}) does not nest in member {i + 1} ({b.fingerprint}); "
                "order the chain smallest first, each a prefix of the next (see nests)"
            )
    out = Path(out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    _, _, apply = functional(supernet)
    calib, x_calib = jax.jit(calibrate, static_argnums=0), jnp.asarray(calibration_images(data))
    stats = [calib(apply, params, jnp.asarray(space.encode(a)), x_calib) for a in chain]
    boxes = [slice_boxes(supernet, params, a, s) for a, s in zip(chain, stats, strict=True)]
    nnx.update(supernet, params)  # extract slices the module's own weights
    models = [supernet.extract(a, s) for a, s in zip(chain, stats, strict=True)]
    weights = [np.asarray(x) for x in jax.tree.leaves(nnx.split(models[-1], nnx.Param, ...)[1])]
    shared, forwards, own = len(weights), [], []
    for model, member_boxes in zip(models, boxes, strict=True):
        forward, arrays = member_forward(model, member_boxes, boxes[-1], len(weights))
        own.append([len(weights), len(weights) + len(arrays)])
        weights += arrays
        forwards.append(forward)
    on_device = [jnp.asarray(w) for w in weights]
    shape = jax.export.symbolic_shape(f"b, {', '.join(map(str, data.x_test.shape[1:]))}")
    specs = (
        [jax.ShapeDtypeStruct(w.shape, w.dtype) for w in weights],
        jax.ShapeDtypeStruct(shape, jnp.float32),
    )
    plain = {k: v for k, v in (meta or {}).items() if isinstance(v, (str, int, float, bool))}
    (out / "family.json").unlink(missing_ok=True)  # written last: a family a kill interrupted has none
    members = []
    for i, (arch, forward) in enumerate(zip(chain, forwards, strict=True)):
        exported = jax.export.export(jax.jit(forward), platforms=PLATFORMS)(*specs)
        logits = np.concatenate(
            [
                np.asarray(exported.call(on_device, jnp.asarray(data.x_test[s : s + 512])))
                for s in range(0, len(data.x_test), 512)
            ]
        )
        metrics = {"test_accuracy": float(np.mean(logits.argmax(-1) == data.y_test)), "data": data.name}
        folder = out / "members" / f"{i + 1:02d}-{arch.fingerprint}"
        folder.mkdir(parents=True, exist_ok=True)
        costs = dataclasses.asdict(space.costs(arch))
        write_text(folder / "arch.json", arch.to_json(indent=2) + "\n")
        write_json(folder / "costs.json", costs)
        write_json(folder / "metrics.json", {**metrics, "member": i, **plain})
        write_bytes(folder / "model.stablehlo", exported.serialize())
        members.append(
            {
                "folder": str(folder.relative_to(out)),
                "fingerprint": arch.fingerprint,
                "arch": arch.to_dict(),
                "costs": costs,
                **metrics,
                "own_arrays": own[i],
            }
        )
    arrays = {f"w{i}": w for i, w in enumerate(weights)}
    with atomic(out / "weights.npz") as f:
        np.savez(f, **arrays)
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(out / "checkpoint", arrays, force=True)
        ckpt.wait_until_finished()
    family_bytes = sum(w.nbytes for w in weights)
    largest_bytes = sum(w.nbytes for w in weights[:shared]) + sum(w.nbytes for w in weights[slice(*own[-1])])
    manifest = {
        "family": "sorted",
        "space": space.name,
        "variant": space.variant,
        "weights": "weights.npz",
        "checkpoint": "checkpoint",
        "shared_arrays": shared,
        "members": members,
        "storage": {
            "family_weight_bytes": family_bytes,
            "largest_member_weight_bytes": largest_bytes,
            "ratio": family_bytes / largest_bytes,
        },
        **(meta or {}),
    }
    write_json(out / "family.json", manifest)
    return manifest
