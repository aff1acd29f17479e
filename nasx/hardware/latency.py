"""Measured latency tables: per-layer latencies on one device, and the network latency they predict.

A latency table (``nasx profile --space S --out LUT.json``) holds the measured latency of every
distinct block of a search space on one device (`nasx.costs.Block`: an MBConv block, the stem or
the head, its layers described by `nasx.costs.Layer`, run as the network runs them: conv + BN +
activation fused, at one batch size and resolution), and a per-network overhead fitted by least
squares on whole networks. A network's predicted latency is

    latency_ms = sum(entry[block] for block in space.blocks(arch)) + overhead_ms

`attach` gives a space whose `costs` carry ``latency_ms``, so a budget such as ``15ms-latency``
works wherever costs are used: sampling, search and the MP solver (latency is additive per block
option, hence a linear constraint). This module reads, writes and checks tables and imports no
JAX, so a prediction costs microseconds; `nasx.hardware.profile` measures them.

The file is JSON, rewritten atomically as measurements come in (`nasx.hardware.profile.profile_layers`),
so that a killed profile loses at most the measurement in progress and resumes from the samples::

    {"format": "nasx-latency-table", "version": 1,
     "device": "cpu (AMD EPYC)", "jax_version": "0.10.2",
     "settings": {"space": "mobilenet:imagenet", "resolution": 224, "batch": 1, "width_mult": 1.0,
                  "bits": [32], "warmup": 5, "repeats": 25, "clock": "wall"},
     "overhead_ms": -0.7, "calibration": {...}, "validation": {...},
     "entries": [{"layers": [{"op": "conv", "c_in": 3, "c_out": 24, ...}], "latency_ms": 0.41,
                  "samples_ms": [0.40, 0.41, ...]}, ...]}

References:
  Cai, Zhu & Han, "ProxylessNAS: Direct Neural Architecture Search on Target Task and Hardware",
  ICLR 2019 (per-layer latency lookup tables). Wu et al., "FBNet", CVPR 2019.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasx.costs import LAYER_OPS, Block, Layer
from nasx.errors import NasxError, UnsupportedSpaceError
from nasx.space import SearchSpace
from nasx.space_family import BlockLatencySpace

__all__ = [
    "FORMAT",
    "CLOCKS",
    "LatencyTable",
    "ProfileSettings",
    "LatencyTableFormatError",
    "LatencyTableMissError",
    "LatencyTableMismatchError",
    "LatencyDeviceWarning",
    "load_table",
    "attach",
    "describe_layer",
    "describe_block",
]

FORMAT = "nasx-latency-table"
VERSION = 1


class LatencyTableFormatError(NasxError, ValueError):
    """A latency table file is missing, not JSON, or not in the nasx format."""


class LatencyTableMissError(NasxError, KeyError):
    """A block has no entry in the latency table (another space, resolution, batch or bits)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class LatencyTableMismatchError(NasxError, ValueError):
    """A table cannot be resumed or used with these settings (another space, batch, ...)."""


class LatencyDeviceWarning(UserWarning):
    """A table measured on one device kind is used on another: its predictions do not hold."""


CLOCKS = ("wall", "cpu")
"""``wall``: elapsed time (the latency a user sees on an idle machine); ``cpu``: CPU time of the
process (all its threads), which time-slicing by other processes does not inflate: on a shared
machine it measures what the network costs when it has the cores to itself."""


@dataclass(frozen=True)
class ProfileSettings:
    """What a table was measured for: the space, and how each layer was timed (`CLOCKS`)."""

    space: str
    resolution: int
    batch: int = 1
    width_mult: float = 1.0
    bits: tuple[int, ...] = (32,)
    warmup: int = 5
    repeats: int = 25
    clock: str = "wall"

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise ValueError(f'clock "{self.clock}": expected one of {", ".join(CLOCKS)}')

    def command(self, out: str | Path) -> str:
        """The ``nasx profile`` command that measures (or resumes) a table with these settings."""
        width = f" --width-mult {self.width_mult:g}" if self.width_mult != 1.0 else ""
        clock = f" --clock {self.clock}" if self.clock != "wall" else ""
        bits = ",".join(map(str, self.bits))
        return (
            f"nasx profile --space {self.space}{width} --resolution {self.resolution} --batch {self.batch} "
            f"--bits {bits}{clock} --out {out}"
        )


