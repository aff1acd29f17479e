"""Loading an exported family: `load_family(folder)` reads ``family.json`` and runs its members.

``nasx export`` writes a folder with a ``family.json`` whose ``"family"`` field says what it holds:

* ``"standalone"``: independent models, one folder each (`nasx.export.standalone.export_standalone`);
* ``"sorted"``: a chain of nested models sharing one set of weights (`nasx.export.sorted`);
* ``"stitched"``: anchors and stitching layers stored once, a forward pass per configuration
  (`nasx.export.stitched`).

Each kind has a loader in `LOADERS` (a plain dict: a new kind is one function and one entry)
returning a `Family`: its members (architecture, costs, metrics at export) and ``model(i)``,
member i as ``logits = f(images)``. Every member runs as its serialized ``jax.export`` forward
pass (StableHLO) on the stored weights.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nasx.errors import NasxError
from nasx.space import Arch

__all__ = ["Family", "Member", "FamilyFolderError", "FamilyMemberError", "load_family", "LOADERS"]

Model = Callable[[np.ndarray], np.ndarray]


class FamilyFolderError(NasxError, FileNotFoundError):
    """A folder that holds no exported family, or one of a kind nasx does not know."""


class FamilyMemberError(NasxError, IndexError):
    """A member index outside the family."""


@dataclass(frozen=True)
class Member:
    """One model of a family, as recorded at export."""

    arch: Arch | None
    costs: Mapping[str, float]
    metrics: Mapping[str, Any]
    folder: Path


@dataclass(frozen=True)
class Family:
    """The members of an exported family (ordered as exported) and a way to run each."""

    kind: str
    folder: Path
    members: tuple[Member, ...]
    manifest: Mapping[str, Any]
    _load: Callable[[int], Model] = field(repr=False)
    _cache: dict[int, Model] = field(default_factory=dict, repr=False, compare=False)

    def model(self, i: int) -> Model:
        """Member `i` as ``logits = model(images)`` (NHWC float32, any batch)."""
        if not -len(self.members) <= i < len(self.members):
            raise FamilyMemberError(
                f'member {i} of the {self.kind} family in "{self.folder}": it has {len(self.members)} '
                f"(0 to {len(self.members) - 1})"
            )
        i %= len(self.members)
        if i not in self._cache:
            self._cache[i] = self._load(i)
        return self._cache[i]

    def run(self, i: int, images: np.ndarray) -> np.ndarray:
        """Logits of member `i` on `images`."""
        return self.model(i)(images)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _member(folder: Path) -> Member:
    arch = folder / "arch.json"
    return Member(
        Arch.from_json(arch.read_text()) if arch.exists() else None,
        _read_json(folder / "costs.json"),
        _read_json(folder / "metrics.json"),
        folder,
    )


def _standalone(folder: Path, manifest: dict) -> Family:
    from nasx.export.standalone import load_model  # each model folder reads as `nasx predict` reads it

    folders = [folder / m["folder"] for m in manifest["members"]]  # absolute paths stay as written
    return Family(
        "standalone", folder, tuple(_member(f) for f in folders), manifest, lambda i: load_model(folders[i])
    )


def _sorted(folder: Path, manifest: dict) -> Family:
    folders = [folder / m["folder"] for m in manifest["members"]]
    weights: list[jax.Array] = []  # read once, on first use, for every member

    def load(i: int) -> Model:
        if not weights:
            with np.load(folder / manifest["weights"]) as npz:
                weights.extend(jnp.asarray(npz[f"w{k}"]) for k in range(len(npz.files)))
        exported = jax.export.deserialize(bytearray((folders[i] / "model.stablehlo").read_bytes()))
        return lambda images: np.asarray(exported.call(weights, jnp.asarray(images, jnp.float32)))

    return Family("sorted", folder, tuple(_member(f) for f in folders), manifest, load)


def _stitched(folder: Path, manifest: dict) -> Family:
    # laid out as a sorted family: member folders, one weights file every forward pass takes
    return dataclasses.replace(_sorted(folder, manifest), kind="stitched")


LOADERS: dict[str, Callable[[Path, dict], Family]] = {
    "standalone": _standalone,
    "sorted": _sorted,
    "stitched": _stitched,
}
"""Family kind (``family.json``'s ``"family"``) -> loader of its folder."""


def load_family(folder: str | Path) -> Family:
    """The family exported to `folder` (``nasx export --out``).

    Raises:
      FamilyFolderError: `folder` has no ``family.json``, or names a kind not in `LOADERS`.
    """
    folder = Path(folder).expanduser().resolve()
    path = folder / "family.json"
    if not path.exists():
        raise FamilyFolderError(
            f'"{folder}" holds no exported family (family.json); give an --out folder of nasx export'
        )
    manifest = json.loads(path.read_text())
    kind = manifest.get("family")
    if kind not in LOADERS:
        raise FamilyFolderError(f'"{path}": unknown family "{kind}"; expected one of {", ".join(LOADERS)}')
    return LOADERS[kind](folder, manifest)
