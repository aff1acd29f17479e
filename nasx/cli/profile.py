"""`nasx profile`: parse, call `nasx.jobs.profile`, draw its progress bars and print the table.

``nasx profile --space S --out LUT.json`` times every distinct block of the space on this JAX
device, then fits the per-network overhead on a few whole subnets (``--calibrate N``); a killed
run resumes where it stopped. ``nasx profile --validate LUT.json -n 50`` measures random whole
subnets and reports predicted against measured latency (Spearman, MAPE). ``--latency-table`` of
the commands that cost is in `nasx.cli._args`.
"""

from __future__ import annotations

import argparse
import dataclasses

from rich.console import Console
from rich.table import Table

from nasx.cli._args import (
    emit_json,
    load_table_warning,
    nonnegative_int,
    parse_bits,
    positive_float,
    positive_int,
    resolution_px,
    seed_int,
)
from nasx.costs import Block
from nasx.errors import NasxError
from nasx.hardware.latency import CLOCKS, LatencyTable, describe_block
from nasx.jobs.profile import ProfileObserver, ProfileRequest, ValidateRequest, profile_space, validate_table

__all__ = ["add_parsers", "cmd_profile"]


class ProfileArgumentError(NasxError, ValueError):
    """`nasx profile` options that do not go together."""


def _progress(err: Console, disable: bool):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description} {task.completed}/{task.total}"),
        BarColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=disable,
    )


class _Bars(ProfileObserver):
    """Progress bars on stderr: one for the blocks, then one for each whole-subnet timing phase."""

    def __init__(self, err: Console, disable: bool, rounds: int) -> None:
        self.err, self.disable, self.rounds = err, disable, rounds
        self.bar = None

    def _open(self):
        self.close()
        self.bar = _progress(self.err, self.disable)
        self.bar.start()
        return self.bar

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def blocks_started(self) -> None:
        self.blocks = None  # the bar opens on the first timing: an error before it prints no frame

    def block_timed(self, done: int, total: int, block: Block, ms: float | None) -> None:
        if self.blocks is None:
            self.blocks = self._open().add_task("blocks x rounds", total=None, note="")
        note = "" if ms is None else f"{describe_block(block)[:60]}: {ms:.3f} ms"
        self.bar.update(self.blocks, completed=done, total=total, note=note)

    def subnets_started(self, phase: str, count: int) -> None:
        bar = self._open()
        self.compiling = bar.add_task(f"{phase}: compiling subnets", total=count, note="")
        self.timing = bar.add_task(f"{phase}: timing rounds", total=self.rounds, note="", visible=False)

    def subnet_compiled(self, done: int, count: int) -> None:
        self.bar.update(self.compiling, completed=done)
        if done == count:
            self.bar.update(self.timing, visible=True)

    def round_timed(self, done: int, rounds: int) -> None:
        self.bar.update(self.timing, completed=done)


