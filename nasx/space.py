"""Search spaces as values, architectures as plain data.

A search space is an ordered tuple of `Choice`s plus two rules of its own: which options a choice
allows given the choices before it (conditional and structural constraints, e.g. a block's kernel
exists only if the stage is deep enough) and a canonical form that merges architectures with the
same meaning (e.g. the two commutative inputs of a NASNet block). Everything else, sampling,
validation, mutation, crossover and the integer encoding, is written once here on top of those
two rules. Because a choice's options are computed from the choices before it, sampling walks
the choices once and can never produce an invalid architecture: no rejection loops.

An `Arch` is a frozen, hashable mapping from choice name to a JSON scalar. It round-trips through
JSON and has a stable fingerprint (used for dedupe, caching and file names). Choices that are
inactive for an architecture (blocks beyond a stage's depth) are absent from it.

References:
  Peng et al., "PyGlove: Symbolic Programming for Automated Machine Learning", NeurIPS 2020
  (search space as a value, architecture "DNA" as plain data).
"""

from __future__ import annotations

import abc
import difflib
import functools
import hashlib
import itertools
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from nasx.errors import ArchFormatError, InvalidArchError

if TYPE_CHECKING:
    from nasx.costs import Costs

__all__ = ["Value", "Choice", "Arch", "SearchSpace", "AbstractSearchSpace", "Preset", "describe_options"]

Value = int | str | bool
"""A choice's value: a JSON scalar. `True` and `1` are different values."""


def _same(a: Value, b: Value) -> bool:
    return type(a) is type(b) and a == b


def _is_number(v: Value) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass(frozen=True)
class Choice:
    """One decision of a search space.

    Attributes:
      name: dotted name, e.g. ``"s2.b3.kernel"``; the key of the choice in an `Arch`.
      options: every value the choice can take anywhere in the space, in a fixed order (the
        integer encoding is an index into it). A space may allow only a subset of them given the
        choices before it (see `SearchSpace.options`).
      default: value filled in when an architecture omits this choice (None: it must be given).
      doc: what the choice means and, for constrained choices, the rule that narrows it; shown in
        error messages.
    """

    name: str
    options: tuple[Value, ...]
    default: Value | None = None
    doc: str = ""

    def __post_init__(self) -> None:
        if not self.options:
            raise ValueError(f"choice {self.name!r} has no options")
        if len({(type(o), o) for o in self.options}) != len(self.options):
            raise ValueError(f"choice {self.name!r} has repeated options {self.options}")
        if self.default is not None and not any(_same(self.default, o) for o in self.options):
            raise ValueError(f"choice {self.name!r}: default {self.default!r} not in options")

    def index(self, value: Value) -> int:
        """Position of `value` in `options` (the integer encoding); -1 if absent."""
        for i, o in enumerate(self.options):
            if _same(value, o):
                return i
        return -1


