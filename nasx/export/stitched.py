"""Stitched families (SN-Net): anchors from a search's front joined by stitching layers.

`select_anchors` picks 2-4 front architectures of different sizes. `build_stitched` extracts
them from the trained supernet (batch norm re-calibrated), finds the compatible stitch points
between consecutive anchors (the smaller one's front into the larger one's back; `reverse` adds the
other way) and initialises each stitching layer by least squares on training activations
(`nasx.export.stitch_layers`). `train_stitches` trains the stitching layers briefly, with the anchors
frozen so that they stay exactly the searched models (`nasx.export.stitch_training`). `export_stitched` evaluates every configuration (analytic costs, held-out accuracy), keeps
the anchors and the Pareto-optimal stitches (accuracy vs MACs) and writes:

* ``weights.npz`` (and the same arrays as an Orbax ``checkpoint/``): the anchors and the kept
  stitching layers, stored once;
* ``members/NN-NAME/``: ``configuration.json``, ``costs.json``, ``metrics.json`` (``arch.json`` for
  an anchor) and ``model.stablehlo``, the configuration's forward pass serialized with
  ``jax.export``; it takes every array of ``weights.npz``, so plain JAX runs configuration i:
  ``exported.call([npz[f"w{k}"] for k in range(len(npz.files))], x)``;
* ``family.json``: ``"family": "stitched"``, the anchors, the configuration table (members,
  smallest first, with costs and accuracy) and every evaluated configuration.

`nasx.load_family` reads it back.

References:
  Pan, Cai & Zhuang, "Stitchable Neural Networks", CVPR 2023.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from nasx.data import Dataset
from nasx.errors import NasxError
from nasx.evaluate import calibrate, calibration_images
from nasx.export.standalone import PLATFORMS
from nasx.export.stitch_layers import (
    Configuration,
    Staged,
    Stitch,
    StitchedNetworks,
    StitchPointError,
    boundaries,
    least_squares,
    run_configuration,
    stitch_points,
)
from nasx.export.stitch_training import SegmentRunner, evaluate_configurations, padded, train_stitches
from nasx.outputs import atomic, write_bytes, write_json, write_text
from nasx.pareto import pareto_front
from nasx.space import Arch, SearchSpace
from nasx.supernet import Supernet, functional

__all__ = [
    "StitchAnchorsError",
    "StitchedNetworks",
    "select_anchors",
    "build_stitched",
    "train_stitches",
    "evaluate_configurations",
    "export_stitched",
]

log = logging.getLogger(__name__)
MAX_ANCHORS = 4


class StitchAnchorsError(NasxError, ValueError):
    """Too few (or too many) distinct anchors for a stitched family."""


def select_anchors(archs: Sequence[Arch], space: SearchSpace, count: int = 2) -> list[Arch]:
    """`count` (2-4) distinct architectures of `archs` spread over their MACs, smallest first.

    Raises:
      StitchAnchorsError: `count` is outside 2-4, or `archs` holds fewer than 2 distinct ones.
    """
    if not 2 <= count <= MAX_ANCHORS:
        raise StitchAnchorsError(f"{count} anchors: a stitched family takes 2 to {MAX_ANCHORS}")
    distinct = {a.fingerprint: a for a in (space.validate(a) for a in archs)}
    ranked = sorted(distinct.values(), key=lambda a: (space.costs(a).macs, space.costs(a).params))
    if len(ranked) < 2:
        raise StitchAnchorsError(
            f"the front holds {len(ranked)} distinct architecture(s); a stitched family needs at least 2 "
            "anchors of different sizes: search longer (more --evaluations), or export --family standalone"
        )
    picks = sorted({round(float(i)) for i in np.linspace(0, len(ranked) - 1, min(count, len(ranked)))})
    return [ranked[i] for i in picks]


def build_stitched(
    supernet: Supernet,
    params: nnx.State,
    space: SearchSpace,
    staged: Staged,
    archs: Sequence[Arch],
    data: Dataset,
    *,
    reverse: bool = False,
    lsq_images: int = 128,
    max_rows: int = 50_000,
    batch_size: int = 64,
    seed: int = 0,
) -> StitchedNetworks:
    """Anchors `archs` of `supernet` (weights `params`) and least-squares stitches between them.

    Anchors are ordered by MACs; anchor k's front stitches into anchor k+1's back at every
    compatible stitch point (and, with `reverse`, k+1's front into k's back). Each stitching layer
    is the least-squares map from the front's activations to the back's on `lsq_images` training
    images (at most `max_rows` pixels, drawn with `seed`).

    Raises:
      StitchAnchorsError: fewer than 2 distinct anchors.
      StitchPointError: two consecutive anchors without a compatible stitch point.
    """
    archs = list({a.fingerprint: a for a in (space.validate(a) for a in archs)}.values())
    if len(archs) < 2:
        raise StitchAnchorsError(
            f"{len(archs)} distinct anchor(s): a stitched family joins at least 2 architectures of one space"
        )
    archs.sort(key=lambda a: (space.costs(a).macs, space.costs(a).params))
    _, _, apply = functional(supernet)
    x_calib = jnp.asarray(calibration_images(data))
    calib = jax.jit(calibrate, static_argnums=0)
    stats = [calib(apply, params, jnp.asarray(space.encode(a)), x_calib) for a in archs]
    nnx.update(supernet, params)  # extract slices the module's own weights
    anchors = [staged.segments(supernet.extract(a, s), a) for a, s in zip(archs, stats, strict=True)]
    bounds = [
        boundaries(segs, data.image_size, staged.resolution(a))
        for segs, a in zip(anchors, archs, strict=True)
    ]
    pairs = [(k, k + 1) for k in range(len(archs) - 1)]
    pairs += [(k + 1, k) for k in range(len(archs) - 1)] if reverse else []
    joins = {}
    for front, back in pairs:
        try:
            joins[front, back] = stitch_points(bounds[front], bounds[back])
        except StitchPointError as e:
            raise StitchPointError(f"anchors {front} and {back}: {e}") from None
    runner = SegmentRunner(anchors, [])
    x_lsq = calibration_images(data, lsq_images, seed=seed + 1)
    acts = []  # per anchor, per boundary: (images, h, w, c)
    for k in range(len(archs)):
        chunks = [
            runner.boundary_outputs(k, jnp.asarray(padded(x_lsq[i : i + batch_size], batch_size)))[:-1]
            for i in range(0, len(x_lsq), batch_size)
        ]
        acts.append(
            [np.concatenate([np.asarray(c[b]) for c in chunks])[: len(x_lsq)] for b in range(len(bounds[k]))]
        )
    rng = np.random.default_rng([seed, 11])
    stitches, points = [], []
    for (front, back), pairs_ij in joins.items():
        for i, j in pairs_ij:
            a, b = bounds[front][i], bounds[back][j]
            x, y = acts[front][i].reshape(-1, a.channels), acts[back][j].reshape(-1, b.channels)
            rows = rng.permutation(len(x))[:max_rows]
            weight, bias, residual = least_squares(x[rows], y[rows])
            stitch = Stitch(a.channels, b.channels, rngs=nnx.Rngs(seed))
            stitch.set(weight, bias)
            stitches.append(stitch)
            points.append(
                {
                    "front_anchor": front,
                    "front_boundary": i,
                    "back_anchor": back,
                    "back_boundary": j,
                    "c_in": a.channels,
                    "c_out": b.channels,
                    "side_px": a.side_px,
                    "cost_side_px": a.cost_side_px,
                    "lsq_rows": len(rows),
                    "lsq_residual": residual,
                }
            )
    log.info("stitched family: %d anchors, %d least-squares stitches", len(archs), len(stitches))
    configs = [Configuration(k, k) for k in range(len(archs))]
    configs += [
        Configuration(p["front_anchor"], p["back_anchor"], p["front_boundary"], p["back_boundary"], s)
        for s, p in enumerate(points)
    ]
    return StitchedNetworks(
        archs,
        nnx.List([nnx.List(segments) for segments in anchors]),
        nnx.List(stitches),
        configs,
        [list(staged.segment_costs(a)) for a in archs],
        bounds,
        points,
    )


def _kept(net: StitchedNetworks, accuracy: np.ndarray) -> list[int]:
    """The anchors and the stitched configurations on the accuracy-vs-MACs front, by MACs."""
    macs = [net.costs(c).macs for c in net.configurations]
    front = set(pareto_front([[a, m] for a, m in zip(accuracy, macs, strict=True)], (True, False)).tolist())
    kept = [k for k, c in enumerate(net.configurations) if c.is_anchor or k in front]
    return sorted(kept, key=lambda k: (macs[k], -accuracy[k], k))


def export_stitched(
    net: StitchedNetworks,
    space: SearchSpace,
    data: Dataset,
    out: str | Path,
    *,
    batch_size: int = 64,
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate every configuration of `net`, keep the anchors and the Pareto-optimal stitches, write `out`.

    Configurations are kept by their accuracy on `data`'s validation split; each kept one's test
    accuracy is then measured with the very function that is serialized, so a fresh process
    reproduces it. `meta` is added to ``family.json``.

    Returns:
      The manifest written to ``family.json``.
    """
    out = Path(out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    accuracy = evaluate_configurations(net, data, batch_size=batch_size, split="val")  # chooses
    kept = _kept(net, accuracy)
    log.info(
        "keeping %d of %d configurations (anchors and the accuracy-vs-MACs front)", len(kept), len(accuracy)
    )
    kept_stitches = [net.configurations[k].stitch for k in kept if not net.configurations[k].is_anchor]
    renumber = {s: n for n, s in enumerate(kept_stitches)}
    bundle = nnx.List([net.anchors, nnx.List([net.stitches[s] for s in kept_stitches])])
    graphdef, state = nnx.split(bundle)
    leaves, treedef = jax.tree.flatten(state)
    weights = [np.asarray(w) for w in leaves]
    on_device = [jnp.asarray(w) for w in weights]
    shape = jax.export.symbolic_shape(f"b, {', '.join(map(str, data.x_test.shape[1:]))}")
    specs = (
        [jax.ShapeDtypeStruct(w.shape, w.dtype) for w in weights],
        jax.ShapeDtypeStruct(shape, jnp.float32),
    )
    members, evaluated = [], []
    (out / "family.json").unlink(missing_ok=True)  # written last: a family a kill interrupted has none
    for n, k in enumerate(kept):
        config = net.configurations[k]
        local = config if config.is_anchor else dataclasses.replace(config, stitch=renumber[config.stitch])

        def forward(weights: list[jax.Array], x: jax.Array, local: Configuration = local) -> jax.Array:
            anchors, stitches = nnx.merge(graphdef, jax.tree.unflatten(treedef, weights))
            return run_configuration(local, anchors, stitches, x)

        exported = jax.export.export(jax.jit(forward), platforms=PLATFORMS)(*specs)
        logits = np.concatenate(
            [
                np.asarray(exported.call(on_device, jnp.asarray(data.x_test[s : s + 512])))
                for s in range(0, len(data.x_test), 512)
            ]
        )
        metrics = {"test_accuracy": float(np.mean(logits.argmax(-1) == data.y_test)), "data": data.name}
        folder = out / "members" / f"{n + 1:02d}-{config.name}"
        folder.mkdir(parents=True, exist_ok=True)
        costs = net.costs(config).to_dict()
        described = {
            **local.to_dict(),
            "anchors": [net.archs[config.front].fingerprint, net.archs[config.back].fingerprint],
        }
        if config.is_anchor:
            write_text(folder / "arch.json", net.archs[config.front].to_json(indent=2) + "\n")
        write_json(folder / "configuration.json", described)
        write_json(folder / "costs.json", costs)
        write_json(folder / "metrics.json", {**metrics, "member": n, "configuration": config.name})
        write_bytes(folder / "model.stablehlo", exported.serialize())
        members.append({"folder": str(folder.relative_to(out)), **described, "costs": costs, **metrics})
    for k, config in enumerate(net.configurations):
        evaluated.append(
            {
                **config.to_dict(),
                "costs": net.costs(config).to_dict(),
                "val_accuracy": float(accuracy[k]),
                "member": kept.index(k) if k in kept else None,
            }
        )
    arrays = {f"w{i}": w for i, w in enumerate(weights)}
    with atomic(out / "weights.npz") as f:
        np.savez(f, **arrays)
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(out / "checkpoint", arrays, force=True)
        ckpt.wait_until_finished()
    manifest = {
        "family": "stitched",
        "space": space.name,
        "variant": space.variant,
        "weights": "weights.npz",
        "checkpoint": "checkpoint",
        "objectives": ["val_accuracy", "macs"],
        "chosen_on": "the validation split; members' test_accuracy is measured after the choice",
        "anchors": [
            {
                "fingerprint": a.fingerprint,
                "arch": a.to_dict(),
                "costs": space.costs(a).to_dict(),
                "boundaries": [dataclasses.asdict(b) for b in bounds],
            }
            for a, bounds in zip(net.archs, net.boundaries, strict=True)
        ],
        "stitches": [{**net.points[s], "member_stitch": renumber[s]} for s in kept_stitches],
        "members": members,
        "evaluated": evaluated,
        "weight_bytes": sum(w.nbytes for w in weights),
        **(meta or {}),
    }
    write_json(out / "family.json", manifest)
    return manifest
