"""`nasx search` and `nasx solve`: parse, call `nasx.jobs.search.run_search` / `nasx.jobs.solve.solve`, print."""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

from nasx.budget import format_amount
from nasx.cli._args import (
    DATA_HELP,
    add_latency_argument,
    budget_arg,
    emit_json,
    load_latency_table,
    name_list,
    parse_bits,
    population_size,
    positive_float,
    positive_int,
    resolution_px,
    seed_int,
)
from nasx.evaluators.names import ANALYTIC_NAMES, PROXY_NAMES
from nasx.hardware.latency import LatencyTable
from nasx.jobs.cluster import RaySettings
from nasx.jobs.search import CompletedSearch, SearchEvent, SearchRequest, run_search
from nasx.jobs.solve import SolveRequest, solve
from nasx.jobs.strategies import STRATEGIES
from nasx.runlog import Evaluation
from nasx.search import Objective
from nasx.space import Arch

__all__ = ["add_parsers", "cmd_search", "cmd_solve", "search_request"]


# --- nasx search ------------------------------------------------------------------------------
def search_request(args: argparse.Namespace, latency: LatencyTable | None = None) -> SearchRequest:
    """The `SearchRequest` of parsed ``nasx search`` arguments (`latency`: the loaded table)."""
    return SearchRequest(
        space=args.space,
        budget=args.budget,
        strategy=args.strategy,
        evaluator=args.evaluator,
        objectives=args.objectives,
        population=args.population,
        evaluations=args.evaluations,
        batch_size=args.batch_size,
        seed=args.seed,
        out=args.out,
        resume=args.resume,
        bits=args.bits,
        resolution=args.resolution,
        data=args.data,
        proxy_batch=args.proxy_batch,
        width_mult=args.width_mult,
        rho=args.rho,
        time_limit=args.time_limit,
        ray=RaySettings(args.ray, chunk=args.ray_chunk, rounds=args.ray_rounds) if args.ray else None,
        latency_table=args.latency_table,
        latency=latency,
        top=args.top,
    )


def cmd_search(args: argparse.Namespace) -> int:
    table = load_latency_table(args)  # prints the table's device warning; sets --resolution, --bits
    err = Console(stderr=True)
    bar = _SearchBar(err, args.evaluations, disable=args.json)

    def on_event(event: SearchEvent) -> None:
        if not args.json:
            err.print(event.message)
        if event.stage == "searching":
            bar.start(event.objectives[0].maximize)

    try:
        done = run_search(search_request(args, table), on_batch=bar.update, on_event=on_event)
    finally:
        bar.stop()
    if args.json:
        emit_json(done.summary)
        return 0
    _print_search(done, args.strategy)
    return 0


class _SearchBar:
    """The progress bar of a search: archs done, the best first objective so far, archs/s."""

    def __init__(self, console: Console, total: int, *, disable: bool) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]{task.completed}/{task.total} archs"),
            BarColumn(),
            TextColumn("best {task.fields[best]}  {task.fields[rate]:.1f} archs/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=disable,
        )
        self.total, self.task, self.maximize = total, None, True
        self.best: list[float] = []
        self.t0 = time.perf_counter()

    def start(self, maximize: bool) -> None:
        self.maximize = maximize
        self.progress.start()
        self.task = self.progress.add_task("search", total=self.total, best="-", rate=0.0)

    def update(self, done: int, batch: list[Evaluation]) -> None:
        values = [e.objectives[0] for e in batch if e.ok and e.objectives[0] is not None]
        pick = max if self.maximize else min
        if values:
            self.best.append(pick(values))
        shown = pick(self.best) if self.best else None
        self.progress.update(
            self.task,
            completed=done,
            best="-" if shown is None else f"{shown:.4g}",
            rate=done / max(time.perf_counter() - self.t0, 1e-9),
        )

    def stop(self) -> None:
        if self.task is not None:  # a bar never started prints nothing (rich would print a newline)
            self.progress.stop()


