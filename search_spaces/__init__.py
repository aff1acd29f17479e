"""The registry of search-space families: one line per family, each a `nasx.space_family.SpaceFamily`.

A family's package (``search_spaces/<name>/``) exports ``FAMILY``; `FAMILIES` below is the only
place that lists them. `make_space`, `training_space` and `load_arch` resolve what a user types
(``nasnet:cifar``, a preset name, an architecture file) against it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from nasx.errors import ArchFormatError, InvalidArchError, UnknownPresetError, UnknownSpaceError
from nasx.space import Arch, Preset, SearchSpace
from nasx.space_family import SpaceFamily, with_classes
from search_spaces import mobilenet, nasnet, nb201, resnet

__all__ = [
    "FAMILIES",
    "SPACES",
    "PRESETS",
    "SKELETONS",
    "family",
    "make_space",
    "training_space",
    "load_arch",
    "mobilenet",
    "nasnet",
    "nb201",
    "resnet",
]

FAMILIES: dict[str, SpaceFamily] = {
    f.name: f for f in (nasnet.FAMILY, mobilenet.FAMILY, resnet.FAMILY, nb201.FAMILY)
}
"""Family name -> its plug-in value."""


class _View(Mapping):
    """A read-only mapping derived from `FAMILIES` on every access, so it never goes stale."""

    def __init__(self, derive: Callable[[], dict]) -> None:
        self._derive = derive

    def __getitem__(self, key: str):
        return self._derive()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._derive())

    def __len__(self) -> int:
        return len(self._derive())

    def __repr__(self) -> str:
        return repr(self._derive())


SPACES: Mapping[str, Callable[..., SearchSpace]] = _View(lambda: {n: f.space for n, f in FAMILIES.items()})
"""Family name -> ``space(variant=default, *, bits=...)`` factory."""

PRESETS: Mapping[str, Preset] = _View(lambda: {n: p for f in FAMILIES.values() for n, p in f.presets.items()})
"""Preset name -> `nasx.space.Preset` (each knows its space and variant)."""

SKELETONS: Mapping[str, tuple[str, ...]] = _View(lambda: {n: f.variants for n, f in FAMILIES.items()})
"""Family name -> its variants (skeletons); the first is the default."""


def family(spec: str) -> SpaceFamily:
    """``"nasnet"`` or ``"nasnet:cifar"`` -> the family's plug-in value."""
    name = spec.partition(":")[0]
    if name not in FAMILIES:
        raise UnknownSpaceError(f'unknown space "{spec}"; expected one of {", ".join(FAMILIES)}')
    return FAMILIES[name]


def make_space(spec: str, bits: tuple[int, ...] | None = None) -> SearchSpace:
    """``"nasnet"`` or ``"nasnet:cifar"`` -> the space value (family default bits unless given)."""
    return family(spec).make(spec.partition(":")[2] or None, bits=bits)


def training_space(
    spec: str,
    *,
    bits: tuple[int, ...] | None,
    num_classes: int,
    width_mult: float | None,
) -> SearchSpace:
    """The space a supernet trains on: the variant `spec` names, else the family's CPU-sized
    `SpaceFamily.supernet_variant`, else its small-image `training_variant`."""
    fam = family(spec)
    variant = spec.partition(":")[2] or fam.supernet_variant or fam.training_variant
    kwargs: dict = {}
    if width_mult is not None:
        if not fam.width_mult:
            raise UnknownSpaceError(f'space "{fam.name}" has no width multiplier; drop --width-mult')
        kwargs["width_mult"] = width_mult
    return with_classes(fam.make(variant, bits=bits, **kwargs), num_classes)


def load_arch(space_spec: str | None, text: str) -> tuple[SearchSpace, Arch]:
    """Resolve ``--arch``: a preset name, a JSON file, inline JSON, or a family's arch string."""
    preset = PRESETS.get(text)
    if preset is not None:
        name = space_spec.partition(":")[0] if space_spec else preset.space.name
        if name != preset.space.name:
            raise UnknownPresetError(
                f'preset "{text}" belongs to space "{preset.space.name}", not "{name}"; '
                f"drop --space or use --space {preset.space.name}"
            )
        return preset.space, preset.arch
    if space_spec is None:
        raise UnknownPresetError(
            f'"{text}" is not a preset; give --space with an architecture file, or a preset ({", ".join(PRESETS)})'
        )
    stripped = text.strip()
    if stripped.startswith("|"):
        space = make_space(space_spec)
        parse = family(space_spec).from_string
        if parse is None:
            raise ArchFormatError(
                f'"{text}" looks like an NB201 arch string, but the space is "{space_spec}"'
            )
        return space, parse(stripped, space)
    if stripped.startswith(("{", "[")):
        raw, source = stripped, "architecture"
    else:
        path = Path(text)
        if not path.is_file():
            name = space_spec.partition(":")[0]
            names = [n for n, p in PRESETS.items() if p.space.name == name]
            raise UnknownPresetError(
                f'"{text}" is neither a preset of "{name}" ({", ".join(names) or "none"}) nor an existing JSON file'
            )
        raw, source = _read_arch_file(path), f'architecture file "{path}"'
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        meta = None  # Arch.from_json reports the position
    if isinstance(meta, dict) and "arch" in meta and not isinstance(meta["arch"], dict):
        raise ArchFormatError(f'{source}: "arch" is {meta["arch"]!r}; expected an object of choice -> value')
    if isinstance(meta, dict) and isinstance(meta.get("arch"), dict):
        if "space" in meta and meta["space"] != space_spec.partition(":")[0]:
            raise ArchFormatError(f'{source} is for space "{meta["space"]}", not "{space_spec}"')
        if "variant" in meta and ":" not in space_spec:
            if not isinstance(meta["variant"], str):
                raise ArchFormatError(f'{source}: "variant" is {meta["variant"]!r}; expected a name')
            space_spec = f"{space_spec}:{meta['variant']}"
    space = make_space(space_spec)
    try:
        return space, space.validate(Arch.from_json(raw))
    except (ArchFormatError, InvalidArchError) as e:
        if source == "architecture":
            raise
        raise type(e)(f"{e} (in {source})") from None


def _read_arch_file(path: Path) -> str:
    """The text of an architecture file, or one line saying why it has none."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ArchFormatError(f'architecture file "{path}" cannot be read ({e.strerror or e})') from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ArchFormatError(
            f'architecture file "{path}" is not text (binary bytes); give a JSON object of choice -> value '
            "(as nasx search writes in best.json and front/)"
        ) from None