def cmd_profile(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    if args.validate:
        return _validate(args, err)
    if not args.space:
        raise ProfileArgumentError("nasx profile --out needs --space, the space whose blocks to measure")
    request = ProfileRequest(
        space=args.space,
        out=args.out,
        resolution=args.resolution,
        batch=args.batch,
        bits=args.bits,
        width_mult=args.width_mult,
        warmup=args.warmup,
        repeats=args.repeats,
        clock=args.clock,
        calibrate=args.calibrate,
        rounds=args.rounds,
        seed=args.seed,
    )
    bars = _Bars(err, args.json, args.rounds)
    try:
        table = profile_space(request, bars)
    finally:
        bars.close()
    if args.json:
        emit_json(_summary(table))
        return 0
    settings = table.settings
    Console().print(
        f"{len(table.entries)} blocks of {settings.space} at {settings.resolution} px, batch {settings.batch} on "
        f"{table.device}: {sum(table.entries.values()):.2f} ms in all; per-network overhead "
        + ("not fitted (--calibrate N)" if table.overhead_ms is None else f"{table.overhead_ms:+.3f} ms")
        + f" -> {table.path}"
    )
    return 0


def _summary(table: LatencyTable) -> dict:
    return {
        "path": table.path,
        "device": table.device,
        "jax_version": table.jax_version,
        "settings": dataclasses.asdict(table.settings),
        "entries": len(table.entries),
        "overhead_ms": table.overhead_ms,
    }


def _validate(args: argparse.Namespace, err: Console) -> int:
    table = load_table_warning(args.validate)  # a table of another device kind: one `nasx: warning:` line
    request = ValidateRequest(n=args.n, calibrate=args.calibrate, rounds=args.rounds, seed=args.seed)
    bars = _Bars(err, args.json, args.rounds)
    try:
        validation = validate_table(table, request, bars)
    finally:
        bars.close()
    table, report = validation.table, validation.report
    if args.json:
        emit_json({**_summary(table), **report})
        return 0
    out = Table(
        title=f"predicted vs measured latency of {len(validation.archs)} random {table.settings.space} subnets"
    )
    for col in ("arch", "predicted ms", "measured ms", "error"):
        out.add_column(col, justify="left" if col == "arch" else "right")
    for row in report["rows"]:
        p, m = row["predicted_ms"], row["measured_ms"]
        out.add_row(row["fingerprint"], f"{p:.2f}", f"{m:.2f}", f"{100 * (p - m) / m:+.1f} %")
    console = Console()
    console.print(out)
    if report["in_sample"]:
        fit = "fitted on these networks (in-sample)"
    elif report["calibration_networks"]:
        fit = f"fitted on {report['calibration_networks']} other subnets timed alongside"
    else:
        fit = "stored in the table"
    console.print(
        f"Spearman {report['spearman']:.3f}, MAPE {report['mape_percent']:.1f} % "
        f"(overhead {report['overhead_ms']:+.3f} ms {fit}); stored in {table.path}"
    )
    return 0


def add_parsers(sub, spaces_help: str) -> None:
    p = sub.add_parser(
        "profile",
        help="measure a latency table of a space's blocks on this device, or validate one",
        description="--out: time every distinct block (MBConv, stem, head; conv + BN + act fused, jitted, median of --repeats "
        "after --warmup, in --rounds interleaved rounds) at --resolution and --batch, resuming a partly "
        "written table, then fit the per-network overhead on --calibrate whole subnets. --validate: time "
        "--calibrate + -n random whole subnets together, re-fit the overhead on the first and report "
        "predicted vs measured latency of the other -n (Spearman, MAPE); --calibrate 0 keeps the stored one.",
    )
    p.add_argument("--space", help=spaces_help + " (with --out)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--out", metavar="LUT.json", help="table to write (resumed if it exists)")
    what.add_argument("--validate", metavar="LUT.json", help="validate this table on random whole subnets")
    p.add_argument("--resolution", type=resolution_px, help="input side in px (default: the space's)")
    p.add_argument("--batch", type=positive_int, default=1, help="images per call (default 1)")
    p.add_argument("--bits", type=parse_bits, help="weight bit-widths to measure (default 32)")
    p.add_argument(
        "--width-mult", type=positive_float, default=1.0, help="width multiplier of the space (mobilenet)"
    )
    p.add_argument(
        "--warmup", type=nonnegative_int, default=5, help="untimed calls before timing (default 5)"
    )
    p.add_argument(
        "--repeats", type=positive_int, default=25, help="timed calls; the median is kept (default 25)"
    )
    p.add_argument(
        "--clock",
        choices=CLOCKS,
        default="wall",
        help="wall: elapsed time (default); cpu: the process's CPU time, not inflated by other processes "
        "sharing the cores (use it on a busy machine)",
    )
    p.add_argument(
        "--calibrate",
        type=nonnegative_int,
        default=8,
        help="whole subnets to fit the overhead on (default 8; 0: none/keep)",
    )
    p.add_argument("-n", type=positive_int, default=50, help="subnets to validate on (default 50)")
    p.add_argument(
        "--rounds",
        type=positive_int,
        default=10,
        help="interleaved timing rounds of blocks and subnets (default 10; more spread other processes' "
        "load more evenly, at the same number of calls)",
    )
    p.add_argument(
        "--seed", type=seed_int, default=0, help="random seed of weights, inputs and subnets (default 0)"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=cmd_profile)
