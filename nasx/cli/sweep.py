"""`nasx sweep`: parse, call `nasx.jobs.sweep.sweep` (one search per budget and seed on Ray), print."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from nasx.budget import format_amount
from nasx.cli._args import (
    budget_list,
    nonnegative_int,
    parse_bits,
    population_size,
    positive_int,
    seed_list,
)
from nasx.jobs.search import SearchRequest
from nasx.jobs.strategies import STRATEGIES
from nasx.jobs.sweep import SweepRequest, sweep

__all__ = ["add_parsers", "cmd_sweep"]

FORWARDED = ("strategy", "evaluator", "evaluations", "population", "batch_size", "bits", "data")
"""`nasx sweep` options passed on to each trial's search (unset: the search's defaults)."""


def cmd_sweep(args: argparse.Namespace) -> int:
    budgets, seeds = args.budgets, args.seeds  # checked by budget_list and seed_list
    shared = {k: getattr(args, k) for k in FORWARDED if getattr(args, k) is not None}
    request = SweepRequest(
        search=SearchRequest(space=args.space, budget=budgets[0], **shared),  # each trial sets its own
        budgets=budgets,
        seeds=seeds,
        address=args.ray,
        max_failures=args.max_failures,
        out=args.out,
    )
    err = Console(stderr=True)

    def on_start(out: Path) -> None:
        if not args.json:
            err.print(
                f"sweeping {args.space} over {len(budgets)} budgets x {len(seeds)} seeds on Ray -> {out}"
            )

    done = sweep(request, on_start=on_start)
    rows, out = done.rows, done.run_dir
    if args.json:
        print(json.dumps({"sweep": rows, "run_dir": str(out)}))
    else:
        table = Table(title=f"{args.space}: best per budget and seed ({out}/sweep.json)")
        for col in ("budget", "seed", "score", "MACs", "params", "run"):
            table.add_column(col, justify="right" if col not in ("budget", "run") else "left")
        for r in rows:
            if "error" in r:
                table.add_row(r["budget"], str(r["seed"]), "failed", "-", "-", r["error"][:60])
            else:
                table.add_row(
                    r["budget"],
                    str(r["seed"]),
                    f"{r['score']:.4g}",
                    format_amount(r["macs"]),
                    format_amount(r["params"]),
                    Path(r["run_dir"]).name,
                )
        Console().print(table)
    return 0 if done.ok else 1


def add_parsers(sub, spaces_help: str) -> None:
    p = sub.add_parser(
        "sweep",
        help="one search per budget and seed, run as Ray Tune trials",
        description="Runs `nasx search` for every (budget, seed) as a Ray Tune trial; each writes "
        "OUT/BUDGET-sSEED/ and the best of each goes to OUT/sweep.json. Needs nasx[ray].",
    )
    p.add_argument("--space", required=True, help=spaces_help)
    p.add_argument(
        "--budgets",
        required=True,
        type=budget_list,
        help="comma-separated, one limit each, e.g. 200M-flops,400M-flops,600M-flops",
    )
    p.add_argument("--seeds", type=seed_list, default=(0,), help="comma-separated seeds (default 0)")
    p.add_argument(
        "--ray", default="local", help="auto, ray://HOST:PORT, or local (default: a private one here)"
    )
    p.add_argument("--strategy", choices=STRATEGIES, help="as for nasx search (default evolution)")
    p.add_argument("--evaluator", help="as for nasx search")
    p.add_argument("--evaluations", type=positive_int, help="per search (default 256)")
    p.add_argument("--population", type=population_size, help="as for nasx search")
    p.add_argument("--batch-size", type=positive_int, help="as for nasx search")
    p.add_argument("--bits", type=parse_bits, help="as for nasx search")
    p.add_argument("--data", help="as for nasx search")
    p.add_argument(
        "--max-failures", type=nonnegative_int, default=2, help="retries of a failed trial (default 2)"
    )
    p.add_argument("--out", help="sweep folder (default runs/sweep-SPACE)")
    p.add_argument("--json", action="store_true", help="print the sweep as JSON")
    p.set_defaults(run=cmd_sweep)
