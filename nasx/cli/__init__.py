"""The `nasx` command line: the composition root, the only nasx module that imports the plug-ins.

Every command takes ``--json`` for machine-readable output on stdout. Bad input (an unknown
space, preset or choice, malformed JSON or budget, an infeasible budget) prints one line
``nasx: error: ...`` on stderr and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

import search_spaces
from nasx.budget import format_amount, sample_admitted
from nasx.cli._args import (
    add_latency_argument,
    budget_arg,
    emit_json,
    load_latency_table,
    parse_bits,
    with_latency,
)
from nasx.costs import Costs
from nasx.errors import NasxError
from nasx.space import describe_options
from search_spaces import load_arch, make_space, training_space

__all__ = ["main"]


# --- rendering ---------------------------------------------------------------------------------
def _bytes(n: int) -> str:
    return f"{format_amount(n)}B"


def costs_json(costs: Costs) -> dict[str, int | float]:
    return costs.to_dict()


def _costs_table(title: str, costs: Costs) -> Table:
    table = Table(title=title, show_header=True)
    table.add_column("cost")
    table.add_column("value", justify="right")
    table.add_column("exact", justify="right")
    table.add_row("MACs (flops)", format_amount(costs.macs), f"{costs.macs:,}")
    table.add_row("params", format_amount(costs.params), f"{costs.params:,}")
    table.add_row("weight size", _bytes(costs.weight_bytes), f"{costs.weight_bytes:,} B")
    table.add_row("peak activations", _bytes(costs.activation_bytes), f"{costs.activation_bytes:,} B")
    table.add_row("layers", str(costs.layers), str(costs.layers))
    if costs.latency_ms is not None:
        table.add_row("latency", f"{costs.latency_ms:.3g} ms", f"{costs.latency_ms} ms")
    return table


# --- commands ----------------------------------------------------------------------------------
def cmd_spaces(args: argparse.Namespace) -> int:
    if args.space:
        space = make_space(args.space)
        choices = [
            {
                "name": c.name,
                "options": list(c.options),
                "default": c.default,
                "doc": c.doc,
            }
            for c in space.choices
        ]
        if args.json:
            emit_json({"space": space.name, "variant": space.variant, "choices": choices})
            return 0
        table = Table(
            title=f"{space.name}:{space.variant} — {len(choices)} choices, 10^{space.log10_size():.1f} architectures"
        )
        for col in ("choice", "options", "default", "meaning"):
            table.add_column(col)
        for c in space.choices:
            table.add_row(
                c.name,
                describe_options(c.options, limit=6),
                "" if c.default is None else str(c.default),
                c.doc,
            )
        Console().print(table)
        return 0
    rows = []
    for family in search_spaces.SPACES:
        space = make_space(family)
        rows.append(
            {
                "space": family,
                "variants": list(search_spaces.SKELETONS[family]),
                "resolution": space.resolution,
                "choices": len(space.choices),
                "size": space.size(),
                "log10_size": round(space.log10_size(), 2),
                "presets": [n for n, p in search_spaces.PRESETS.items() if p.space.name == family],
            }
        )
    if args.json:
        emit_json(rows)
        return 0
    table = Table(title="search spaces (nasx spaces --space NAME: choices)")
    table.add_column("space", no_wrap=True)
    table.add_column("variants", no_wrap=True)
    table.add_column("px", justify="right")
    table.add_column("size", justify="right")
    table.add_column("presets", no_wrap=True)
    for r in rows:
        table.add_row(
            r["space"],
            "\n".join(r["variants"]),
            str(r["resolution"]),
            f"10^{r['log10_size']:.1f}",
            "\n".join(r["presets"]),
            end_section=True,
        )
    Console().print(table)
    return 0


def cmd_cost(args: argparse.Namespace) -> int:

    table = load_latency_table(args)
    space, arch = load_arch(args.space, args.arch)
    space = with_latency(space, table, args.resolution)
    costs = space.costs(arch, args.resolution)
    resolution = args.resolution or arch.get("resolution", space.resolution)
    if args.json:
        emit_json(
            {
                "space": space.name,
                "variant": space.variant,
                "resolution": resolution,
                "fingerprint": arch.fingerprint,
                **costs_json(costs),
            }
        )
        return 0
    Console().print(_costs_table(f"{space.name}:{space.variant} at {resolution} px — {args.arch}", costs))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:

    table = load_latency_table(args)
    space = with_latency(make_space(args.space, args.bits), table, args.resolution)
    rng = np.random.default_rng(args.seed)
    if args.budget is None:
        archs = list(dict.fromkeys(space.sample(rng) for _ in range(args.n)))
    else:
        archs = sample_admitted(space, args.budget, rng, args.n, resolution=args.resolution)
    if len(archs) < args.n:
        print(f"nasx: warning: found {len(archs)} distinct architectures, not {args.n}", file=sys.stderr)
    if args.json:
        emit_json(
            {
                "space": space.name,
                "variant": space.variant,
                "budget": None if args.budget is None else str(args.budget),
                "seed": args.seed,
                "archs": [
                    {
                        "fingerprint": a.fingerprint,
                        "arch": a.to_dict(),
                        "costs": costs_json(space.costs(a, args.resolution)),
                    }
                    for a in archs
                ],
            }
        )
        return 0
    for arch in archs:
        sys.stdout.write(arch.to_json() + "\n")
    return 0


def cmd_train_supernet(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from nasx import data as datasets
    from nasx.devices import DATA, local_mesh
    from nasx.evaluate import accuracy
    from nasx.sampling import extreme
    from nasx.supernet import build, count_params, functional
    from nasx.train import TrainConfig, train

    family = args.space.partition(":")[0]
    probe = training_space(args.space, bits=args.bits, num_classes=10, width_mult=args.width_mult)
    data = datasets.load(args.data, size=args.image_size or probe.resolution, seed=args.seed)
    space = training_space(
        args.space, bits=args.bits, num_classes=data.num_classes, width_mult=args.width_mult
    )
    config = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        archs_per_step=args.archs_per_step,
        sampling=args.sampling,
        learning_rate=args.lr,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
    )
    supernet = build(search_spaces.family(family).supernet(), space, seed=args.seed)
    meta = {
        "space": family,
        "variant": space.variant,
        "bits": list(args.bits) if args.bits else None,
        "width_mult": args.width_mult,
        "data": args.data,
        "num_classes": data.num_classes,
        "resolution": data.image_size,
    }
    out = Path(args.out).expanduser().resolve()
    columns = (
        TextColumn("[bold]step {task.completed}/{task.total}"),
        BarColumn(),
        TextColumn("loss {task.fields[loss]:.3f}  acc {task.fields[acc]:.2f}  {task.fields[ips]:.0f} img/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    mesh = local_mesh(DATA, args.devices)  # data-parallel over the local devices
    err = Console(stderr=True)
    err.print(
        f"training the {space.name}:{space.variant} supernet ({count_params(supernet):,} params) on "
        f"{data.name} ({len(data.x_train)} images, {data.image_size} px), {config.sampling} sampling, "
        f"{mesh.devices.size} {mesh.devices.flat[0].platform} device(s) -> {out}"
    )
    with Progress(*columns, console=err, disable=args.json) as bar:
        task = bar.add_task("train", total=config.steps, loss=float("nan"), acc=0.0, ips=0.0)

        def on_step(step: int, m: dict[str, float]) -> None:
            bar.update(task, completed=step, loss=m["loss"], acc=m["acc_first"], ips=m["images_per_s"])

        result = train(
            supernet, data, config, out_dir=out, resume=args.resume, meta=meta, on_step=on_step, mesh=mesh
        )
    _, _, apply = functional(supernet)
    archs = {"largest": extreme(space, "largest"), "smallest": extreme(space, "smallest")}
    acc = accuracy(apply, result.params, space, list(archs.values()), data)
    summary = {
        "run_dir": str(out),
        **meta,
        "steps": result.step,
        "params": count_params(supernet),
        "test_accuracy": {name: float(a) for name, a in zip(archs, acc, strict=True)},
        "archs": {name: a.to_dict() for name, a in archs.items()},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if args.json:
        emit_json(summary)
        return 0
    table = Table(
        title=f"{space.name}:{space.variant} supernet after {result.step} steps (BN re-calibrated per subnet)"
    )
    table.add_column("subnet")
    table.add_column("test accuracy", justify="right")
    table.add_column("MACs", justify="right")
    for name, a in zip(archs, acc, strict=True):
        table.add_row(name, f"{a:.1%}", format_amount(space.costs(archs[name]).macs))
    Console().print(table)
    Console().print(f"checkpoint and metrics.jsonl in {out}")
    return 0


# --- argument parsing --------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, exit status 2 (argparse would print the whole usage)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"nasx: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nasx",
        description="Neural architecture search and compression on JAX. "
        "Budgets: 600M-flops (multiply-accumulates), 5.3M-params, 4MB-size, 20ms-latency, 60-layers.",
    )
    from nasx import __version__
    from nasx.cli import profile as cli_profile

    parser.add_argument("--version", action="version", version=f"nasx {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    spaces_help = (
        f"search space: {', '.join(search_spaces.SPACES)} (optionally NAME:VARIANT, e.g. nasnet:cifar)"
    )

    p = sub.add_parser("spaces", help="list search spaces, or one space's choices")
    p.add_argument("--space", help=spaces_help)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=cmd_spaces)

    p = sub.add_parser("cost", help="analytic costs (MACs, params, bytes, memory) of an architecture")
    p.add_argument("--space", help=spaces_help + "; optional with a preset")
    p.add_argument("--arch", required=True, help="preset name, JSON file, inline JSON, or NB201 arch string")
    p.add_argument("--resolution", type=int, help="input side in px (default: the space's deployment size)")
    p.add_argument("--json", action="store_true", help="print JSON (keys macs, params, weight_bytes, ...)")
    add_latency_argument(p)
    p.set_defaults(run=cmd_cost)

    p = sub.add_parser("sample", help="random valid architectures within a budget, one JSON per line")
    p.add_argument("--space", required=True, help=spaces_help)
    p.add_argument("--budget", type=budget_arg, help="e.g. 600M-flops or 600M-flops,5M-params")
    p.add_argument("-n", type=int, default=1, help="how many distinct architectures (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--resolution", type=int, help="px at which the budget applies (default: deployment size)")
    p.add_argument("--bits", type=parse_bits, help="weight bit-widths to choose from, e.g. 32 or 4,8,16,32")
    p.add_argument("--json", action="store_true", help="print one JSON object with costs")
    add_latency_argument(p)
    p.set_defaults(run=cmd_sample)
    p = sub.add_parser(
        "train-supernet",
        help="train a weight-sharing supernet (one compile for every subnet) and checkpoint it",
        description="Trains the space's supernet on its CIFAR-size (32 px) variant. Output: DIR/checkpoints "
        "(Orbax), DIR/metrics.jsonl, DIR/summary.json.",
    )
    p.add_argument("--space", required=True, help=spaces_help + "; default variant: cifar")
    p.add_argument(
        "--data",
        default="digits",
        help="digits (default, embedded), cifar10:PATH, cifar100:PATH, npz:PATH, synthetic",
    )
    p.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    p.add_argument("--out", required=True, help="run folder (checkpoints, metrics)")
    p.add_argument(
        "--sampling",
        choices=("sandwich", "sorted", "uniform"),
        default="sandwich",
        help="which subnets each step trains (default sandwich)",
    )
    p.add_argument("--archs-per-step", type=int, default=4, help="subnets trained per step (default 4)")
    p.add_argument("--batch-size", type=int, default=64, help="images per step (default 64)")
    p.add_argument(
        "--devices",
        type=int,
        help="split each batch over this many local devices (default: all; the batch size must be a multiple)",
    )
    p.add_argument("--lr", type=float, default=0.1, help="peak learning rate, cosine schedule (default 0.1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--bits", type=parse_bits, help="weight bit-widths to choose from, e.g. 32 or 4,8,16,32")
    p.add_argument("--width-mult", type=float, help="scale the fixed widths of the skeleton (mobilenet)")
    p.add_argument("--image-size", type=int, help="train and test at this many px (default: the space's, 32)")
    p.add_argument(
        "--checkpoint-every", type=int, default=100, help="steps between checkpoints (default 100)"
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=cmd_train_supernet)

    from nasx.cli import benchmark as cli_benchmark
    from nasx.cli import export as cli_export
    from nasx.cli import search as cli_search
    from nasx.cli import sweep as cli_ray

    cli_search.add_parsers(sub, spaces_help)
    cli_ray.add_parsers(sub, spaces_help)
    cli_export.add_parsers(sub)
    cli_profile.add_parsers(sub, spaces_help)
    cli_benchmark.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.run(args)
    except NasxError as e:
        print(f"nasx: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `nasx sample -n 1000 | head`
        return 0

