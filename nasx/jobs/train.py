"""Train a weight-sharing supernet into a run folder (`nasx train-supernet` as a library call).

`train_supernet` loads the data, builds the family's supernet on its training space, trains it
(Orbax checkpoints and ``metrics.jsonl`` in the folder, resumable), measures the held-out accuracy
of the largest and smallest subnets (batch norm re-calibrated) and writes ``summary.json``::

    from nasx.jobs.train import TrainRequest, train_supernet

    result = train_supernet(TrainRequest(space="nb201", out="runs/nb201-supernet", steps=300))
    result.val_accuracy   # {"largest": 0.91, "smallest": 0.42}: held out from the training images
    result.test_accuracy  # the same subnets on the test split

What the request leaves out (epochs, batch, learning rate, image size) comes from the dataset's
recipe (`nasx.jobs.recipes`) and natural size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import search_spaces
from nasx import outputs
from nasx.jobs.fit import FitRequestError
from nasx.space import Arch, SearchSpace
from search_spaces import training_space

__all__ = ["TrainRequest", "TrainingStart", "TrainedRun", "train_supernet"]


@dataclass(frozen=True)
class TrainRequest:
    """What to train, on what, for how long (the flags of ``nasx train-supernet``).

    Attributes:
      space: ``FAMILY`` or ``FAMILY:VARIANT``; unless one is named, the family's CPU-sized
        `SpaceFamily.supernet_variant` (``small`` in mobilenet and resnet).
      out: the run folder (checkpoints, ``metrics.jsonl``, ``summary.json``).
      data: a dataset spec (`nasx.data.load`): ``digits`` (embedded), ``fashion-mnist``, ...
      steps, epochs: how long (at most one; default: the dataset's recipe, `nasx.jobs.recipes`).
      sampling: which subnets each step trains, one of `nasx.sampling.RULES`.
      archs_per_step: subnets trained per step.
      batch_size: images per step (default: the recipe's).
      devices: split each batch over this many local devices (``None``: all).
      learning_rate: peak learning rate of the cosine schedule (default: the recipe's).
      label_smoothing: of the labels the largest subnet learns (default: the recipe's).
      val_fraction: share of the training images held out for validation.
      seed: seed of the weights, the data order and the sampled subnets.
      bits: weight bit-widths to choose from (``None``: the family's).
      width_mult: scale the skeleton's fixed widths (families with ``FAMILY.width_mult``).
      image_size: train and test at this many px (``None``: the dataset's own size).
      checkpoint_every: steps between checkpoints.
      resume: continue the run in `out` from its last checkpoint.
    """

    space: str
    out: str | Path
    data: str = "digits"
    steps: int | None = None
    epochs: float | None = None
    sampling: str = "sandwich"
    archs_per_step: int = 4
    batch_size: int | None = None
    devices: int | None = None
    learning_rate: float | None = None
    label_smoothing: float | None = None
    val_fraction: float = 0.1
    seed: int = 0
    bits: tuple[int, ...] | None = None
    width_mult: float | None = None
    image_size: int | None = None
    checkpoint_every: int = 100
    resume: bool = False


@dataclass(frozen=True)
class TrainingStart:
    """What is about to be trained, reported to ``on_start`` before the first step."""

    space: SearchSpace
    params: int
    data_name: str
    images: int
    image_size: int
    sampling: str
    steps: int
    devices: int
    platform: str
    folder: Path


@dataclass(frozen=True)
class TrainedRun:
    """What `train_supernet` returns.

    Attributes:
      folder: the run folder.
      space: the space the supernet trained on.
      steps: the step the run ended at.
      archs: ``{"largest": Arch, "smallest": Arch}``.
      val_accuracy: accuracy of each of `archs` on the validation split (batch norm re-calibrated).
      test_accuracy: the same on the test split.
      summary: what ``summary.json`` holds.
    """

    folder: Path
    space: SearchSpace
    steps: int
    archs: Mapping[str, Arch]
    val_accuracy: Mapping[str, float]
    test_accuracy: Mapping[str, float]
    summary: Mapping[str, Any]


def train_supernet(
    request: TrainRequest,
    *,
    on_start: Callable[[TrainingStart], None] | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainedRun:
    """Train the supernet of `request.space` into `request.out`; see the module docstring.

    Args:
      request: what to train.
      on_start: called once the data, network and devices are ready, before the first step.
      on_step: called after every step with (step, metrics), e.g. to drive a progress bar.

    Raises:
      UnknownSpaceError: an unknown space or variant, or a width multiplier the family lacks.
      DatasetError: data that cannot be loaded or does not fit the space.
      RunFolderError: `out` cannot be written, holds something else or another run (or nothing
        to resume); checked before any data is loaded.
      OutputBusyError: another process is writing `out`.
    """
    if request.epochs is not None and request.steps is not None:
        raise FitRequestError(f"epochs {request.epochs} and steps {request.steps}: give one, not both")
    training_space(request.space, bits=request.bits, num_classes=10, width_mult=request.width_mult)
    with outputs.claim(request.out, "train-supernet", resume=request.resume) as out:
        return _train(request, out, on_start, on_step)


def _train(
    request: TrainRequest,
    out: Path,
    on_start: Callable[[TrainingStart], None] | None,
    on_step: Callable[[int, dict[str, float]], None] | None,
) -> TrainedRun:
    from nasx import data as datasets
    from nasx.devices import DATA, local_mesh
    from nasx.evaluate import accuracy
    from nasx.fit import steps_for_epochs
    from nasx.jobs.recipes import recipe_for
    from nasx.sampling import extreme
    from nasx.supernet import build, count_params, functional
    from nasx.train import TrainConfig, train

    family = search_spaces.family(request.space)
    data = datasets.load(
        request.data, size=request.image_size, seed=request.seed, val_fraction=request.val_fraction
    )
    space = training_space(
        request.space,
        bits=request.bits,
        num_classes=data.num_classes,
        width_mult=request.width_mult,
    )
    recipe = recipe_for(request.data)
    batch = request.batch_size or recipe.supernet_batch_size
    if request.steps is not None:
        steps = request.steps
    else:
        epochs = request.epochs if request.epochs is not None else recipe.supernet_epochs
        steps = steps_for_epochs(epochs, len(data.x_train), batch)
    config = TrainConfig(
        steps=steps,
        batch_size=batch,
        archs_per_step=request.archs_per_step,
        sampling=request.sampling,
        learning_rate=request.learning_rate or recipe.learning_rate,
        label_smoothing=recipe.label_smoothing
        if request.label_smoothing is None
        else request.label_smoothing,
        warmup_steps=max(1, round(recipe.warmup_fraction * steps)),
        seed=request.seed,
        checkpoint_every=request.checkpoint_every,
    )
    supernet = build(family.supernet(), space, seed=request.seed)
    meta = {
        "space": family.name,
        "variant": space.variant,
        "bits": list(request.bits) if request.bits else None,
        "width_mult": request.width_mult,
        "data": request.data,
        "data_info": data.describe(),
        "val_fraction": request.val_fraction,
        "num_classes": data.num_classes,
        "resolution": data.image_size,
    }
    mesh = local_mesh(DATA, request.devices)  # data-parallel over the local devices
    if on_start is not None:
        on_start(
            TrainingStart(
                space=space,
                params=count_params(supernet),
                data_name=data.name,
                images=len(data.x_train),
                image_size=data.image_size,
                sampling=config.sampling,
                steps=config.steps,
                devices=mesh.devices.size,
                platform=mesh.devices.flat[0].platform,
                folder=out,
            )
        )
    result = train(
        supernet, data, config, out_dir=out, resume=request.resume, meta=meta, on_step=on_step, mesh=mesh
    )
    _, _, apply = functional(supernet)
    archs = {"largest": extreme(space, "largest"), "smallest": extreme(space, "smallest")}
    measured = {
        split: accuracy(apply, result.params, space, list(archs.values()), data, split=split)
        for split in ("val", "test")
    }
    val_accuracy, test_accuracy = (
        {name: float(a) for name, a in zip(archs, measured[split], strict=True)} for split in ("val", "test")
    )
    summary = {
        "run_dir": str(out),
        **meta,
        "steps": result.step,
        "params": count_params(supernet),
        "val_accuracy": val_accuracy,
        "test_accuracy": test_accuracy,
        "accuracy_note": "val: held out from the training images; test: the dataset's test split",
        "archs": {name: a.to_dict() for name, a in archs.items()},
    }
    outputs.write_json(out / "summary.json", summary)
    return TrainedRun(out, space, result.step, archs, val_accuracy, test_accuracy, summary)
