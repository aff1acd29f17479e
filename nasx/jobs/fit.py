"""Train one architecture from scratch into a run folder (`nasx train` as a library call).

The standard last step of NAS: the architecture a search found (or a preset, or any architecture
file) is built as a standalone network at its exact size, trained alone with the dataset's recipe
(`nasx.jobs.recipes`), and measured on the validation and the test split::

    from nasx.jobs.fit import FitRequest, train_network

    run = train_network(FitRequest(arch="runs/search#1", data="fashion-mnist", out="runs/found-1"))
    run.summary["accuracy"]  # {"val": 0.93, "test": 0.92}

The folder holds Orbax checkpoints (``--resume`` continues a killed run exactly),
``metrics.jsonl``, ``arch.json`` and ``summary.json``; ``nasx export FOLDER`` ships it as a
standalone model like a front member.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import search_spaces
from nasx import outputs
from nasx.errors import ArchFormatError, NasxError, RunFolderError
from nasx.space import Arch, SearchSpace
from nasx.space_family import with_classes

__all__ = [
    "FitRequestError",
    "FitRequest",
    "FitStart",
    "TrainedNetwork",
    "resolve_arch",
    "fresh_model",
    "train_network",
]


class FitRequestError(NasxError, ValueError):
    """A request that asks for two things at once (epochs and steps)."""


SUMMARY_KIND = "standalone-training"
"""``summary.json``'s ``kind``: how `nasx export` tells a training run from a search run."""


@dataclass(frozen=True)
class FitRequest:
    """What to train, on what, with which recipe (the flags of ``nasx train``).

    Attributes:
      arch: a preset, an architecture JSON file or inline JSON (with `space`), a search run folder
        (its best architecture) or ``RUN_DIR#K`` (the K-th member of its front, as ``nasx export``
        orders it, from 1).
      out: the run folder.
      space: ``FAMILY[:VARIANT]``; needed for architecture files without a space of their own.
      data: a dataset spec (`nasx.data.load`).
      epochs, steps: how long (at most one; default: the dataset's `nasx.jobs.recipes.Recipe`).
      batch_size, learning_rate, weight_decay, label_smoothing: the recipe (default: the dataset's).
      image_size: px (default: the dataset's own).
      val_fraction: share of the training images held out as the validation split.
      seed: weights, validation split, data order and augmentation.
      checkpoint_every: steps between checkpoints (default: about 4 per epoch).
      resume: continue the run in `out` from its last checkpoint.
    """

    arch: str
    out: str | Path
    space: str | None = None
    data: str = "digits"
    epochs: float | None = None
    steps: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    weight_decay: float | None = None
    label_smoothing: float | None = None
    image_size: int | None = None
    val_fraction: float = 0.1
    seed: int = 0
    checkpoint_every: int | None = None
    resume: bool = False


@dataclass(frozen=True)
class FitStart:
    """What is about to be trained, reported to ``on_start`` before the first step."""

    space: SearchSpace
    arch: Arch
    params: int
    macs: int
    data_name: str
    images: int
    image_size: int
    steps: int
    epochs: float
    batch_size: int
    folder: Path


@dataclass(frozen=True)
class TrainedNetwork:
    """What `train_network` returns: the folder, the trained model and ``summary.json``."""

    folder: Path
    space: SearchSpace
    arch: Arch
    model: Any
    summary: Mapping[str, Any]


