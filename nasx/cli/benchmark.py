"""`nasx benchmark nb201`: nasx's proxies and strategies measured against NAS-Bench-201.

Part of the composition root: proxies are computed by nasx on its NB201 supernet at
initialization (`nasx.cli.search.build_evaluator`); the table only supplies the accuracies they
are correlated with, and the simulated training results of the search comparison.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

import search_spaces
from nasx.cli._args import emit_json
from search_spaces import make_space

__all__ = ["add_parsers", "cmd_benchmark_nb201"]

NB201_PAPER_REFERENCE = (
    "NB201 paper (Dong & Yang 2020, Table 5), CIFAR-10 test: REA 93.92±0.30, RS 93.70±0.36 — a "
    "different protocol (12-epoch accuracies, 12,000 s simulated budget), cited for orientation"
)
PUBLISHED_SPEARMAN = {
    "synflow": 0.74,
    "jacob_cov": 0.73,
    "snip": 0.64,
    "grad_norm": 0.64,
    "naswot": 0.78,
    "zen": 0.35,
}
"""NB201 CIFAR-10 Spearman rho in the literature: Abdelfattah et al. 2021 (synflow, jacob_cov, snip,
grad_norm), Mellor et al. 2021 (NASWOT), NAS-Bench-Suite-Zero (Krishnakumar et al. 2022, zen)."""


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


def _proxy_setting(name: str, args: argparse.Namespace) -> dict:
    """What a proxy's score of a cell depends on besides the cell (`ProxyScoreLog`)."""
    from nasx import __version__
    from nasx.proxies import PROXIES as FUNCTIONS

    images = args.proxy_batch or (FUNCTIONS[name].batch_size if name in FUNCTIONS else None)
    return {"data": args.data, "images": images, "seed": args.seed, "nasx": __version__}


