"""`nasx search --ray` and `nasx sweep`: the CLI wiring of Ray Tune (extra ``nasx[ray]``).

``--ray ADDRESS`` sends a search's evaluations to a Ray cluster ("auto": the one ``ray start
--head`` runs here or that this machine joined; "local": a private one in this process; or
``ray://HOST:PORT``). The strategy, the run log and the resume logic stay in this process;
each trial scores a chunk of a batch on a worker. `nasx sweep` runs one whole search per
(budget, seed) as Tune trials and collects their summaries into one folder.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import io
import itertools
import json
import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from nasx.errors import NasxError
from nasx.search import SearchResult, SearchRun

__all__ = ["search_on_ray", "add_parsers", "cmd_sweep"]


class RayMissingError(NasxError, ImportError):
    """Ray is not installed."""


def _ray_tune():
    try:
        from nasx import ray_tune
    except ImportError as e:
        raise RayMissingError(f'--ray needs Ray Tune ({e}); install it with: pip install "nasx[ray]"') from e
    return ray_tune


def _worker_evaluator(spec: str, space, args: argparse.Namespace):
    """Build the evaluator on a Ray worker (picklable: module-level, plain arguments)."""
    from nasx.cli.search import build_evaluator

    return build_evaluator(spec, space, args).evaluate


def search_on_ray(
    space, strategy, spec: str, objectives, args: argparse.Namespace, run_dir: Path, on_batch: Callable
) -> SearchResult:
    """The search of `cmd_search`, its evaluations run as Ray Tune trials (chunks of a batch)."""
    ray_tune = _ray_tune()
    ray_tune.connect(args.ray)
    worker_args = copy.copy(args)
    worker_args.batch_size = args.ray_chunk  # a worker scores (and pads to) one chunk at a time
    worker_args.run = None
    make_evaluator = functools.partial(_worker_evaluator, spec, space, worker_args)
    with SearchRun(
        space,
        strategy,
        objectives,
        evaluations=args.evaluations,
        batch_size=args.batch_size,
        seed=args.seed,
        budget=args.budget,
        resolution=args.resolution,
        run_dir=run_dir,
        resume=args.resume,
        on_batch=on_batch,
    ) as run:
        rounds = args.ray_rounds if spec.startswith("train:") else None  # ASHA over training rounds
        with contextlib.redirect_stdout(sys.stderr):  # Tune's reports: stdout is for --json
            ray_tune.run_search(
                run, make_evaluator, chunk=args.ray_chunk, storage=run_dir / "ray", rounds=rounds
            )
        return run.result()


# --- nasx sweep ---------------------------------------------------------------------------------
FORWARDED = ("space", "strategy", "evaluator", "evaluations", "population", "batch_size", "bits", "data")
"""`nasx sweep` options passed on to each trial's `nasx search`."""


def _search_one(base: dict, out: str, budget: str, seed: int) -> dict:
    """One `nasx search` run inside a trial; its summary.json, or the error it stopped with."""
    from nasx.cli import main

    run_dir = Path(out) / f"{budget}-s{seed}"
    argv = ["search", "--budget", budget, "--seed", str(seed), "--out", str(run_dir), "--json"]
    for key, value in base.items():
        if value is not None:
            argv += [f"--{key.replace('_', '-')}", str(value)]
    if (run_dir / "runlog.jsonl").exists():
        argv.append("--resume")  # a retried trial continues its own run log
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    summary = run_dir / "summary.json"
    if code != 0 or not summary.exists():
        raise RuntimeError(f"nasx search exited with {code} for budget {budget}, seed {seed}")
    return json.loads(summary.read_text())


def cmd_sweep(args: argparse.Namespace) -> int:
    ray_tune = _ray_tune()
    budgets = [b.strip() for b in args.budgets.split(",") if b.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    from nasx.cli._args import budget_arg

    for b in budgets:
        budget_arg(b)  # a malformed budget fails here, not in a trial
    out = Path(args.out or f"runs/sweep-{args.space}").expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    base = {k: getattr(args, k) for k in FORWARDED}
    ray_tune.connect(args.ray)
    err = Console(stderr=True)
    if not args.json:
        err.print(f"sweeping {args.space} over {len(budgets)} budgets x {len(seeds)} seeds on Ray -> {out}")
    with contextlib.redirect_stdout(sys.stderr):  # Tune's reports: stdout is for --json
        summaries = ray_tune.run_sweep(
            functools.partial(_search_one, base, str(out)),
            budgets,
            seeds,
            storage=out / "ray",
            max_failures=args.max_failures,
        )
    rows = []
    for (budget, seed), s in zip(itertools.product(budgets, seeds), summaries, strict=True):
        if "error" in s:
            rows.append({"budget": budget, "seed": seed, "error": s["error"]})
        else:
            rows.append(
                {
                    "budget": budget,
                    "seed": seed,
                    "score": s["score"],
                    "macs": s["costs"]["macs"],
                    "params": s["costs"]["params"],
                    "best": s["best"],
                    "run_dir": s["run_dir"],
                }
            )
    (out / "sweep.json").write_text(json.dumps(rows, indent=2) + "\n")
    if args.json:
        print(json.dumps({"sweep": rows, "run_dir": str(out)}))
    else:
        from nasx.budget import format_amount

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
    return 0 if all("error" not in r for r in rows) else 1


def add_parsers(sub, spaces_help: str) -> None:
    p = sub.add_parser(
        "sweep",
        help="one search per budget and seed, run as Ray Tune trials",
        description="Runs `nasx search` for every (budget, seed) as a Ray Tune trial; each writes "
        "OUT/BUDGET-sSEED/ and the best of each goes to OUT/sweep.json. Needs nasx[ray].",
    )
    p.add_argument("--space", required=True, help=spaces_help)
    p.add_argument("--budgets", required=True, help="comma-separated, e.g. 200M-flops,400M-flops,600M-flops")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.add_argument(
        "--ray", default="local", help="auto, ray://HOST:PORT, or local (default: a private one here)"
    )
    p.add_argument("--strategy", help="as for nasx search (default evolution)")
    p.add_argument("--evaluator", help="as for nasx search")
    p.add_argument("--evaluations", type=int, help="per search (default 256)")
    p.add_argument("--population", type=int, help="as for nasx search")
    p.add_argument("--batch-size", type=int, help="as for nasx search")
    p.add_argument("--bits", help="as for nasx search")
    p.add_argument("--data", help="as for nasx search")
    p.add_argument("--max-failures", type=int, default=2, help="retries of a failed trial (default 2)")
    p.add_argument("--out", help="sweep folder (default runs/sweep-SPACE)")
    p.add_argument("--json", action="store_true", help="print the sweep as JSON")
    p.set_defaults(run=cmd_sweep)
