"""Argument helpers shared by the command modules: budgets, bits, JSON output, ``--latency-table``.

Imports no command module; every command module may import it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings

from nasx.budget import Budget, parse_budget
from nasx.errors import NasxError
from nasx.hardware.latency import LatencyDeviceWarning, LatencyTable, attach, load_table
from nasx.space import SearchSpace

__all__ = [
    "positive_int",
    "population_size",
    "nonnegative_int",
    "seed_int",
    "SEED_MAX",
    "anchor_count",
    "ANCHORS",
    "positive_float",
    "nonnegative_float",
    "fraction",
    "open_fraction",
    "BITS",
    "DATA_HELP",
    "parse_bits",
    "budget_arg",
    "name_list",
    "seed_list",
    "budget_list",
    "emit_json",
    "add_latency_argument",
    "load_latency_table",
    "with_latency",
    "load_table_warning",
]

BITS = (4, 8, 16, 32)
DATA_HELP = (
    "digits (default, embedded), fashion-mnist[:PATH] (apt-get install dataset-fashion-mnist), "
    "mnist:PATH, cifar10:PATH, cifar100:PATH, folder:PATH (a folder per class), npz:PATH, synthetic"
)


# --- numbers: each flag's domain, checked where arguments are parsed ----------------------------
# argparse prefixes the message with the flag: "argument --evaluations: expected a positive integer, got 0"
SEED_MAX = 2**32 - 1
"""The largest seed: NumPy's generators take any integer >= 0 but JAX's keys overflow past
2**63 - 1; 2**32 - 1 fits every generator nasx seeds."""


def _at_least(name: str, minimum: int, what: str, doc: str, maximum: int | None = None):
    """An argparse ``type`` for integers >= `minimum` (and <= `maximum`, if given); `what` names the
    domain in the message."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    parse.__name__, parse.__qualname__, parse.__doc__ = name, name, doc
    return parse


positive_int = _at_least(
    "positive_int", 1, "a positive integer", "An integer >= 1 (sizes, steps, how many of something)."
)
nonnegative_int = _at_least(
    "nonnegative_int",
    0,
    "an integer >= 0",
    "An integer >= 0 (fine-tuning steps, warm-up calls, failures).",
)
seed_int = _at_least(
    "seed_int",
    0,
    f"a seed (an integer from 0 to {SEED_MAX})",
    "A random seed: NumPy's generators take no negative one, JAX's keys no huge one.",
    maximum=SEED_MAX,
)
RESOLUTION_RANGE = (8, 4096)
"""Input sides a network is costed or built at: below 8 px every space's strides leave nothing."""
resolution_px = _at_least(
    "resolution_px",
    RESOLUTION_RANGE[0],
    f"an input side from {RESOLUTION_RANGE[0]} to {RESOLUTION_RANGE[1]} px",
    "An input side in px (``--resolution``, ``--image-size``).",
    maximum=RESOLUTION_RANGE[1],
)
SAMPLE_MAX = 1_000_000
sample_count = _at_least(
    "sample_count",
    1,
    f"a count from 1 to {SAMPLE_MAX:,}",
    "How many architectures to draw (``nasx sample -n``): each is printed, so not unbounded.",
    maximum=SAMPLE_MAX,
)
population_size = _at_least(
    "population_size",
    2,
    "a population of at least 2",
    "Evolution's and NSGA-II's: parents are drawn from it.",
)
ANCHORS = (2, 4)
"""How many anchors a stitched family takes (`nasx.export.stitched.MAX_ANCHORS`, which imports JAX)."""
anchor_count = _at_least(
    "anchor_count",
    ANCHORS[0],
    f"{ANCHORS[0]} to {ANCHORS[1]} anchors",
    "Anchors of a stitched family (SN-Net): at least two sizes, at most the stitcher's limit.",
    maximum=ANCHORS[1],
)


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates, time limits, width multipliers, bounds)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def _float_in(name: str, ok, what: str, doc: str):
    """An argparse ``type`` for finite floats with ``ok(value)``; `what` names the domain."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value) or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return value

    parse.__name__, parse.__qualname__, parse.__doc__ = name, name, doc
    return parse


nonnegative_float = _float_in(
    "nonnegative_float", lambda v: v >= 0, "a finite number >= 0", "A finite number >= 0 (weight decay)."
)
fraction = _float_in(
    "fraction", lambda v: 0 <= v < 1, "a fraction in [0, 1)", "A number in [0, 1) (label smoothing)."
)
open_fraction = _float_in(
    "open_fraction", lambda v: 0 < v < 1, "a fraction in (0, 1)", "A number in (0, 1) (a split's share)."
)


def parse_bits(text: str) -> tuple[int, ...]:
    """``--bits 4,8`` -> ``(4, 8)``; each must be one of `BITS`."""
    try:
        bits = tuple(sorted({int(b) for b in text.split(",")}))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'bits "{text}": expected comma-separated integers, e.g. 8,32'
        ) from None
    if not bits or any(b not in BITS for b in bits):
        raise argparse.ArgumentTypeError(f'bits "{text}": each must be one of {", ".join(map(str, BITS))}')
    return bits


def budget_arg(text: str) -> Budget:
    """``--budget 600M-flops`` -> `Budget`, a parse error as argparse's one-line usage error."""
    try:
        return parse_budget(text)
    except NasxError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    except OverflowError:  # "1e400M-flops": a float that is infinite before it is rounded
        raise argparse.ArgumentTypeError(f'budget "{text}": a limit too large to be a number') from None