class Arch(Mapping[str, Value]):
    """A frozen, hashable architecture: choice name -> value, JSON round-trip, stable fingerprint.

    Example:
      >>> a = Arch({"s1.depth": 3, "s1.b1.kernel": 5})
      >>> Arch.from_json(a.to_json()) == a
      True
    """

    __slots__ = ("_values", "_key")

    def __init__(self, values: Mapping[str, Value] = ()) -> None:
        items = dict(values)
        for k, v in items.items():
            if not isinstance(k, str):
                raise ArchFormatError(f"architecture key {k!r} is not a string")
            if isinstance(v, np.generic):  # arrays index into options; accept their scalars
                v = v.item()
                items[k] = v
            if not isinstance(v, (bool, int, str)):
                raise ArchFormatError(
                    f"architecture value {k}={v!r} is a {type(v).__name__}; "
                    "expected a number, a string or a boolean"
                )
        values_sorted = dict(sorted(items.items()))
        object.__setattr__(self, "_values", values_sorted)
        object.__setattr__(self, "_key", tuple((k, type(v).__name__, v) for k, v in values_sorted.items()))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Arch is immutable; use arch.replace({...})")

    def __getitem__(self, key: str) -> Value:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Arch):
            return self._key == other._key
        return NotImplemented

    def __repr__(self) -> str:
        return f"Arch({self._values!r})"

    def __reduce__(self):  # the cached key holds no process-dependent hash, but be explicit
        return (Arch, (self._values,))

    def replace(self, changes: Mapping[str, Value]) -> Arch:
        """A copy with some values changed (keys mapped to None are removed)."""
        values = dict(self._values)
        for k, v in changes.items():
            if v is None:
                values.pop(k, None)
            else:
                values[k] = v
        return Arch(values)

    def to_dict(self) -> dict[str, Value]:
        return dict(self._values)

    def to_json(self, indent: int | None = None) -> str:
        """Canonical JSON: sorted keys, no whitespace unless `indent` is given."""
        if indent is None:
            return json.dumps(self._values, sort_keys=True, separators=(",", ":"))
        return json.dumps(self._values, sort_keys=True, indent=indent)

    @classmethod
    def from_json(cls, text: str) -> Arch:
        """Parse a JSON object of choices; also accepts ``{"arch": {...}, ...}`` as nasx writes."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ArchFormatError(
                f"architecture is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}"
            ) from None
        if isinstance(data, dict) and isinstance(data.get("arch"), dict):
            data = data["arch"]
        if not isinstance(data, dict):
            raise ArchFormatError(
                f"architecture JSON must be an object of choice -> value, got {type(data).__name__}"
            )
        return cls(data)

    @property
    def fingerprint(self) -> str:
        """Stable 16-hex-digit id: the SHA-256 of the canonical JSON."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


def describe_options(options: tuple[Value, ...], limit: int = 10) -> str:
    """Short human list of options: ``3, 5, 7`` or ``8, 16, ..., 2048 (step 8)``."""
    if not options:
        return "(none)"
    nums = [o for o in options if _is_number(o)]
    if len(nums) == len(options) and len(options) > 4:
        steps = {b - a for a, b in itertools.pairwise(nums)}
        if len(steps) == 1:
            step = steps.pop()
            return f"{nums[0]}, {nums[1]}, ..., {nums[-1]} (step {step})"
    shown = ", ".join(json.dumps(o) for o in options[:limit])
    return shown if len(options) <= limit else f"{shown}, ... ({len(options)} options)"


@runtime_checkable
class SearchSpace(Protocol):
    """What solvers, evaluators and the CLI need from a search space.

    Implementations subclass `AbstractSearchSpace`, which provides everything below the line from
    the four methods above it.
    """

    name: str
    """Family name, e.g. ``"mobilenet"``: the key of the space in the CLI and in run logs."""
    variant: str
    """Skeleton of the family, e.g. ``"imagenet"`` or ``"cifar"``; spaces of one family with the
    same choices share architectures."""
    resolution: int
    """Deployment input resolution in pixels; budgets apply at it unless overridden."""

    @property
    def choices(self) -> tuple[Choice, ...]: ...
    def options(self, choice: Choice, arch: Mapping[str, Value]) -> tuple[Value, ...]: ...
    def canonical(self, arch: Arch) -> Arch: ...
    def costs(self, arch: Arch, resolution: int | None = None) -> Costs: ...
    def size(self) -> int: ...
    # -----------------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Arch: ...
    def validate(self, arch: Mapping[str, Value]) -> Arch: ...
    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch: ...
    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch: ...
    def complete(self, preferred: Mapping[str, Value], rng: np.random.Generator) -> Arch: ...
    def encode(self, arch: Arch) -> np.ndarray: ...
    def decode(self, vector: np.ndarray) -> Arch: ...