def cmd_benchmark_nb201(args: argparse.Namespace) -> int:
    from nasx.bench import nb201 as bench
    from nasx.bench.nb201_table import load_table
    from nasx.cli.search import PROXIES, build_evaluator
    from solvers.evolution import AgingEvolution
    from solvers.random import RandomSearch

    table = load_table(args.table, args.dataset)  # DatasetError -> exit 2 before any JAX work
    space = make_space(f"nb201:{args.dataset}")
    lookup = table.lookup(lambda text: search_spaces.nb201.from_string(text, space))
    out = Path(args.out or f"runs/nb201-{args.dataset}-s{args.seed}").expanduser().resolve()
    report: dict = {
        "run_dir": str(out),
        "table": str(table.path),
        "dataset": args.dataset,
        "search_column": table.search_column,
        "test_column": table.test_column,
        "optimum_test_acc": float(table.test_acc.max()),
    }
    err = Console(stderr=True)
    corr = {}
    if not args.no_proxies:
        archs = bench.sample_archs(space, args.n, args.seed, all_archs=args.all)
        names = args.proxies.split(",") if args.proxies else list(PROXIES)
        cells = [search_spaces.nb201.to_string(a) for a in archs]
        scores = bench.cost_scores(space, archs)
        store = bench.ProxyScoreLog(out / "proxy_scores.jsonl", {n: _proxy_setting(n, args) for n in names})
        pending = [n for n in names if store.missing(cells, n)]  # only these are computed
        todo = [c for c in cells if any(store.missing([c], n) for n in pending)]
        if todo:
            evaluator = build_evaluator(",".join(pending), space, args)
            by_cell = dict(zip(cells, archs, strict=True))
            if len(todo) < len(cells) or len(pending) < len(names):
                err.print(
                    f"resuming from {store.path}: {len(todo):,} cells to score with {', '.join(pending)}"
                )
            with Progress(console=err, disable=args.json) as bar:
                task = bar.add_task(f"scoring {len(todo):,} cells", total=len(todo))
                for start in range(0, len(todo), args.batch_size):
                    part = todo[start : start + args.batch_size]
                    rows = evaluator.evaluate([by_cell[c] for c in part])
                    store.add(part, [{n: row[n] for n in pending} for row in rows])
                    bar.update(task, completed=start + len(part))
        for name in names:
            scores[name] = store.get(cells, name)
        corr = bench.correlations(scores, lookup.test_acc(archs))
        report["proxies"] = {
            "n": len(archs),
            "seed": args.seed,
            "data": args.data,
            "images": args.proxy_batch or "reference batch of each proxy",
            "results": [
                {**c.to_dict(), "published_spearman": PUBLISHED_SPEARMAN.get(c.proxy)} for c in corr.values()
            ],
        }
    curves = {}
    if not args.no_search:
        strategies = {
            "random": RandomSearch(space),
            "aging evolution": AgingEvolution(
                space, population_size=bench.REA_POPULATION_SIZE, sample_size=bench.REA_SAMPLE_SIZE
            ),
        }
        with Progress(console=err, disable=args.json) as bar:
            task = bar.add_task("simulated search", total=len(strategies))
            for name, strategy in strategies.items():
                curves[name] = bench.simulate_search(
                    strategy, lookup, args.queries, range(args.seeds), args.batch, name=name
                )
                bar.advance(task)
        report["search"] = {
            "population_size": bench.REA_POPULATION_SIZE,
            "sample_size": bench.REA_SAMPLE_SIZE,
            "seeds": args.seeds,
            "results": [c.to_dict() for c in curves.values()],
            "reference": NB201_PAPER_REFERENCE if args.dataset == "cifar10" else None,
        }
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    if args.json:
        emit_json(report)
        return 0
    console = Console()
    console.print(f"[dim]scores and report in {out}[/dim]")
    if corr:
        t = Table(
            title=f"NB201 {args.dataset}: proxy rank correlation with {table.test_column} "
            f"over {report['proxies']['n']:,} cells (seed {args.seed})",
            caption="params, macs: nasx analytic costs (baselines); failed = NaN/±inf scores (NaN and -inf rank lowest); "
            "published: CIFAR-10 Spearman in the zero-cost-proxy literature",
        )
        for col in ("proxy", "Spearman ρ", "Kendall τ-b", "failed", "published ρ"):
            t.add_column(col, justify="left" if col == "proxy" else "right")
        for c in corr.values():
            published = PUBLISHED_SPEARMAN.get(c.proxy)
            t.add_row(
                c.proxy,
                f"{c.spearman:.3f}",
                f"{c.kendall:.3f}",
                str(c.failed),
                "" if published is None else f"{published:.2f}",
            )
        console.print(t)
    if curves:
        t = Table(
            title=f"NB201 {args.dataset}: best {table.test_column} (%) after N queries, mean ± std over {args.seeds} seeds",
            caption=f"searched on {table.search_column}; the best-by-search cell is reported by its test accuracy; "
            f"benchmark optimum {report['optimum_test_acc']:.2f}; REA population {bench.REA_POPULATION_SIZE}, "
            f"sample {bench.REA_SAMPLE_SIZE}"
            + (f"\n{NB201_PAPER_REFERENCE}" if args.dataset == "cifar10" else ""),
        )
        t.add_column("strategy")
        for q in args.queries:
            t.add_column(f"{q} queries", justify="right")
        for name, c in curves.items():
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
    q.add_argument("--dataset", choices=("cifar10", "cifar100", "imagenet16-120"), default="cifar10")
    q.add_argument(
        "-n", type=int, default=1000, help="cells sampled for the proxy correlations (default 1000)"
    )
    q.add_argument("--all", action="store_true", help="score all 15,625 cells instead of a sample")
    q.add_argument("--seed", type=int, default=0, help="seed of the cell sample and proxy batch (default 0)")
    q.add_argument(
        "--data", default="digits", help="images for the proxies (default digits; cifar10:PATH ...)"
    )
    q.add_argument("--proxies", help="comma-separated proxies to score (default: all)")
    q.add_argument(
        "--proxy-batch", type=int, help="images per proxy evaluation (default: each proxy's reference batch)"
    )
    q.add_argument(
        "--batch-size",
        type=int,
        default=32,
        help="cells per compiled proxy call, and per write to the score log (default 32)",
    )
    q.add_argument("--queries", type=_queries, default=(50, 100, 200, 300), help="default 50,100,200,300")
    q.add_argument(
        "--seeds", type=int, default=20, help="search runs per strategy, seeds 0..N-1 (default 20)"
    )
    q.add_argument("--batch", type=int, default=1, help="cells asked per step in the search (default 1)")
    q.add_argument("--no-proxies", action="store_true", help="skip the proxy correlations")
    q.add_argument("--no-search", action="store_true", help="skip the simulated search")
    q.add_argument(
        "--out",
        help="run folder: proxy scores are appended to OUT/proxy_scores.jsonl as they are computed "
        "(a killed run resumes from them), the report is written to OUT/report.json "
        "(default: runs/nb201-DATASET-sSEED)",
    )
    q.add_argument("--json", action="store_true", help="print the tables as JSON")
    q.set_defaults(run=cmd_benchmark_nb201, width_mult=None, resolution=None, rho=0.3)