# --- lists: comma-separated, no empty item, no item twice -----------------------------------------
def _items(text: str, what: str, example: str) -> list[str]:
    """The stripped items of `text`, or one message naming `text`: empty, an empty item, a repeat."""
    items = [item.strip() for item in text.split(",")]
    if not any(items):
        raise argparse.ArgumentTypeError(f'{what} "{text}": empty; expected e.g. {example}')
    if not all(items):
        raise argparse.ArgumentTypeError(f'{what} "{text}": an empty item between commas; e.g. {example}')
    repeated = sorted({item for item in items if items.count(item) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f'{what} "{text}": {", ".join(repeated)} given twice')
    return items


def name_list(text: str) -> tuple[str, ...]:
    """``acc,macs`` -> ``("acc", "macs")``: names (objectives, proxies), each once; the command
    checks that they exist, as that depends on its other flags."""
    return tuple(_items(text, "names", "acc,macs"))


def seed_list(text: str) -> tuple[int, ...]:
    """``0,1,2`` -> ``(0, 1, 2)``: distinct seeds, each a `seed_int`."""
    items = _items(text, "seeds", "0,1,2")
    try:
        return tuple(seed_int(item) for item in items)
    except argparse.ArgumentTypeError as e:
        raise argparse.ArgumentTypeError(f'seeds "{text}": {e}') from None


def budget_list(text: str) -> tuple[str, ...]:
    """``200M-flops,400M-flops`` -> ``("200M-flops", "400M-flops")``: distinct budgets of one limit
    each, as typed (they name run folders), each one parsed here so a bad one stops the command
    before any work."""
    items = _items(text, "budgets", "200M-flops,400M-flops")
    for item in items:
        try:
            budget_arg(item)
        except argparse.ArgumentTypeError as e:
            raise argparse.ArgumentTypeError(f'budgets "{text}": {e}') from None
    return tuple(items)


def emit_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


# --- --latency-table for cost, sample, search and solve -------------------------------------------
def add_latency_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--latency-table",
        metavar="LUT.json",
        help="predict latency_ms from a table of nasx profile (for an Xms-latency budget); "
        "--resolution and --bits default to the table's",
    )


def load_latency_table(args: argparse.Namespace) -> LatencyTable | None:
    """The ``--latency-table`` of a command, if any, with the command's defaults set from it.

    `--resolution` (and `--bits`, where the command has it) default to the table's, the settings
    its blocks were measured at. A table measured on another device kind prints a warning.
    """
    if not getattr(args, "latency_table", None):
        return None
    table = load_table_warning(args.latency_table)
    if getattr(args, "resolution", None) is None:
        args.resolution = table.settings.resolution
    if "bits" in args and args.bits is None:
        args.bits = table.settings.bits
    return table


def load_table_warning(path: str) -> LatencyTable:
    """`load_table`, its device warning printed as one ``nasx: warning:`` line."""
    from nasx.hardware.profile import device_kind  # imports JAX: only when a table is given

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LatencyDeviceWarning)
        table = load_table(path, device=device_kind())
    for warning in caught:
        print(f"nasx: warning: {warning.message}", file=sys.stderr)
    return table


def with_latency(space: SearchSpace, table: LatencyTable | None, resolution: int | None) -> SearchSpace:
    """`space` whose costs carry the table's latency (`nasx.hardware.latency.attach`); itself without one."""
    return space if table is None else attach(space, table, resolution)
