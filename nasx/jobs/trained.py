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
    folder = Path(path).expanduser().resolve()
    return folder / "checkpoints" if (folder / "checkpoints").is_dir() else folder


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


def checkpoint_space(path: str, space_spec: str, bits: tuple[int, ...] | None = None) -> SearchSpace:
    """The space a search with ``--evaluator supernet:CKPT`` runs over: the checkpoint's network.

    Its subnets are what the evaluator scores and what `nasx export` ships, so their costs (and the
    budget) are that network's (its variant, width and bits), not those of the full-width space
    ``--space`` names. Costs apply at the space's deployment resolution, as in the exported models'
    costs.json, whatever the image size the supernet trained at."""
    from nasx.checkpoint import Checkpointer, CheckpointError

    make_space(space_spec)  # an unknown space or variant is named as such
    folder = _checkpoint_folder(path)
    if not folder.is_dir():
        raise UnknownEvaluatorError(
            f'supernet checkpoint "{path}" does not exist; give the --out folder of nasx train-supernet'
        )
    try:
        with Checkpointer(folder) as ckpt:
            meta = ckpt.meta()
    except CheckpointError as e:
        raise UnknownEvaluatorError(f'supernet checkpoint "{path}": {e}') from None
    family, _, variant = space_spec.partition(":")
    if variant and variant != meta.get("variant"):
        raise UnknownEvaluatorError(
            f'supernet checkpoint "{path}" was trained on {meta.get("space")}:{meta.get("variant")}, '
            f"not {space_spec}; search --space {meta.get('space')} (the checkpoint's variant is used)"
        )
    return _network_of(meta, path, family, bits)


def load_supernet(path: str, family: str | None = None) -> TrainedSupernet:
    """The network, weights, metadata and data of a `nasx train-supernet` folder."""
    from nasx import data as datasets
    from nasx.checkpoint import Checkpointer
    from nasx.supernet import build, functional
    from nasx.train import TrainConfig, optimizer

    folder = _checkpoint_folder(path)
    if not folder.is_dir():
        raise UnknownEvaluatorError(
            f'supernet checkpoint "{path}" does not exist; give the --out folder of nasx train-supernet'
        )
    with Checkpointer(folder) as ckpt:
        meta = ckpt.meta()
        network = _network_of(meta, path, family)
        supernet = build(search_spaces.family(meta["space"]).supernet(), network, seed=0)
        _, params, _ = functional(supernet)
        config = TrainConfig(**meta["config"])
        like = {"params": params, "opt_state": optimizer(config).init(params)}
        step, state, _ = ckpt.restore(like)
    data = datasets.load(meta["data"], size=meta["resolution"], seed=meta["config"].get("seed", 0))
    return TrainedSupernet(
        network, supernet, state["params"], {**meta, "step": step, "folder": str(folder)}, data
    )