def describe_layer(layer: Layer) -> str:
    """``conv 24->72 k1 s1 g1 @112px bits32 relu+bn`` (for messages and tables)."""
    extras = "+".join(x for x in (layer.act, "bn" if layer.bn else "", "res" if layer.residual else "") if x)
    return (
        f"{layer.op} {layer.c_in}->{layer.c_out} k{layer.kernel} s{layer.stride} g{layer.groups} "
        f"@{layer.in_size}px bits{layer.bits}" + (f" {extras}" if extras else "")
    )


def describe_block(block: Block) -> str:
    """``[conv 24->72 ...; conv 72->72 ...; conv 72->32 ...]`` (for messages)."""
    return "[" + "; ".join(describe_layer(layer) for layer in block) + "]"


@dataclass(frozen=True, eq=False)  # identity equality: spaces holding a table stay hashable
class LatencyTable:
    """Per-block latencies (ms) measured on `device`, and the fitted per-network overhead.

    Attributes:
      settings: space, resolution, batch size, bits and timing the entries were measured with.
      device: the device kind (for a CPU, with its model name), e.g. ``"cpu (AMD EPYC)"``.
      jax_version: the JAX version that compiled the measured programs.
      entries: block -> median latency in ms.
      samples: block -> the timed calls the median is taken over (a profile that stopped midway
        resumes from them).
      overhead_ms: per-network latency beyond the sum of its blocks (least squares on whole
        networks); None until calibrated, then predictions add 0.
      calibration, validation: what the overhead was fitted on, and the last ``--validate``.
      path: the file the table was read from or is written to (for messages).
    """

    settings: ProfileSettings
    device: str
    jax_version: str
    entries: Mapping[Block, float] = field(default_factory=dict)
    samples: Mapping[Block, tuple[float, ...]] = field(default_factory=dict)
    overhead_ms: float | None = None
    calibration: Mapping[str, Any] | None = None
    validation: Mapping[str, Any] | None = None
    path: str = "latency table"

    def replace(self, **changes: Any) -> LatencyTable:
        return dataclasses.replace(self, **changes)

    def blocks_ms(self, blocks: Iterable[Block]) -> float:
        """Sum of the entries of `blocks` (no overhead).

        Raises:
          LatencyTableMissError: a block has no entry; the message says how to measure it.
        """
        entries = self.entries
        try:
            return math.fsum(entries[block] for block in blocks)
        except KeyError as e:
            raise LatencyTableMissError(
                f'latency table "{self.path}" has no entry for block {describe_block(e.args[0])} '
                f"(it holds {self.settings.space} at {self.settings.resolution} px, batch "
                f"{self.settings.batch}, bits {','.join(map(str, self.settings.bits))}); cost at its "
                f"resolution and bits, or measure the missing blocks: {self.settings.command(self.path)}"
            ) from None

    def predict(self, blocks: Iterable[Block]) -> float:
        """Predicted latency in ms of a network made of `blocks`: their entries plus the overhead."""
        return self.blocks_ms(blocks) + (self.overhead_ms or 0.0)

    def missing(self, blocks: Iterable[Block]) -> list[Block]:
        """The blocks of `blocks` the table has no entry for, in order."""
        return [block for block in dict.fromkeys(blocks) if block not in self.entries]

    def device_warning(self, device: str) -> str | None:
        """A warning when the table was measured on another device kind than `device`."""
        if device == self.device:
            return None
        return (
            f'latency table "{self.path}" was measured on "{self.device}" but runs on "{device}": '
            f"its latencies do not hold here; measure this device with {self.settings.command(self.path)}"
        )

    def to_json(self) -> dict[str, Any]:
        entries = [
            {
                "layers": [layer._asdict() for layer in block],
                "latency_ms": ms,
                "samples_ms": list(self.samples.get(block, ())),
            }
            for block, ms in self.entries.items()
        ]
        settings = dataclasses.asdict(self.settings)
        settings["bits"] = list(self.settings.bits)
        return {
            "format": FORMAT,
            "version": VERSION,
            "device": self.device,
            "jax_version": self.jax_version,
            "settings": settings,
            "overhead_ms": self.overhead_ms,
            "calibration": self.calibration,
            "validation": self.validation,
            "entries": entries,
        }

    def save(self, path: str | Path | None = None) -> Path:
        """Write the table atomically (default: to `self.path`): a temporary file renamed over it,
        so a killed process leaves the previous version or this one, never a torn file."""
        path = Path(path or self.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def from_json(cls, data: object, path: str = "latency table") -> LatencyTable:
        """Parse `data` (the file's JSON), naming the first problem found.

        Raises:
          LatencyTableFormatError: not a nasx latency table, or a malformed field or entry.
        """
        where = f'latency table "{path}"'
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise LatencyTableFormatError(
                f'{where} is not a nasx latency table (no "format": "{FORMAT}"); write one with nasx profile'
            )
        if data.get("version") != VERSION:
            raise LatencyTableFormatError(
                f"{where} has version {data.get('version')!r}; this nasx reads version {VERSION}: re-profile"
            )
        settings, device, jax_version, overhead = _header(data, str(path))
        raw_entries = data.get("entries") or []
        if not isinstance(raw_entries, list):
            raise LatencyTableFormatError(
                f'{where}: "entries" is a {type(raw_entries).__name__}; expected a list (re-profile the table)'
            )
        entries: dict[Block, float] = {}
        samples: dict[Block, tuple[float, ...]] = {}
        first: dict[Block, int] = {}
        for i, entry in enumerate(raw_entries):
            block = _block(entry, f"{where}: entry {i}")
            if block in first:
                raise LatencyTableFormatError(
                    f"{where}: entry {i} measures the same block as entry {first[block]} "
                    f"({describe_block(block)}); keep one (re-profile the table)"
                )
            first[block] = i
            entries[block] = float(entry["latency_ms"])
            samples[block] = _samples(entry.get("samples_ms", []), f"{where}: entry {i}")
        for key in ("calibration", "validation"):
            if not isinstance(data.get(key), (dict, type(None))):
                raise LatencyTableFormatError(
                    f'{where}: "{key}" is {data.get(key)!r}; expected an object or null (re-profile the table)'
                )
        return cls(
            settings,
            device,
            jax_version,
            entries,
            samples,
            overhead,
            data.get("calibration"),
            data.get("validation"),
            str(path),
        )


_SETTINGS_FIELDS: dict[str, tuple[type, float]] = {
    "resolution": (int, 1),
    "batch": (int, 1),
    "warmup": (int, 0),
    "repeats": (int, 1),
}
"""Integer settings and their least value."""


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _header(data: dict, path: str) -> tuple[ProfileSettings, str, str, float | None]:
    """Settings, device, JAX version and overhead of the table read from `path`, each checked."""
    where = f'latency table "{path}"'
    raw = data.get("settings")
    if not isinstance(raw, dict):
        raise LatencyTableFormatError(
            f'{where}: malformed header: "settings" is {raw!r}; expected an object (space, resolution, batch, width_mult, '
            "bits, warmup, repeats)"
        )
    raw = dict(raw)
    for name, (kind, least) in _SETTINGS_FIELDS.items():
        value = raw.get(name, getattr(ProfileSettings, name, None))
        if type(value) is not kind or value < least:
            raise LatencyTableFormatError(
                f'{where}: malformed header: settings "{name}" is {value!r}; expected an integer >= {least:g} (re-profile the table)'
            )
    width = raw.get("width_mult", 1.0)
    if not _finite(width) or width <= 0:
        raise LatencyTableFormatError(
            f'{where}: malformed header: settings "width_mult" is {width!r}; expected a number > 0'
        )
    bits = raw.get("bits")
    if not isinstance(bits, list) or not bits or not all(type(b) is int and b > 0 for b in bits):
        raise LatencyTableFormatError(
            f'{where}: malformed header: settings "bits" is {bits!r}; expected a list of bit-widths'
        )
    if not isinstance(raw.get("space"), str):
        raise LatencyTableFormatError(
            f'{where}: malformed header: settings "space" is {raw.get("space")!r}; expected a name'
        )
    raw["bits"] = tuple(bits)
    try:
        settings = ProfileSettings(**raw)
    except (TypeError, ValueError) as e:
        raise LatencyTableFormatError(
            f"{where}: malformed settings ({e}); expected space, resolution, batch, width_mult, bits, "
            "warmup, repeats and clock"
        ) from None
    device, jax_version = data.get("device"), data.get("jax_version")
    if not isinstance(device, str) or not isinstance(jax_version, str):
        raise LatencyTableFormatError(
            f'{where}: malformed header: "device" is {device!r} and "jax_version" {jax_version!r}; expected two strings'
        )
    overhead = data.get("overhead_ms")
    if overhead is not None and not _finite(overhead):
        raise LatencyTableFormatError(
            f'{where}: malformed header: "overhead_ms" is {overhead!r}; expected a finite number or null (fit it again: '
            f"{settings.command(path)} --calibrate N)"
        )
    return settings, device, jax_version, None if overhead is None else float(overhead)


_FIELDS = {name: type(default) for name, default in Layer._field_defaults.items()} | {
    "op": str,
    "c_in": int,
    "c_out": int,
}


def _block(entry: object, where: str) -> Block:
    if not isinstance(entry, dict):
        raise LatencyTableFormatError(f"{where} is a {type(entry).__name__}, not an object")
    layers = entry.get("layers")
    if not isinstance(layers, list) or not layers:
        raise LatencyTableFormatError(f'{where}: "layers" is {layers!r}; expected a list of layers')
    ms = entry.get("latency_ms")
    if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms < 0:
        raise LatencyTableFormatError(f'{where}: "latency_ms" is {ms!r}; expected a number >= 0')
    return tuple(_layer(layer, f"{where}, layer {j}") for j, layer in enumerate(layers))


def _layer(entry: object, where: str) -> Layer:
    if not isinstance(entry, dict):
        raise LatencyTableFormatError(f"{where} is a {type(entry).__name__}, not an object")
    values = {}
    for name, kind in _FIELDS.items():
        value = entry.get(name, Layer._field_defaults.get(name))
        if type(value) is not kind:
            raise LatencyTableFormatError(
                f'{where}: field "{name}" is {value!r}; expected a {kind.__name__} (re-profile the table)'
            )
        values[name] = value
    if values["op"] not in LAYER_OPS:
        raise LatencyTableFormatError(f'{where}: op "{values["op"]}" is not one of {", ".join(LAYER_OPS)}')
    return Layer(**values)


def _samples(values: object, where: str) -> tuple[float, ...]:
    if not isinstance(values, list) or not all(_finite(v) and v >= 0 for v in values):
        bad = (
            values if not isinstance(values, list) else next(v for v in values if not (_finite(v) and v >= 0))
        )
        raise LatencyTableFormatError(
            f'{where}: "samples_ms" holds {bad!r}; expected a list of finite numbers >= 0 (re-profile the table)'
        )
    return tuple(float(v) for v in values)


def load_table(path: str | Path, *, device: str | None = None) -> LatencyTable:
    """Read a table; warn (`LatencyDeviceWarning`) when `device` differs from the one it measured.

    Raises:
      LatencyTableFormatError: the file is missing, not JSON or not a nasx latency table.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise LatencyTableFormatError(
            f'latency table "{path}" does not exist; measure one with nasx profile --space SPACE --out {path}'
        )
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LatencyTableFormatError(
            f'latency table "{path}" is not valid JSON ({e}); re-profile it'
        ) from None
    table = LatencyTable.from_json(data, str(path))
    if device is not None and (message := table.device_warning(device)):
        warnings.warn(message, LatencyDeviceWarning, stacklevel=2)
    return table


def attach(space: SearchSpace, table: LatencyTable, resolution: int | None = None) -> SearchSpace:
    """`space` whose `costs` predict ``latency_ms`` from `table`, after checking the table covers it.

    Every block the space can have at `resolution` px (default: the table's) with the table's
    bits must have an entry; blocks at other bits fail when an architecture uses them.

    Raises:
      UnsupportedSpaceError: the space is no `BlockLatencySpace` (only mobilenet is).
      LatencyTableMissError: the table lacks blocks of the space (another space or resolution).
    """
    if not isinstance(space, BlockLatencySpace):
        raise UnsupportedSpaceError(
            f'space "{space.name}" has no per-block latency model (latency tables support mobilenet); '
            "drop --latency-table and the latency budget"
        )
    resolution = resolution or table.settings.resolution
    bits = table.settings.bits
    blocks = [b for b in space.distinct_blocks(resolution) if all(layer.bits in bits for layer in b)]
    missing = table.missing(blocks)
    if missing:
        raise LatencyTableMissError(
            f'latency table "{table.path}" has no entry for {len(missing)} of the {len(blocks)} blocks of '
            f"{space.name}:{space.variant} at {resolution} px (first: {describe_block(missing[0])}); it "
            f"holds {table.settings.space} at {table.settings.resolution} px; measure them: "
            f"{table.settings.command(table.path)}"
        )
    return dataclasses.replace(space, latency=table)
