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

Every file is checked as it is read (`read_exported`, `read_weights`, `load_model`): a truncated
``model.stablehlo``, a ``weights.npz`` that is not an archive, holds non-finite values or arrays
the forward pass does not take, a JSON file that does not parse: each is one `ModelFileError`
naming the file.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nasx.errors import NasxError
from nasx.space import Arch

__all__ = [
    "Family",
    "Member",
    "ExportedModel",
    "FamilyFolderError",
    "FamilyMemberError",
    "ModelFileError",
    "load_family",
    "load_model",
    "read_exported",
    "read_weights",
    "LOADERS",
]

Model = Callable[[np.ndarray], np.ndarray]


class FamilyFolderError(NasxError, FileNotFoundError):
    """A folder that holds no exported family, or one of a kind nasx does not know."""


class FamilyMemberError(NasxError, IndexError):
    """A member index outside the family."""


class ModelFileError(NasxError, ValueError):
    """A file of an exported model or family that is damaged (truncated, not its format, or not
    matching the other files of the export)."""


_REEXPORT = "export it again (nasx export)"


def _reason(error: BaseException) -> str:
    first = (str(error).strip().splitlines() or [""])[0][:200]
    name = type(error).__name__
    name = f"{type(error).__module__}.{name}" if name == "error" else name  # struct.error, zlib.error
    return f"{name}: {first}" if first else name


