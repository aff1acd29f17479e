"""`nasx spaces`, `nasx cost` and `nasx sample`: look at spaces and architectures (no JAX)."""

from __future__ import annotations

import argparse
import sys

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
    resolution_px,
    sample_count,
    seed_int,
    with_latency,
)
from nasx.costs import Costs
from nasx.space import describe_options
from search_spaces import load_arch, make_space

__all__ = ["add_parsers", "cmd_spaces", "cmd_cost", "cmd_sample"]


# --- rendering ---------------------------------------------------------------------------------
def _bytes(n: int) -> str:
    return f"{format_amount(n)}B"


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
        return _one_space(args.space, args.json)
    rows = []
    for family in search_spaces.FAMILIES.values():
        space = family.make()
        rows.append(
            {
                "space": family.name,
                "variants": list(family.variants),
                "resolution": space.resolution,
                "choices": len(space.choices),
                "size": space.size(),
                "log10_size": round(space.log10_size(), 2),
                "presets": list(family.presets),
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


def _one_space(spec: str, as_json: bool) -> int:
    space = make_space(spec)
    choices = [
        {"name": c.name, "options": list(c.options), "default": c.default, "doc": c.doc}
        for c in space.choices
    ]
    if as_json:
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
                **costs.to_dict(),
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
                        "costs": space.costs(a, args.resolution).to_dict(),
                    }
                    for a in archs
                ],
            }
        )
        return 0
    for arch in archs:
        sys.stdout.write(arch.to_json() + "\n")
    return 0


# --- argument parsing --------------------------------------------------------------------------
def add_parsers(sub, spaces_help: str) -> None:
    p = sub.add_parser("spaces", help="list search spaces, or one space's choices")
    p.add_argument("--space", help=spaces_help)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=cmd_spaces)

    p = sub.add_parser("cost", help="analytic costs (MACs, params, bytes, memory) of an architecture")
    p.add_argument("--space", help=spaces_help + "; optional with a preset")
    p.add_argument("--arch", required=True, help="preset name, JSON file, inline JSON, or NB201 arch string")
    p.add_argument(
        "--resolution", type=resolution_px, help="input side in px (default: the space's deployment size)"
    )
    p.add_argument("--json", action="store_true", help="print JSON (keys macs, params, weight_bytes, ...)")
    add_latency_argument(p)
    p.set_defaults(run=cmd_cost)

    p = sub.add_parser("sample", help="random valid architectures within a budget, one JSON per line")
    p.add_argument("--space", required=True, help=spaces_help)
    p.add_argument("--budget", type=budget_arg, help="e.g. 600M-flops or 600M-flops,5M-params")
    p.add_argument("-n", type=sample_count, default=1, help="how many distinct architectures (default 1)")
    p.add_argument("--seed", type=seed_int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--resolution", type=resolution_px, help="px at which the budget applies (default: deployment size)"
    )
    p.add_argument("--bits", type=parse_bits, help="weight bit-widths to choose from, e.g. 32 or 4,8,16,32")
    p.add_argument("--json", action="store_true", help="print one JSON object with costs")
    add_latency_argument(p)
    p.set_defaults(run=cmd_sample)