class AbstractSearchSpace(abc.ABC):
    """Generic sampling, validation, mutation, crossover and encoding over `choices`.

    Subclasses (frozen dataclasses, one per family in `search_spaces/`) define `name`,
    `resolution`, `choices`, `costs` and `size`, and override `options` for conditional or
    structural choices and `canonical` for symmetries. `options(choice, arch)` may read only the
    choices that come before `choice`.
    """

    name: str
    resolution: int

    # --- what a family defines --------------------------------------------------------------
    @property
    @abc.abstractmethod
    def choices(self) -> tuple[Choice, ...]:
        """Every choice, ordered so that each depends only on choices before it."""

    @abc.abstractmethod
    def costs(self, arch: Arch, resolution: int | None = None) -> Costs:
        """Analytic costs of a valid `arch` at `resolution` px (default: `self.resolution`)."""

    @abc.abstractmethod
    def size(self) -> int:
        """Exact number of distinct (canonical) architectures."""

    def options(self, choice: Choice, arch: Mapping[str, Value]) -> tuple[Value, ...]:
        """Options `choice` allows given the earlier choices in `arch`; ``()`` if inactive."""
        del arch
        return choice.options

    def canonical(self, arch: Arch) -> Arch:
        """The representative of `arch`'s equivalence class (identity unless symmetric)."""
        return arch

    # --- generic machinery ------------------------------------------------------------------
    @functools.cached_property
    def _by_name(self) -> dict[str, Choice]:
        return {c.name: c for c in self.choices}

    def log10_size(self) -> float:
        return math.log10(self.size())

    def sample(self, rng: np.random.Generator) -> Arch:
        """A uniformly chosen option for every active choice, walked in order."""
        return self.complete({}, rng)

    def validate(self, arch: Mapping[str, Value]) -> Arch:
        """Check `arch` against the space and return its canonical `Arch`.

        Choices with a default, and choices the earlier ones force to a single option, may be
        omitted. Raises `InvalidArchError` naming the first bad key,
        its value and the allowed options.
        """
        if not isinstance(arch, Mapping):
            raise ArchFormatError(f"architecture must be a mapping of choices, got {type(arch).__name__}")
        given = arch if isinstance(arch, Arch) else Arch(arch)
        unknown = [k for k in given if k not in self._by_name]
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(self._by_name), n=1)
            hint = f'; did you mean "{close[0]}"?' if close else ""
            raise InvalidArchError(
                f'{self.name}: unknown choice "{unknown[0]}"{hint} '
                f"(this space has {len(self.choices)} choices; `nasx spaces --space {self.name}` lists them)"
            )
        values: dict[str, Value] = {}
        for choice in self.choices:
            allowed = self.options(choice, values)
            present = choice.name in given
            if not allowed:
                if present:
                    raise InvalidArchError(
                        f'{self.name}: choice "{choice.name}" is not used by this architecture '
                        f"(inactive given the choices before it; {choice.doc or 'remove it'})"
                    )
                continue
            if not present:
                if choice.default is not None and any(_same(choice.default, o) for o in allowed):
                    values[choice.name] = choice.default
                    continue
                if len(allowed) == 1:  # forced by the choices before it
                    values[choice.name] = allowed[0]
                    continue
                raise InvalidArchError(
                    f'{self.name}: missing choice "{choice.name}"; expected one of {describe_options(allowed)}'
                )
            value = given[choice.name]
            if not any(_same(value, o) for o in allowed):
                rule = f" ({choice.doc})" if choice.doc else ""
                where = "" if choice.index(value) < 0 else " here, given the choices before it"
                raise InvalidArchError(
                    f'{self.name}: choice "{choice.name}" = {json.dumps(value)} is not allowed{where}; '
                    f"expected one of {describe_options(allowed)}{rule}"
                )
            values[choice.name] = value
        return self.canonical(Arch(values))

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """Change one active choice (an adjacent option half of the time for ordered numbers).

        Choices made active by the change are sampled; choices whose value the change made
        invalid move to the nearest allowed option, so the result is always valid.
        """
        mutable = []
        for choice in self.choices:
            if choice.name in arch:
                allowed = self.options(choice, arch)
                if len(allowed) > 1:
                    mutable.append((choice, allowed))
        if not mutable:
            return arch
        choice, allowed = mutable[rng.integers(len(mutable))]
        current = arch[choice.name]
        others = [o for o in allowed if not _same(o, current)]
        if _is_number(current) and all(_is_number(o) for o in allowed) and rng.random() < 0.5:
            ordered = sorted(allowed)
            i = ordered.index(current)
            neighbours = [ordered[j] for j in (i - 1, i + 1) if 0 <= j < len(ordered)]
            new = neighbours[rng.integers(len(neighbours))]
        else:
            new = others[rng.integers(len(others))]
        return self.complete({**arch, choice.name: new}, rng)

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        """Uniform crossover: each choice from `a` or `b` at random, then repaired to validity."""
        preferred: dict[str, Value] = {}
        for choice in self.choices:
            first, second = (a, b) if rng.random() < 0.5 else (b, a)
            if choice.name in first:
                preferred[choice.name] = first[choice.name]
            elif choice.name in second:
                preferred[choice.name] = second[choice.name]
        return self.complete(preferred, rng)

    def encode(self, arch: Arch) -> np.ndarray:
        """Integer vector, one entry per choice: the option index, or -1 where inactive."""
        out = np.full(len(self.choices), -1, dtype=np.int32)
        for i, choice in enumerate(self.choices):
            if choice.name in arch:
                out[i] = choice.index(arch[choice.name])
        return out

    def decode(self, vector: np.ndarray | list[int]) -> Arch:
        """Inverse of `encode`; entries of inactive choices are ignored."""
        vec = np.asarray(vector)
        if vec.shape != (len(self.choices),):
            raise InvalidArchError(
                f"{self.name}: encoded architecture has shape {vec.shape}; expected ({len(self.choices)},)"
            )
        values: dict[str, Value] = {}
        for i, choice in enumerate(self.choices):
            allowed = self.options(choice, values)
            if not allowed:
                continue
            j = int(vec[i])
            if not 0 <= j < len(choice.options):
                raise InvalidArchError(
                    f'{self.name}: position {i} ("{choice.name}") holds {j}; expected 0..{len(choice.options) - 1}'
                )
            value = choice.options[j]
            if not any(_same(value, o) for o in allowed):
                raise InvalidArchError(
                    f'{self.name}: position {i} ("{choice.name}") decodes to {json.dumps(value)}, '
                    f"not allowed here; expected one of {describe_options(allowed)}"
                )
            values[choice.name] = value
        return self.canonical(Arch(values))

    def complete(self, preferred: Mapping[str, Value], rng: np.random.Generator) -> Arch:
        """The valid architecture nearest to `preferred` (a partial or invalid assignment).

        Walks the choices in order, keeping preferred values that are allowed.

        A preferred number that is no longer allowed moves to the nearest allowed option; any
        other missing or disallowed value is drawn uniformly from the allowed options.
        """
        values: dict[str, Value] = {}
        for choice in self.choices:
            allowed = self.options(choice, values)
            if not allowed:
                continue
            want = preferred.get(choice.name)
            if want is not None and any(_same(want, o) for o in allowed):
                values[choice.name] = want
            elif _is_number(want) and all(_is_number(o) for o in allowed):
                values[choice.name] = min(allowed, key=lambda o: (abs(o - want), o))
            else:
                values[choice.name] = allowed[rng.integers(len(allowed))]
        return self.canonical(Arch(values))


@dataclass(frozen=True)
class Preset:
    """A named architecture of a space, such as a published network.

    Attributes:
      name: e.g. ``"nasnet-a-mobile"``.
      space: the space it belongs to (a family may hold presets of several skeletons).
      arch: the validated architecture.
      reference: where it comes from (paper, repository).
    """

    name: str
    space: SearchSpace
    arch: Arch
    reference: str = ""