def read_exported(path: Path) -> jax.export.Exported:
    """The serialized forward pass in `path` (``model.stablehlo``).

    Raises:
      ModelFileError: the file is missing, empty, truncated or not a serialized ``jax.export``.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelFileError(f'model file "{path}" cannot be read ({e.strerror or e}); {_REEXPORT}') from None
    if not data:
        raise ModelFileError(f'model file "{path}" is empty; {_REEXPORT}')
    try:
        exported = jax.export.deserialize(bytearray(data))
    except Exception as e:  # flatbuffers reports a cut file as struct.error, IndexError, ...
        raise ModelFileError(
            f'model file "{path}" is damaged or not a serialized jax.export ({_reason(e)}); {_REEXPORT}'
        ) from None
    if not exported.in_avals:
        raise ModelFileError(f'model file "{path}" takes no input: not an exported model; {_REEXPORT}')
    return exported


def read_weights(path: Path) -> list[np.ndarray]:
    """The arrays ``w0, w1, ...`` of `path` (``weights.npz``), in order, each finite.

    Raises:
      ModelFileError: the file is missing, not an ``.npz`` archive (e.g. truncated), its arrays are
        not named ``w0..wN``, or one holds NaN or infinity.
    """
    if not path.is_file():
        raise ModelFileError(f'weights file "{path}" does not exist; {_REEXPORT}')
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as e:  # zipfile, zlib, numpy's format checks: a truncated file fails in any of them
        raise ModelFileError(
            f'weights file "{path}" is damaged or not an .npz archive ({_reason(e)}); {_REEXPORT}'
        ) from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ModelFileError(
            f'weights file "{path}" is a single .npy array, not an .npz archive; {_REEXPORT}'
        )
    with npz:
        names = sorted(npz.files)
        if names != sorted(f"w{i}" for i in range(len(names))):
            raise ModelFileError(
                f'weights file "{path}" holds arrays {", ".join(names[:6]) or "none"}'
                f"{'...' if len(names) > 6 else ''}; expected w0..w{len(names) - 1}; {_REEXPORT}"
            )
        try:
            weights = [npz[f"w{i}"] for i in range(len(names))]
        except Exception as e:  # a member cut short or failing its CRC
            raise ModelFileError(f'weights file "{path}" is damaged ({_reason(e)}); {_REEXPORT}') from None
    for i, w in enumerate(weights):
        if w.dtype.kind not in "biuf":
            raise ModelFileError(
                f'weights file "{path}": w{i} is of dtype {w.dtype}, not numbers; {_REEXPORT}'
            )
        if w.dtype.kind == "f" and not np.isfinite(w).all():
            bad = int(np.size(w) - np.isfinite(w).sum())
            raise ModelFileError(
                f'weights file "{path}": w{i} holds {bad} NaN or infinite value(s); {_REEXPORT}'
            )
    return weights


def _check_fits(exported: jax.export.Exported, weights: Sequence[Any], model: Path, npz: Path) -> None:
    """The weights must be exactly what the forward pass takes (its inputs but the images)."""
    takes = exported.in_avals[:-1]
    if len(takes) != len(weights):
        raise ModelFileError(
            f'weights file "{npz}" holds {len(weights)} arrays but "{model}" takes {len(takes)}: the '
            f"two files are of different exports; {_REEXPORT}"
        )
    for i, (aval, w) in enumerate(zip(takes, weights, strict=True)):
        if tuple(aval.shape) != tuple(w.shape) or np.dtype(aval.dtype) != np.dtype(w.dtype):
            raise ModelFileError(
                f'weights file "{npz}": w{i} is {np.dtype(w.dtype)}{list(w.shape)} but "{model}" takes '
                f"{np.dtype(aval.dtype)}{list(aval.shape)}: the two files are of different exports; {_REEXPORT}"
            )


@dataclass(frozen=True)
class ExportedModel:
    """An exported forward pass and its weights: ``logits = model(images)``."""

    exported: jax.export.Exported = field(repr=False)
    weights: tuple[jax.Array, ...] = field(repr=False)
    path: Path

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        """The shape of one input (NHWC without N); None where the export left a size symbolic."""
        return tuple(d if isinstance(d, int) else None for d in self.exported.in_avals[-1].shape[1:])

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(self.exported.in_avals[-1].dtype)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(self.exported.call(list(self.weights), jnp.asarray(images, self.input_dtype)))


def _model(model: Path, weights: Sequence[Any], npz: Path) -> ExportedModel:
    exported = read_exported(model)
    _check_fits(exported, weights, model, npz)
    return ExportedModel(exported, tuple(jnp.asarray(w) for w in weights), model)


def load_model(folder: str | Path) -> ExportedModel:
    """The exported model in `folder` (``model.stablehlo`` + ``weights.npz`` of `nasx export`),
    every file checked.

    Raises:
      ModelFolderError: `folder` holds no ``model.stablehlo``.
      ModelFileError: a file of it is damaged, or the two are of different exports.
    """
    from nasx.export.standalone import ModelFolderError

    folder = Path(folder).expanduser()
    if not (folder / "model.stablehlo").exists():
        raise ModelFolderError(
            f'"{folder}" holds no exported model (model.stablehlo); give an --out folder of nasx export'
        )
    return _model(folder / "model.stablehlo", read_weights(folder / "weights.npz"), folder / "weights.npz")


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


def _read_json(path: Path, missing: Any = None) -> Any:
    """The JSON of `path` (`missing` when there is none)."""
    if not path.exists():
        return missing
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f'"{path}" is damaged or not JSON ({_reason(e)}); {_REEXPORT}') from None


def _read_object(path: Path) -> dict:
    value = _read_json(path, {})
    if not isinstance(value, dict):
        raise ModelFileError(f'"{path}" is a JSON {type(value).__name__}, not an object; {_REEXPORT}')
    return value


def _member(folder: Path) -> Member:
    arch = folder / "arch.json"
    try:
        parsed = Arch.from_json(arch.read_text()) if arch.exists() else None
    except (NasxError, UnicodeDecodeError) as e:
        raise ModelFileError(f'"{arch}" is damaged ({e}); {_REEXPORT}') from None
    return Member(parsed, _read_object(folder / "costs.json"), _read_object(folder / "metrics.json"), folder)


def _member_folders(folder: Path, manifest: dict) -> list[Path]:
    members = manifest.get("members")
    if not isinstance(members, list) or not all(
        isinstance(m, dict) and isinstance(m.get("folder"), str) for m in members
    ):
        raise ModelFileError(
            f'"{folder / "family.json"}": "members" is not a list of {{"folder": ...}}; {_REEXPORT}'
        )
    return [folder / m["folder"] for m in members]  # absolute paths stay as written


def _standalone(folder: Path, manifest: dict) -> Family:
    folders = _member_folders(folder, manifest)
    return Family(
        "standalone", folder, tuple(_member(f) for f in folders), manifest, lambda i: load_model(folders[i])
    )


def _sorted(folder: Path, manifest: dict) -> Family:
    folders = _member_folders(folder, manifest)
    if not isinstance(manifest.get("weights"), str):
        raise ModelFileError(f'"{folder / "family.json"}": "weights" names no file; {_REEXPORT}')
    npz = folder / manifest["weights"]
    weights: list[jax.Array] = []  # read once, on first use, for every member

    def load(i: int) -> Model:
        if not weights:
            weights.extend(jnp.asarray(w) for w in read_weights(npz))
        return _model(folders[i] / "model.stablehlo", weights, npz)

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
      ModelFileError: a file of the family is damaged (named in the message).
    """
    folder = Path(folder).expanduser().resolve()
    path = folder / "family.json"
    if not path.exists():
        raise FamilyFolderError(
            f'"{folder}" holds no exported family (family.json); give an --out folder of nasx export'
        )
    manifest = _read_json(path)
    if not isinstance(manifest, dict):
        raise FamilyFolderError(f'"{path}" is a JSON {type(manifest).__name__}, not a family manifest')
    kind = manifest.get("family")
    if kind not in LOADERS:
        raise FamilyFolderError(f'"{path}": unknown family "{kind}"; expected one of {", ".join(LOADERS)}')
    return LOADERS[kind](folder, manifest)
