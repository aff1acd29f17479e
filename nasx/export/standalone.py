"""Export: architectures of a search as standalone models a user can load and run anywhere.

`export_standalone` slices one architecture out of a trained supernet (batch norm re-calibrated
on training images, `Supernet.extract`), optionally fine-tunes it on its own (`nasx.export.finetune`),
measures its held-out accuracy with the very function it serializes, and writes a folder:

* ``arch.json``, ``costs.json``, ``metrics.json`` (accuracy at export, the data it was measured on,
  the weights' format and file size, and with fine-tuning the steps and the accuracy before);
* ``checkpoint/``: the model's weights and batch-norm statistics, an Orbax checkpoint (for a
  quantized model its float weights before rounding, from which it can be trained further);
* ``model.stablehlo`` + ``weights.npz``: the forward pass serialized with ``jax.export`` (StableHLO,
  any batch size, for CPU and CUDA) and its weights as plain arrays, so plain JAX runs it without
  nasx: ``jax.export.deserialize(open("model.stablehlo", "rb").read()).call(weights, x)`` with
  ``weights = [npz[f"w{i}"] for i in range(len(npz.files))]``. An architecture with layers below
  32 bits is stored packed (`nasx.export.quantized`): ``weights.npz`` then holds the float32
  values and the bit-packed integer codes, ``weights.packed.json`` their layout, and the
  serialized function dequantizes them itself, so the call is the same.

`nasx.export.load.load_model(folder)` returns the exported forward pass as a function of images
(NHWC float32).
"""

from __future__ import annotations

import dataclasses
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
from nasx.export.finetune import FinetuneStepsError, finetune
from nasx.export.quantized import is_quantized, pack_model, write_weights
from nasx.outputs import write_bytes, write_json, write_text
from nasx.space import Arch, SearchSpace
from nasx.supernet import Supernet, functional

__all__ = ["ModelFolderError", "export_standalone", "save_model", "PLATFORMS"]

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


def _artifact(model: nnx.Module) -> tuple[Callable, list[np.ndarray], dict | None]:
    """The forward pass to serialize, its weights, and the packed layout (quantized models only)."""
    if is_quantized(model):
        packed = pack_model(model)
        return packed.forward, packed.weights, packed.layout
    return (*_forward(model), None)


def _serialize(forward: Callable, weights: list[np.ndarray], data: Dataset) -> jax.export.Exported:
    shape = jax.export.symbolic_shape(f"b, {', '.join(map(str, data.x_test.shape[1:]))}")
    specs = (
        [jax.ShapeDtypeStruct(w.shape, w.dtype) for w in weights],
        jax.ShapeDtypeStruct(shape, jnp.float32),
    )
    return jax.export.export(jax.jit(forward), platforms=PLATFORMS)(*specs)


def _accuracy(exported: jax.export.Exported, weights: list[np.ndarray], data: Dataset) -> float:
    on_device = [jnp.asarray(w) for w in weights]
    logits = np.concatenate(
        [
            np.asarray(exported.call(on_device, jnp.asarray(data.x_test[i : i + 512])))
            for i in range(0, len(data.x_test), 512)
        ]
    )
    return float(np.mean(logits.argmax(-1) == data.y_test))


def export_standalone(
    supernet: Supernet,
    params: nnx.State,
    space: SearchSpace,
    arch: Arch,
    data: Dataset,
    out: str | Path,
    *,
    meta: dict | None = None,
    finetune_steps: int = 0,
    batch_size: int = 64,
    seed: int = 0,
) -> dict:
    """Write `arch` of `supernet` (weights `params`) as a standalone model folder `out`.

    With `finetune_steps`, the extracted model is first trained that many steps on
    ``data.x_train`` (`nasx.export.finetune.finetune`, batches of `batch_size` drawn with `seed`).

    Returns the metrics written: held-out accuracy on `data` of the model as serialized (and,
    with fine-tuning, before it), the weights' format and file size.

    Raises:
      FinetuneStepsError: `finetune_steps` is negative.
    """
    if finetune_steps < 0:
        raise FinetuneStepsError(f"fine-tuning steps {finetune_steps}: expected 0 or more (0 = none)")
    out = Path(out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    _, _, apply = functional(supernet)
    arch = space.validate(arch)
    x_calib = jnp.asarray(calibration_images(data))
    stats = jax.jit(calibrate, static_argnums=0)(apply, params, jnp.asarray(space.encode(arch)), x_calib)
    nnx.update(supernet, params)  # extract slices the module's own weights
    model = supernet.extract(arch, stats)
    return save_model(
        model,
        space,
        arch,
        data,
        out,
        meta=meta,
        finetune_steps=finetune_steps,
        batch_size=batch_size,
        seed=seed,
    )


def save_model(
    model: nnx.Module,
    space: SearchSpace,
    arch: Arch,
    data: Dataset,
    out: str | Path,
    *,
    meta: dict | None = None,
    finetune_steps: int = 0,
    batch_size: int = 64,
    seed: int = 0,
) -> dict:
    """Write the standalone `model` of `arch` (stored batch-norm statistics) as a model folder
    `out` (see the module docstring), optionally fine-tuned first; returns the metrics written."""
    if finetune_steps < 0:
        raise FinetuneStepsError(f"fine-tuning steps {finetune_steps}: expected 0 or more (0 = none)")
    out = Path(out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    forward, weights, layout = _artifact(model)
    exported = _serialize(forward, weights, data)
    metrics: dict = {"test_accuracy": _accuracy(exported, weights, data), "data": data.name}
    if finetune_steps:
        model, history = finetune(model, data, finetune_steps, batch_size=batch_size, seed=seed)
        tuned_forward, tuned, tuned_layout = _artifact(model)
        if tuned_layout != layout or [w.shape for w in tuned] != [w.shape for w in weights]:
            exported = _serialize(tuned_forward, tuned, data)  # not expected: the structure is the same
        weights = tuned
        metrics = {
            "test_accuracy": _accuracy(exported, weights, data),
            "test_accuracy_before_finetune": metrics["test_accuracy"],
            "data": data.name,
            "finetune_steps": finetune_steps,
            "finetune_batch_size": batch_size,
            "finetune_seed": seed,
            "finetune_final_loss": history[-1]["loss"],
        }
    # model.stablehlo goes last, each file whole (tmp + rename): a folder a kill interrupted has
    # none, and reads as no model rather than as a model with the weights of another export
    (out / "model.stablehlo").unlink(missing_ok=True)
    metrics |= {
        "weights_format": "float32" if layout is None else "packed",
        "weights_file_bytes": write_weights(out, weights, layout),
    }
    write_text(out / "arch.json", arch.to_json(indent=2) + "\n")
    write_json(out / "costs.json", dataclasses.asdict(space.costs(arch)))
    write_json(out / "metrics.json", {**metrics, **(meta or {})})
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(out / "checkpoint", nnx.to_pure_dict(nnx.state(model)), force=True)
        ckpt.wait_until_finished()
    write_bytes(out / "model.stablehlo", exported.serialize())
    return metrics