def _print_search(done: CompletedSearch, strategy: str) -> None:
    console = Console()
    result, space, seconds = done.result, done.space, done.seconds
    best, front, run_dir = result.best, result.front, done.run_dir
    assert best is not None
    names = [o.name for o in result.objectives]
    score_names = [n for n in best.scores if n not in names] if len(best.scores) > 1 else []
    table = Table(
        title=f"{space.name}:{space.variant} under {done.budget}: "
        + ("best architecture" if len(names) == 1 else f"Pareto front ({len(front)})")
        + f" of {len(result.evaluations)} evaluated ({strategy}, {seconds:.0f} s)"
    )
    table.add_column("#", justify="right")
    table.add_column("arch", no_wrap=True)
    for n in names + score_names:
        table.add_column(n, justify="right")
    costs_shown = {o.name for o in result.objectives if o.is_cost} | set(names)
    for col, key in (("MACs", "macs"), ("params", "params"), ("weights", "weight_bytes")):
        if key not in costs_shown:
            table.add_column(col, justify="right")
    shown = front if len(names) > 1 else done.top
    for rank, e in enumerate(shown, 1):
        cells = [str(rank), _describe(e.arch)]
        for o in [*result.objectives, *(Objective(n) for n in score_names)]:
            v = (e.costs if o.is_cost else e.scores).get(o.name)
            cells.append("-" if v is None else format_amount(v) if o.is_cost else f"{v:.4g}")
        if "macs" not in costs_shown:
            cells.append(format_amount(e.costs["macs"]))
        if "params" not in costs_shown:
            cells.append(format_amount(e.costs["params"]))
        if "weight_bytes" not in costs_shown:
            cells.append(f"{format_amount(e.costs['weight_bytes'])}B")
        table.add_row(*cells)
    console.print(table)
    if "solver" in done.config:
        s = done.config["solver"]
        console.print(
            f"solver: {s['status']} (optimal: {s['optimal']}, gap {s['gap']}, {s['solve_s']:.1f} s)"
        )
    console.print(f"best architecture: {run_dir / 'best.json'}   run log: {run_dir / 'runlog.jsonl'}")


def _describe(arch: Arch) -> str:
    """Fingerprint, plus the macro choices a reader looks for first."""
    macro = " ".join(f"{k}={arch[k]}" for k in ("N", "F") if k in arch)
    return f"{arch.fingerprint} {macro}".strip()


# --- nasx solve -------------------------------------------------------------------------------
def cmd_solve(args: argparse.Namespace) -> int:
    table = load_latency_table(args)  # prints the table's device warning; sets --resolution, --bits
    solution = solve(
        SolveRequest(
            space=args.space,
            budget=args.budget,
            rho=args.rho,
            bits=args.bits,
            resolution=args.resolution,
            time_limit=args.time_limit,
            latency_table=args.latency_table,
            latency=table,
            out=args.out,
        )
    )
    out = solution.summary
    if args.json:
        emit_json(out)
        return 0
    console = Console()
    arch, space = solution.result.arch, solution.space
    table = Table(
        title=f"DeepMAD MP on {space.name}:{space.variant} under {solution.budget} (rho <= {solution.rho})"
    )
    table.add_column("stage")
    stages = sorted({k.split(".")[0] for k in arch if "." in k and not k.startswith("bits")})
    fields = sorted({k.split(".", 1)[1] for k in arch if "." in k and not k.startswith("bits")})
    for f in fields:
        table.add_column(f, justify="right")
    for s in stages:
        table.add_row(s, *(str(arch.get(f"{s}.{f}", "")) for f in fields))
    console.print(table)
    result, c = solution.result, solution.result.costs
    console.print(
        f"DeepMAD score {result.score:,.2f} (check: {solution.rescored:,.2f}), "
        f"effectiveness {out['effectiveness']:.4f}; MACs {format_amount(c.macs)}, params {format_amount(c.params)}, "
        f"layers {c.layers}; {result.status}, gap {result.gap}, {result.solve_s:.1f} s"
    )
    return 0


