"""Train a weight-sharing supernet into a run folder (`nasx train-supernet` as a library call).

`train_supernet` loads the data, builds the family's supernet on its training space, trains it
(Orbax checkpoints and ``metrics.jsonl`` in the folder, resumable), measures the held-out accuracy
of the largest and smallest subnets (batch norm re-calibrated) and writes ``summary.json``::

    from nasx.jobs.train import TrainRequest, train_supernet

    result = train_supernet(TrainRequest(space="nb201", out="runs/nb201-supernet", steps=300))
    result.test_accuracy  # {"largest": 0.91, "smallest": 0.42}
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import search_spaces
from nasx.space import Arch, SearchSpace
from search_spaces import training_space

__all__ = ["TrainRequest", "TrainingStart", "TrainedRun", "train_supernet"]


@dataclass(frozen=True)
class TrainRequest:
    """What to train, on what, for how long (the flags of ``nasx train-supernet``).

    Attributes:
      space: ``FAMILY`` or ``FAMILY:VARIANT``; the family's training variant unless one is named.
      out: the run folder (checkpoints, ``metrics.jsonl``, ``summary.json``).
      data: ``digits`` (embedded), ``cifar10:PATH``, ``cifar100:PATH``, ``npz:PATH`` or ``synthetic``.
      steps: training steps.
      sampling: which subnets each step trains, one of `nasx.sampling.RULES`.
      archs_per_step: subnets trained per step.
      batch_size: images per step.
      devices: split each batch over this many local devices (``None``: all).
      learning_rate: peak learning rate of the cosine schedule.
      seed: seed of the weights, the data order and the sampled subnets.
      bits: weight bit-widths to choose from (``None``: the family's).
      width_mult: scale the skeleton's fixed widths (families with ``FAMILY.width_mult``).
      image_size: train and test at this many px (``None``: the space's).
      checkpoint_every: steps between checkpoints.
      resume: continue the run in `out` from its last checkpoint.
    """

    space: str
    out: str | Path
    data: str = "digits"
    steps: int = 300
    sampling: str = "sandwich"
    archs_per_step: int = 4
    batch_size: int = 64
    devices: int | None = None
    learning_rate: float = 0.1
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
      test_accuracy: held-out accuracy of each of `archs` (batch norm re-calibrated).
      summary: what ``summary.json`` holds.
    """

    folder: Path
    space: SearchSpace
    steps: int
    archs: Mapping[str, Arch]
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
      RunFolderError: `out` holds another run (or nothing to resume).
    """
    from nasx import data as datasets
    from nasx.devices import DATA, local_mesh
    from nasx.evaluate import accuracy
    from nasx.sampling import extreme
    from nasx.supernet import build, count_params, functional
    from nasx.train import TrainConfig, train

    family = search_spaces.family(request.space)
    probe = training_space(request.space, bits=request.bits, num_classes=10, width_mult=request.width_mult)
    data = datasets.load(request.data, size=request.image_size or probe.resolution, seed=request.seed)
    space = training_space(
        request.space, bits=request.bits, num_classes=data.num_classes, width_mult=request.width_mult
    )
    config = TrainConfig(
        steps=request.steps,
        batch_size=request.batch_size,
        archs_per_step=request.archs_per_step,
        sampling=request.sampling,
        learning_rate=request.learning_rate,
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
        "num_classes": data.num_classes,
        "resolution": data.image_size,
    }
    out = Path(request.out).expanduser().resolve()
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
    acc = accuracy(apply, result.params, space, list(archs.values()), data)
    test_accuracy = {name: float(a) for name, a in zip(archs, acc, strict=True)}
    summary = {
        "run_dir": str(out),
        **meta,
        "steps": result.step,
        "params": count_params(supernet),
        "test_accuracy": test_accuracy,
        "archs": {name: a.to_dict() for name, a in archs.items()},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return TrainedRun(out, space, result.step, archs, test_accuracy, summary)
