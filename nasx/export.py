"""Export: architectures of a search as standalone models a user can load and run anywhere.

`export_standalone` slices one architecture out of a trained supernet (batch norm re-calibrated
on training images, `Supernet.extract`), measures its held-out accuracy, and writes a folder:

* ``arch.json``, ``costs.json``, ``metrics.json`` (accuracy at export, the data it was measured on);
* ``checkpoint/``: the model's weights and batch-norm statistics, an Orbax checkpoint;
* ``model.stablehlo`` + ``weights.npz``: the forward pass serialized with ``jax.export`` (StableHLO,
  any batch size, for CPU and CUDA) and its weights as plain arrays, so plain JAX runs it without
  nasx: ``jax.export.deserialize(open("model.stablehlo", "rb").read()).call(weights, x)`` with
  ``weights = [npz[f"w{i}"] for i in range(len(npz.files))]``.

`load_model(folder)` returns the exported forward pass as a function of images (NHWC float32).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from nasx.data import Dataset
from nasx.errors import NasxError
from nasx.evaluate import calibrate, calibration_images
from nasx.space import Arch, SearchSpace
from nasx.supernet import Supernet, functional

__all__ = ["ModelFolderError", "export_standalone", "load_model", "PLATFORMS"]

PLATFORMS = ("cpu", "cuda")
"""Backends the serialized forward pass is lowered for."""


class ModelFolderError(NasxError, FileNotFoundError):
    """A folder that holds no exported model."""


def _forward(model: nnx.Module) -> tuple[Callable, list[np.ndarray]]:
    """``f(weights, x) -> logits`` of `model` (stored batch-norm statistics) and its weights, flat."""
    graphdef, state = nnx.split(model)
    leaves, treedef = jax.tree.flatten(state)

    def forward(weights: list[jax.Array], x: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, jax.tree.unflatten(treedef, weights))(x)

    return forward, [np.asarray(a) for a in leaves]


def export_standalone(
    supernet: Supernet,
    params: nnx.State,
    space: SearchSpace,
    arch: Arch,
    data: Dataset,
    out: str | Path,
    *,
    meta: dict | None = None,
) -> dict:
    """Write `arch` of `supernet` (weights `params`) as a standalone model folder `out`.

    Returns the metrics written (held-out accuracy of the standalone model on `data`).
    """
    out = Path(out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    _, _, apply = functional(supernet)
    arch = space.validate(arch)
    x_calib = jnp.asarray(calibration_images(data))
    stats = jax.jit(calibrate, static_argnums=0)(apply, params, jnp.asarray(space.encode(arch)), x_calib)
    nnx.update(supernet, params)  # extract slices the module's own weights
    model = supernet.extract(arch, stats)
    forward, weights = _forward(model)
    run = jax.jit(forward)
    logits = np.concatenate(
        [
            np.asarray(run(weights, jnp.asarray(data.x_test[i : i + 512])))
            for i in range(0, len(data.x_test), 512)
        ]
    )
    metrics = {"test_accuracy": float(np.mean(logits.argmax(-1) == data.y_test)), "data": data.name}
    (out / "arch.json").write_text(arch.to_json(indent=2) + "\n")
    (out / "costs.json").write_text(json.dumps(dataclasses.asdict(space.costs(arch)), indent=2) + "\n")
    (out / "metrics.json").write_text(json.dumps({**metrics, **(meta or {})}, indent=2) + "\n")
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(out / "checkpoint", nnx.to_pure_dict(nnx.state(model)), force=True)
        ckpt.wait_until_finished()
    shape = jax.export.symbolic_shape(f"b, {', '.join(map(str, data.x_test.shape[1:]))}")
    specs = (
        [jax.ShapeDtypeStruct(w.shape, w.dtype) for w in weights],
        jax.ShapeDtypeStruct(shape, jnp.float32),
    )
    exported = jax.export.export(run, platforms=PLATFORMS)(*specs)
    (out / "model.stablehlo").write_bytes(exported.serialize())
    np.savez(out / "weights.npz", **{f"w{i}": w for i, w in enumerate(weights)})
    return metrics


def load_model(folder: str | Path) -> Callable[[np.ndarray], np.ndarray]:
    """The exported model in `folder` as ``logits = model(images)`` (NHWC float32, any batch)."""
    folder = Path(folder).expanduser()
    if not (folder / "model.stablehlo").exists():
        raise ModelFolderError(
            f'"{folder}" holds no exported model (model.stablehlo); give an --out folder of nasx export'
        )
    exported = jax.export.deserialize(bytearray((folder / "model.stablehlo").read_bytes()))
    with np.load(folder / "weights.npz") as npz:
        weights = [jnp.asarray(npz[f"w{i}"]) for i in range(len(npz.files))]

    def model(images: np.ndarray) -> np.ndarray:
        return np.asarray(exported.call(weights, jnp.asarray(images, jnp.float32)))

    return model