# --- argument parsing -------------------------------------------------------------------------
def add_parsers(sub, spaces_help: str) -> None:
    p = sub.add_parser(
        "search",
        help="search a space for the best architectures under a budget",
        description="Ask/tell search (aging evolution, NSGA-II, random) or DeepMAD's MILP (mp). Scores come "
        "from zero-cost proxies on a small proxy network, DeepMAD entropy, or a trained supernet. Writes "
        "OUT/runlog.jsonl (every evaluated arch), front.json, best.json, summary.json.",
    )
    p.add_argument("--space", required=True, help=spaces_help)
    p.add_argument(
        "--budget", required=True, type=budget_arg, help="e.g. 600M-flops (MACs) or 600M-flops,5M-params"
    )
    p.add_argument("--strategy", choices=STRATEGIES, default="evolution", help="default: evolution (aging)")
    p.add_argument(
        "--evaluator",
        help=f"proxies/scores, comma-separated ({', '.join(PROXY_NAMES + ANALYTIC_NAMES)}), supernet:CKPT_DIR, or "
        "train:STEPS (each arch trained alone; with --ray, ASHA stops poor ones early); "
        "default: entropy for resnet/mobilenet, params for nasnet, synflow for nb201",
    )
    p.add_argument(
        "--objectives",
        type=name_list,
        help="e.g. acc,macs (acc/score = the evaluator's first score); default: score",
    )
    p.add_argument("--population", type=population_size, default=32, help="population size (default 32)")
    p.add_argument(
        "--evaluations", type=positive_int, default=256, help="architectures to evaluate (default 256)"
    )
    p.add_argument(
        "--batch-size", type=positive_int, default=16, help="architectures scored per call (default 16)"
    )
    p.add_argument("--seed", type=seed_int, default=0, help="random seed (default 0)")
    p.add_argument("--out", help="run folder (default: runs/SPACE-BUDGET-STRATEGY-sSEED)")
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out (nothing is evaluated twice)"
    )
    p.add_argument(
        "--bits",
        type=parse_bits,
        help="weight bit-widths to search, e.g. 4,8,16,32 (default 32: proxies cannot judge quantization; "
        "with supernet:CKPT, the checkpoint's)",
    )
    p.add_argument("--resolution", type=resolution_px, help="px at which costs apply (default: the space's)")
    p.add_argument("--data", default="digits", help="images for proxies and train:STEPS: " + DATA_HELP)
    p.add_argument(
        "--proxy-batch",
        type=positive_int,
        help="images per proxy evaluation (default: each proxy's reference batch)",
    )
    p.add_argument(
        "--width-mult", type=positive_float, help="width of the mobilenet proxy network (default 0.25)"
    )
    p.add_argument(
        "--rho",
        type=positive_float,
        help="DeepMAD effectiveness bound (default 0.3 for resnet, 0.5 for mobilenet)",
    )
    p.add_argument(
        "--time-limit", type=positive_float, default=60.0, help="MP solver time limit in s (default 60)"
    )
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="score on a Ray cluster: auto (`ray start --head` here), ray://HOST:PORT, or local; needs nasx[ray]",
    )
    p.add_argument(
        "--ray-chunk",
        type=positive_int,
        default=4,
        help="architectures per Ray trial (default 4; with --ray)",
    )
    p.add_argument(
        "--ray-rounds",
        type=positive_int,
        default=4,
        help="with --ray and train:STEPS, accuracy reports per arch for ASHA early stopping (default 4)",
    )
    p.add_argument("--top", type=positive_int, default=5, help="rows of the result table (default 5)")
    p.add_argument(
        "--json", action="store_true", help="print one JSON object (best, costs, score, run_dir, ...)"
    )
    add_latency_argument(p)
    p.set_defaults(run=cmd_search)

    p = sub.add_parser(
        "solve",
        help="DeepMAD's mathematical program (MILP, CBC) for resnet/mobilenet",
        description="Maximize DeepMAD's stage-weighted entropy under the budget and rho <= RHO.",
    )
    p.add_argument("--space", required=True, help="resnet or mobilenet (optionally :VARIANT)")
    p.add_argument("--budget", required=True, type=budget_arg, help="e.g. 4.13G-flops,25.55M-params")
    p.add_argument(
        "--rho",
        type=positive_float,
        help="effectiveness bound rho0 (default 0.3 for resnet, 0.5 for mobilenet)",
    )
    p.add_argument("--bits", type=parse_bits, help="weight bit-widths to choose from (default: 32 only)")
    p.add_argument("--resolution", type=resolution_px, help="input side in px (default: the space's)")
    p.add_argument(
        "--time-limit", type=positive_float, default=60.0, help="solver time limit in s (default 60)"
    )
    p.add_argument("--out", help="also write the result JSON to this file")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_latency_argument(p)
    p.set_defaults(run=cmd_solve)
