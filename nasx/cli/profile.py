"""`nasx profile`: measured latency tables, and ``--latency-table`` for the commands that cost.

``nasx profile --space S --out LUT.json`` times every distinct block of the space on this JAX
device, then fits the per-network overhead on a few whole subnets (``--calibrate N``); a killed
run resumes where it stopped. ``nasx profile --validate LUT.json -n 50`` measures random whole
subnets and reports predicted against measured latency (Spearman, MAPE). `load_latency_table`
and `with_latency` give ``nasx cost``, ``sample``, ``search`` and ``solve`` their
``--latency-table``.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
from rich.console import Console
from rich.table import Table

import search_spaces
from nasx.cli._args import (
    _load,
    add_latency_argument,
    emit_json,
    load_latency_table,
    parse_bits,
    with_latency,
)
from nasx.errors import NasxError, UnknownSpaceError, UnsupportedSpaceError
from nasx.hardware.latency import (
    CLOCKS,
    LatencyTable,
    ProfileSettings,
    attach,
    describe_block,
)
from nasx.space import Arch, SearchSpace
from search_spaces import make_space

__all__ = ["add_parsers", "cmd_profile", "load_latency_table", "with_latency", "add_latency_argument"]


# --- nasx profile ---------------------------------------------------------------------------------
class ProfileArgumentError(NasxError, ValueError):
    """`nasx profile` options that do not go together."""


def _space(spec: str, bits: tuple[int, ...], width_mult: float) -> SearchSpace:
    space = make_space(spec, bits)
    if width_mult != 1.0:
        if not hasattr(space, "width_mult"):
            raise UnknownSpaceError(f'space "{spec}" has no width multiplier; drop --width-mult')
        space = dataclasses.replace(space, width_mult=width_mult)
    if not hasattr(space, "distinct_blocks"):
        raise UnsupportedSpaceError(
            f'space "{space.name}" has no per-block latency model (nasx profile supports mobilenet)'
        )
    return space


def _sample(space: SearchSpace, n: int, seed: list[int], exclude: set[str]) -> list[Arch]:
    """`n` distinct random architectures not in `exclude` (bounded effort)."""
    rng = np.random.default_rng(seed)
    found: dict[str, Arch] = {}
    for _ in range(50 * n):
        if len(found) == n:
            break
        arch = space.sample(rng)
        if arch.fingerprint not in exclude:
            found.setdefault(arch.fingerprint, arch)
    return list(found.values())


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


def _measure(table: LatencyTable, space: SearchSpace, archs: list[Arch], args, err: Console, **kwargs):
    """`nasx.hardware.profile.calibrate`, or `validate` when given `calibration`, with progress bars."""
    from nasx.hardware import subnets as profile_subnets
    from nasx.supernet import build

    supernet = build(search_spaces.family(space.name).supernet(), space, seed=args.seed)
    what = "validate" if "calibration" in kwargs else "calibrate"
    with _progress(err, args.json) as bar:
        n = len(archs) + len(kwargs.get("calibration", ()))
        task = bar.add_task(f"{what}: compiling subnets", total=n, note="")
        rounds = bar.add_task(f"{what}: timing rounds", total=args.rounds, note="", visible=False)

        def compiled(i: int, n: int) -> None:
            bar.update(task, completed=i)
            if i == n:
                bar.update(rounds, visible=True)

        hooks = {
            "rounds": args.rounds,
            "seed": args.seed,
            "on_compiled": compiled,
            "on_round": lambda r, n: bar.update(rounds, completed=r),
        }
        run = profile_subnets.validate if what == "validate" else profile_subnets.calibrate
        return run(table, space, supernet, archs, **hooks, **kwargs)


def cmd_profile(args: argparse.Namespace) -> int:
    from nasx.hardware.profile import profile_blocks

    err = Console(stderr=True)
    if args.validate:
        return _validate(args, err)
    if not args.space:
        raise ProfileArgumentError("nasx profile --out needs --space, the space whose blocks to measure")
    bits = args.bits or (32,)
    space = _space(args.space, bits, args.width_mult)
    spec = f"{space.name}:{space.variant}"
    settings = ProfileSettings(
        space=spec,
        resolution=args.resolution or space.resolution,
        batch=args.batch,
        width_mult=args.width_mult,
        bits=tuple(bits),
        warmup=args.warmup,
        repeats=args.repeats,
        clock=args.clock,
    )
    with _progress(err, args.json) as bar:
        task = bar.add_task("blocks x rounds", total=None, note="")

        def on_entry(done: int, total: int, block, ms: float | None) -> None:
            note = "" if ms is None else f"{describe_block(block)[:60]}: {ms:.3f} ms"
            bar.update(task, completed=done, total=total, note=note)

        table = profile_blocks(
            space, settings, args.out, rounds=args.rounds, seed=args.seed, on_entry=on_entry
        )
    if args.calibrate and table.overhead_ms is None:
        table = _measure(table, space, _sample(space, args.calibrate, [args.seed, 7], set()), args, err)
        table.save()
    summary = _summary(table)
    if args.json:
        emit_json(summary)
        return 0
    Console().print(
        f"{len(table.entries)} blocks of {spec} at {settings.resolution} px, batch {settings.batch} on "
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
    table = _load(args.validate)
    settings = table.settings
    space = attach(_space(settings.space, settings.bits, settings.width_mult), table, settings.resolution)
    calibration = _sample(space, args.calibrate, [args.seed, 7], set())
    exclude = {a.fingerprint for a in calibration} | set((table.calibration or {}).get("fingerprints", ()))
    archs = _sample(space, args.n, [args.seed, 8], exclude)
    table, report = _measure(table, space, archs, args, err, calibration=calibration)
    table.save()
    if args.json:
        emit_json({**_summary(table), **report})
        return 0
    out = Table(title=f"predicted vs measured latency of {len(archs)} random {settings.space} subnets")
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
    p.add_argument("--resolution", type=int, help="input side in px (default: the space's)")
    p.add_argument("--batch", type=int, default=1, help="images per call (default 1)")
    p.add_argument("--bits", type=parse_bits, help="weight bit-widths to measure (default 32)")
    p.add_argument("--width-mult", type=float, default=1.0, help="width multiplier of the space (mobilenet)")
    p.add_argument("--warmup", type=int, default=5, help="untimed calls before timing (default 5)")
    p.add_argument("--repeats", type=int, default=25, help="timed calls; the median is kept (default 25)")
    p.add_argument(
        "--clock",
        choices=CLOCKS,
        default="wall",
        help="wall: elapsed time (default); cpu: the process's CPU time, not inflated by other processes "
        "sharing the cores (use it on a busy machine)",
    )
    p.add_argument(
        "--calibrate",
        type=int,
        default=8,
        help="whole subnets to fit the overhead on (default 8; 0: none/keep)",
    )
    p.add_argument("-n", type=int, default=50, help="subnets to validate on (default 50)")
    p.add_argument(
        "--rounds",
        type=int,
        default=10,
        help="interleaved timing rounds of blocks and subnets (default 10; more spread other processes' "
        "load more evenly, at the same number of calls)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="random seed of weights, inputs and subnets (default 0)"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=cmd_profile)