def resolve_arch(text: str, space_spec: str | None = None) -> tuple[SearchSpace, Arch, str]:
    """``--arch`` -> (space, architecture, where it came from).

    A search run folder gives its best architecture (``best.json``), ``RUN_DIR#K`` the K-th
    member of its front (``front.json``); anything else goes to `search_spaces.load_arch`.
    """
    folder, hash_, rank = text.partition("#")
    path = Path(folder).expanduser()
    if path.is_dir():
        if hash_:
            try:
                k = int(rank)
            except ValueError:
                k = 0
            front = _json_list(path / "front.json")
            if not 1 <= k <= len(front):
                raise ArchFormatError(
                    f'"{text}": K must be a front member from 1 to {len(front)} (front.json of "{path}")'
                )
            entry, origin = front[k - 1], f"{path}#{k}"
        else:
            best = path / "best.json"
            if not best.is_file():
                raise RunFolderError(
                    f'"{path}" holds no search run (best.json); give an --out folder of nasx search'
                )
            entry, origin = _json_object(best), str(path)
        if not isinstance(entry, dict) or not isinstance(entry.get("arch"), dict) or "space" not in entry:
            raise ArchFormatError(f'"{text}": the entry has no "space" and "arch"')
        spec = entry["space"] + (f":{entry['variant']}" if entry.get("variant") else "")
        if space_spec and space_spec.partition(":")[0] != entry["space"]:
            raise ArchFormatError(
                f'"{text}" is an architecture of space "{entry["space"]}", not "{space_spec}"'
            )
        space, arch = search_spaces.load_arch(spec, json.dumps(entry["arch"]))
        return space, arch, origin
    space, arch = search_spaces.load_arch(space_spec, text)
    return space, arch, text


