"""`nasx benchmark nb201`: parse, call `nasx.jobs.benchmark.benchmark_nb201`, print its tables."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from nasx.cli._args import DATA_HELP, emit_json, name_list, positive_int, seed_int
from nasx.jobs.benchmark import (
    DATASETS,
    NB201_PAPER_REFERENCE,
    PUBLISHED_SPEARMAN,
    Nb201Request,
    benchmark_nb201,
)

__all__ = ["add_parsers", "cmd_benchmark_nb201"]


def _queries(text: str) -> tuple[int, ...]:
    try:
        values = tuple(sorted({int(q) for q in text.split(",")}))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'queries "{text}": expected comma-separated integers, e.g. 50,100'
        ) from None
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError(f'queries "{text}": each must be >= 1')
    return values


def cmd_benchmark_nb201(args: argparse.Namespace) -> int:
    from nasx.bench.nb201 import REA_POPULATION_SIZE, REA_SAMPLE_SIZE

    request = Nb201Request(
        table=args.table,
        dataset=args.dataset,
        n=args.n,
        all_cells=args.all,
        seed=args.seed,
        data=args.data,
        proxies=args.proxies,
        proxy_batch=args.proxy_batch,
        batch_size=args.batch_size,
        queries=args.queries,
        seeds=args.seeds,
        batch=args.batch,
        correlate=not args.no_proxies,
        search=not args.no_search,
        out=args.out,
    )
    err = Console(stderr=True)

    @contextlib.contextmanager
    def stage(description: str, total: int) -> Iterator[Callable[[int], None]]:
        with Progress(console=err, disable=args.json) as bar:
            task = bar.add_task(description, total=total)
            yield lambda completed: bar.update(task, completed=completed)

    result = benchmark_nb201(request, stage=stage, on_note=err.print)
    report = result.report
    if args.json:
        emit_json(report)
        return 0
    console = Console()
    console.print(f"[dim]scores and report in {result.out}[/dim]")
    if result.correlations:
        t = Table(
            title=f"NB201 {args.dataset}: proxy rank correlation with {report['test_column']} "
            f"over {report['proxies']['n']:,} cells (seed {args.seed})",
            caption="params, macs: nasx analytic costs (baselines); failed = NaN/±inf scores (NaN and -inf rank lowest); "
            "published: CIFAR-10 Spearman in the zero-cost-proxy literature",
        )
        for col in ("proxy", "Spearman ρ", "Kendall τ-b", "failed", "published ρ"):
            t.add_column(col, justify="left" if col == "proxy" else "right")
        for c in result.correlations.values():
            published = PUBLISHED_SPEARMAN.get(c.proxy)
            t.add_row(
                c.proxy,
                f"{c.spearman:.3f}",
                f"{c.kendall:.3f}",
                str(c.failed),
                "" if published is None else f"{published:.2f}",
            )
        console.print(t)
    if result.curves:
        t = Table(
            title=f"NB201 {args.dataset}: best {report['test_column']} (%) after N queries, mean ± std over {args.seeds} seeds",
            caption=f"searched on {report['search_column']}; the best-by-search cell is reported by its test accuracy; "
            f"benchmark optimum {report['optimum_test_acc']:.2f}; REA population {REA_POPULATION_SIZE}, "
            f"sample {REA_SAMPLE_SIZE}" + (f"\n{NB201_PAPER_REFERENCE}" if args.dataset == "cifar10" else ""),
        )
        t.add_column("strategy")
        for q in args.queries:
            t.add_column(f"{q} queries", justify="right")
        for name, c in result.curves.items():
            t.add_row(name, *(f"{m:.2f} ± {s:.2f}" for m, s in zip(c.mean, c.std, strict=True)))
        console.print(t)
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("benchmark", help="benchmarks against published ground truth (nb201)")
    bench_sub = p.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    q = bench_sub.add_parser(
        "nb201",
        help="proxy correlations and simulated search on the NAS-Bench-201 table",
        description="Proxy quality (Spearman/Kendall of each nasx proxy, computed on the NB201 supernet, "
        "with the table's test accuracy) and search quality (random vs aging evolution, the table as "
        "simulated training; best test accuracy after N queries over seeds).",
    )
    q.add_argument("--table", required=True, help="folder holding nb201.csv, or a CSV with the same columns")
    q.add_argument("--dataset", choices=DATASETS, default="cifar10")
    q.add_argument(
        "-n", type=positive_int, default=1000, help="cells sampled for the proxy correlations (default 1000)"
    )
    q.add_argument("--all", action="store_true", help="score all 15,625 cells instead of a sample")
    q.add_argument(
        "--seed", type=seed_int, default=0, help="seed of the cell sample and proxy batch (default 0)"
    )
    q.add_argument("--data", default="digits", help="images for the proxies: " + DATA_HELP)
    q.add_argument("--proxies", type=name_list, help="comma-separated proxies to score (default: all)")
    q.add_argument(
        "--proxy-batch",
        type=positive_int,
        help="images per proxy evaluation (default: each proxy's reference batch)",
    )
    q.add_argument(
        "--batch-size",
        type=positive_int,
        default=32,
        help="cells per compiled proxy call, and per write to the score log (default 32)",
    )
    q.add_argument("--queries", type=_queries, default=(50, 100, 200, 300), help="default 50,100,200,300")
    q.add_argument(
        "--seeds", type=positive_int, default=20, help="search runs per strategy, seeds 0..N-1 (default 20)"
    )
    q.add_argument(
        "--batch", type=positive_int, default=1, help="cells asked per step in the search (default 1)"
    )
    skip = q.add_mutually_exclusive_group()  # skipping both would leave nothing to do
    skip.add_argument("--no-proxies", action="store_true", help="skip the proxy correlations")
    skip.add_argument("--no-search", action="store_true", help="skip the simulated search")
    q.add_argument(
        "--out",
        help="run folder: proxy scores are appended to OUT/proxy_scores.jsonl as they are computed "
        "(a killed run resumes from them), the report is written to OUT/report.json "
        "(default: runs/nb201-DATASET-sSEED)",
    )
    q.add_argument("--json", action="store_true", help="print the tables as JSON")
    q.set_defaults(run=cmd_benchmark_nb201)
