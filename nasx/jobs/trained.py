"""Trained supernets on disk: the network of a `nasx train-supernet` folder, and its weights.

A search with ``--evaluator supernet:CKPT`` runs over the checkpoint's network (its variant,
width, bits and classes), and `nasx export` extracts subnets from its weights; both start here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import search_spaces
from nasx.errors import UnknownEvaluatorError
from nasx.space import SearchSpace
from search_spaces import make_space, training_space

__all__ = ["TrainedSupernet", "checkpoint_space", "load_supernet"]


class TrainedSupernet(NamedTuple):
    """What `load_supernet` returns: the network, the supernet module, its trained weights, the
    checkpoint's metadata (with ``step`` and ``folder``) and the dataset it trained on."""

    network: SearchSpace
    supernet: Any
    params: Any
    meta: dict
    data: Any


def _checkpoint_folder(path: str) -> Path:
    if not path.strip():
        raise UnknownEvaluatorError(
            'evaluator "supernet:" names no checkpoint; give the folder of a nasx train-supernet run, '
            "e.g. supernet:runs/mb"
        )
    folder = Path(path).expanduser().resolve()
    return folder / "checkpoints" if (folder / "checkpoints").is_dir() else folder


def _missing(path: str) -> UnknownEvaluatorError:
    return UnknownEvaluatorError(
        f'supernet checkpoint "{path}" does not exist; give the --out folder of nasx train-supernet'
    )


_META_FIELDS: dict[str, tuple[type, ...]] = {
    "space": (str,),
    "variant": (str,),
    "num_classes": (int,),
    "data": (str,),
    "resolution": (int,),
    "config": (dict,),
}
"""Metadata every supernet checkpoint holds (written by `nasx.jobs.train`), with its JSON types."""


def _check_meta(meta: dict, folder: Path, step: int) -> dict:
    """`meta` if it describes a supernet nasx can rebuild; else one line naming the key."""
    from nasx.checkpoint import CheckpointDamagedError

    where = f'checkpoint "{folder}" step {step}'
    for key, kinds in _META_FIELDS.items():
        value = meta.get(key)
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise CheckpointDamagedError(
                f"{where}: metadata {key}={value!r}; expected a {kinds[0].__name__}: it is not a "
                "supernet checkpoint of nasx train-supernet, or its metadata was edited"
            )
    bits, width = meta.get("bits"), meta.get("width_mult")
    if bits is not None and not (
        isinstance(bits, list) and bits and all(isinstance(b, int) and not isinstance(b, bool) for b in bits)
    ):
        raise CheckpointDamagedError(f"{where}: metadata bits={bits!r}; expected a list of bit-widths")
    if width is not None and (isinstance(width, bool) or not isinstance(width, (int, float)) or width <= 0):
        raise CheckpointDamagedError(f"{where}: metadata width_mult={width!r}; expected a number > 0")
    if meta["num_classes"] < 1 or meta["resolution"] < 1:
        raise CheckpointDamagedError(
            f"{where}: metadata num_classes={meta['num_classes']}, resolution={meta['resolution']}; "
            "expected positive integers"
        )
    return meta


def _train_config(meta: dict, folder: Path, step: int) -> Any:
    from nasx.checkpoint import CheckpointDamagedError
    from nasx.train import TrainConfig

    try:
        return TrainConfig(**meta["config"])
    except (TypeError, ValueError) as e:
        raise CheckpointDamagedError(
            f'checkpoint "{folder}" step {step}: metadata config is not a training configuration ({e})'
        ) from None


def _network_of(
    meta: dict, path: str, family: str | None, bits: tuple[int, ...] | None = None
) -> SearchSpace:
    """The network a supernet checkpoint's weights belong to (its variant, width, bits, classes)."""
    if family is not None and meta.get("space") != family:
        raise UnknownEvaluatorError(
            f'supernet checkpoint "{path}" is of space "{meta.get("space")}", not "{family}"'
        )
    return training_space(
        f"{meta['space']}:{meta['variant']}",
        bits=bits or (tuple(meta["bits"]) if meta.get("bits") else None),
        num_classes=meta["num_classes"],
        width_mult=meta.get("width_mult"),
    )


def _read_meta(path: str, folder: Path) -> tuple[int, dict]:
    """(step, metadata) of the latest checkpoint whose metadata reads, checked."""
    from nasx.checkpoint import CheckpointDamagedError, Checkpointer, CheckpointError

    try:
        with Checkpointer(folder) as ckpt:
            step, meta = ckpt.read_meta()
    except CheckpointDamagedError:
        raise
    except CheckpointError as e:
        raise UnknownEvaluatorError(f'supernet checkpoint "{path}": {e}') from None
    return step, _check_meta(meta, folder, step)


def checkpoint_space(path: str, space_spec: str, bits: tuple[int, ...] | None = None) -> SearchSpace:
    """The space a search with ``--evaluator supernet:CKPT`` runs over: the checkpoint's network.

    Its subnets are what the evaluator scores and what `nasx export` ships, so their costs (and the
    budget) are that network's (its variant, width and bits), not those of the full-width space
    ``--space`` names. Costs apply at the space's deployment resolution, as in the exported models'
    costs.json, whatever the image size the supernet trained at.

    Raises:
      UnknownEvaluatorError: no checkpoint at `path`, or one of another space or variant.
      CheckpointDamagedError: no step of the checkpoint has readable, well-formed metadata.
    """
    make_space(space_spec)  # an unknown space or variant is named as such
    folder = _checkpoint_folder(path)
    if not folder.is_dir():
        raise _missing(path)
    _, meta = _read_meta(path, folder)
    family, _, variant = space_spec.partition(":")
    if variant and variant != meta.get("variant"):
        raise UnknownEvaluatorError(
            f'supernet checkpoint "{path}" was trained on {meta.get("space")}:{meta.get("variant")}, '
            f"not {space_spec}; search --space {meta.get('space')} (the checkpoint's variant is used)"
        )
    return _network_of(meta, path, family, bits)


def load_supernet(path: str, family: str | None = None) -> TrainedSupernet:
    """The network, weights, metadata and data of a `nasx train-supernet` folder.

    The latest checkpoint is read; if it is damaged, the newest intact earlier one (with a warning).

    Raises:
      UnknownEvaluatorError: no checkpoint at `path`, or one of another space than `family`.
      CheckpointDamagedError: no step of the checkpoint can be read.
    """
    from nasx import data as datasets
    from nasx.checkpoint import CheckpointDamagedError, Checkpointer
    from nasx.supernet import build, functional
    from nasx.train import optimizer

    folder = _checkpoint_folder(path)
    if not folder.is_dir():
        raise _missing(path)
    meta_step, meta = _read_meta(path, folder)
    network = _network_of(meta, path, family)
    supernet = build(search_spaces.family(meta["space"]).supernet(), network, seed=0)
    _, params, _ = functional(supernet)
    config = _train_config(meta, folder, meta_step)
    like = {"params": params, "opt_state": optimizer(config).init(params)}
    with Checkpointer(folder) as ckpt:
        # from the step whose metadata was read down: the network is that step's
        step, state, restored = ckpt.restore(like, below=meta_step)
    if restored != meta:
        raise CheckpointDamagedError(
            f'checkpoint "{folder}": step {step} holds another network than step {meta_step} '
            "(its metadata differs); keep the steps of one run only in a checkpoint folder"
        )
    data = datasets.load(meta["data"], size=meta["resolution"], seed=meta["config"].get("seed", 0))
    return TrainedSupernet(
        network, supernet, state["params"], {**meta, "step": step, "folder": str(folder)}, data
    )