def _json_object(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunFolderError(f'"{path}" is not readable JSON ({type(e).__name__}: {e})') from None


def _json_list(path: Path) -> list:
    if not path.is_file():
        raise RunFolderError(
            f'"{path.parent}" holds no Pareto front (front.json); give an --out folder of nasx search'
        )
    value = _json_object(path)
    if not isinstance(value, list):
        raise RunFolderError(f'"{path}" is not a list of front members')
    return value


def fresh_model(space: SearchSpace, arch: Arch, seed: int = 0):
    """A standalone, freshly initialised network of exactly `arch` (parameters = analytic count).

    Sliced from a newly built supernet of `space` (its initialisation), with identity batch-norm
    statistics: training normalises with each batch's, and `nasx.fit.fit` re-calibrates them.
    """
    import jax.numpy as jnp
    from flax import nnx

    from nasx.nn.layers import BatchNorm
    from nasx.supernet import build

    supernet = build(search_spaces.family(space.name).supernet(), space, seed=seed)
    stats = {
        bn.key: (jnp.zeros(bn.scale.shape), jnp.ones(bn.scale.shape))  # stacked layers: (layers, C)
        for _, bn in nnx.iter_graph(supernet)
        if isinstance(bn, BatchNorm)
    }
    return supernet.extract(space.validate(arch), stats)


def train_network(
    request: FitRequest,
    *,
    on_start: Callable[[FitStart], None] | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainedNetwork:
    """Train `request.arch` from scratch into `request.out`; see the module docstring.

    Raises:
      UnknownPresetError, ArchFormatError, UnknownSpaceError: an architecture that cannot be resolved.
      DatasetError: data that cannot be loaded.
      RunFolderError: `out` cannot be written, holds something else or another run (or nothing
        to resume); checked before any data is loaded.
      OutputBusyError: another process is writing `out`.
      NonFiniteLossError: training diverged.
    """
    if request.epochs is not None and request.steps is not None:
        raise FitRequestError(f"epochs {request.epochs} and steps {request.steps}: give one, not both")
    space, arch, origin = resolve_arch(request.arch, request.space)
    with outputs.claim(request.out, "train", resume=request.resume) as out:
        return _train(request, space, arch, origin, out, on_start, on_step)


def _train(
    request: FitRequest,
    space: SearchSpace,
    arch: Arch,
    origin: str,
    out: Path,
    on_start: Callable[[FitStart], None] | None,
    on_step: Callable[[int, dict[str, float]], None] | None,
) -> TrainedNetwork:
    from nasx import data as datasets
    from nasx.fit import FitConfig, fit, model_accuracy, steps_for_epochs
    from nasx.jobs.recipes import recipe_for
    from nasx.supernet import count_params

    recipe = recipe_for(request.data)
    data = datasets.load(
        request.data, size=request.image_size, seed=request.seed, val_fraction=request.val_fraction
    )
    space = with_classes(space, data.num_classes)
    arch = space.validate(arch)
    batch = request.batch_size or recipe.batch_size
    n_train = len(data.x_train)
    if request.steps is not None:
        steps, epochs = request.steps, request.steps * batch / n_train
    else:
        epochs = request.epochs if request.epochs is not None else recipe.epochs
        steps = steps_for_epochs(epochs, n_train, batch)
    per_epoch = max(1, n_train // batch)
    config = FitConfig(
        steps=steps,
        batch_size=batch,
        learning_rate=request.learning_rate or recipe.learning_rate,
        weight_decay=recipe.weight_decay if request.weight_decay is None else request.weight_decay,
        label_smoothing=recipe.label_smoothing
        if request.label_smoothing is None
        else request.label_smoothing,
        warmup_steps=max(1, round(recipe.warmup_fraction * steps)),
        seed=request.seed,
        checkpoint_every=request.checkpoint_every or max(1, per_epoch // 4),
        log_every=max(1, min(50, per_epoch // 4)),
    )
    model = fresh_model(space, arch, seed=request.seed)
    costs = space.costs(arch)
    meta = {
        "kind": SUMMARY_KIND,
        "space": space.name,
        "variant": space.variant,
        "arch": arch.to_dict(),
        "fingerprint": arch.fingerprint,
        "data": request.data,
        "data_info": data.describe(),
        "num_classes": data.num_classes,
        "resolution": data.image_size,
        "val_fraction": request.val_fraction,
    }
    if on_start is not None:
        on_start(
            FitStart(
                space=space,
                arch=arch,
                params=count_params(model),
                macs=costs.macs,
                data_name=data.name,
                images=n_train,
                image_size=data.image_size,
                steps=steps,
                epochs=epochs,
                batch_size=batch,
                folder=out,
            )
        )
    result = fit(model, data, config, out_dir=out, resume=request.resume, meta=meta, on_step=on_step)
    accuracy = {split: model_accuracy(result.model, *data.split(split)) for split in ("val", "test")}
    images_per_s = [h["images_per_s"] for h in result.history[1:]]
    summary = {
        "run_dir": str(out),
        **meta,
        "origin": origin,
        "costs": asdict(costs),
        "params": count_params(result.model),
        "steps": result.step,
        "epochs": round(epochs, 3),
        "config": asdict(config),
        "accuracy": accuracy,
        "accuracy_note": "val: the held-out part of the training images; test: the dataset's test split",
        "train_seconds": round(result.seconds, 1),
        "images_per_s": round(sorted(images_per_s)[len(images_per_s) // 2], 1) if images_per_s else None,
    }
    outputs.write_json(
        out / "arch.json", {"space": space.name, "variant": space.variant, "arch": arch.to_dict()}
    )
    outputs.write_json(out / "summary.json", summary)
    return TrainedNetwork(out, space, arch, result.model, summary)


def is_training_run(folder: str | Path) -> bool:
    """Whether `folder` is an ``--out`` folder of `nasx train` (its ``summary.json`` says so)."""
    summary = Path(folder).expanduser() / "summary.json"
    try:
        return json.loads(summary.read_text()).get("kind") == SUMMARY_KIND
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return False


def load_trained_network(folder: str | Path) -> tuple[TrainedNetwork, Any]:
    """The finished `nasx train` run in `folder`: (its network, as `train_network` returned it;
    the dataset it was trained on, with the same splits)."""
    import numpy as np
    from flax import nnx

    from nasx import data as datasets
    from nasx.checkpoint import Checkpointer
    from nasx.fit import FitConfig, recalibrate
    from nasx.train import optimizer

    folder = Path(folder).expanduser().resolve()
    summary = _json_object(folder / "summary.json")
    space = with_classes(
        search_spaces.make_space(f"{summary['space']}:{summary['variant']}"), summary["num_classes"]
    )
    arch = space.validate(Arch(summary["arch"]))
    config = FitConfig(**summary["config"])
    model = fresh_model(space, arch, seed=config.seed)
    _, params, _ = nnx.split(model, nnx.Param, ...)
    with Checkpointer(folder / "checkpoints") as ckpt:
        _, state, _ = ckpt.restore({"params": params, "opt_state": optimizer(config).init(params)})
    nnx.update(model, state["params"])
    data = datasets.load(
        summary["data"], size=summary["resolution"], seed=config.seed, val_fraction=summary["val_fraction"]
    )
    order = np.random.default_rng([config.seed, 7]).permutation(len(data.x_train))
    recalibrate(model, data.x_train[order[: config.calib_images]])
    return TrainedNetwork(folder, space, arch, model, summary), data
