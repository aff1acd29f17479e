"""nasx's proxies and strategies measured against NAS-Bench-201 (`nasx benchmark nb201` as a call).

Proxies are computed by nasx on its NB201 supernet at initialization (`nasx.jobs.evaluators`);
the table only supplies the accuracies they are correlated with, and the simulated training
results of the search comparison (`nasx.bench.nb201`)::

    from nasx.jobs.benchmark import Nb201Request, benchmark_nb201

    result = benchmark_nb201(Nb201Request(table="data/nb201", n=200, proxies=("synflow",), seeds=5))
    result.report["proxies"]["results"][0]["spearman"]
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import search_spaces
from nasx import outputs
from nasx.jobs.evaluators import EvaluatorSettings, build_evaluator
from nasx.space import SearchSpace
from search_spaces import make_space

if TYPE_CHECKING:
    from nasx.bench.nb201_table import Nb201Lookup, Nb201Table

__all__ = [
    "DATASETS",
    "NB201_PAPER_REFERENCE",
    "PUBLISHED_SPEARMAN",
    "Nb201Request",
    "Nb201Benchmark",
    "Stage",
    "benchmark_nb201",
]

DATASETS = ("cifar10", "cifar100", "imagenet16-120")
"""The NB201 table's datasets (the ``nb201`` family's variants)."""

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

Stage = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]
"""``stage(description, total)``: a context around a stage of `total` steps, yielding
``done(completed)`` to report progress (the CLI draws a progress bar)."""


@dataclass(frozen=True)
class Nb201Request:
    """What to measure (the flags of ``nasx benchmark nb201``).

    Attributes:
      table: folder holding ``nb201.csv``, or a CSV with the same columns.
      dataset: one of `DATASETS`.
      n: cells sampled for the proxy correlations.
      all_cells: score all 15,625 cells instead of a sample.
      seed: seed of the cell sample and the proxy batch.
      data: images for the proxies (``digits``, ``cifar10:PATH``, ...).
      proxies: proxies to score (``None``: all).
      proxy_batch: images per proxy evaluation (``None``: each proxy's reference batch).
      batch_size: cells per compiled proxy call, and per write to the score log.
      queries: the numbers of queries the search curves report.
      seeds: search runs per strategy, seeds ``0..seeds-1``.
      batch: cells asked per step in the search.
      correlate: measure the proxy correlations.
      search: run the simulated search.
      out: run folder (``proxy_scores.jsonl``, ``report.json``); ``None``: ``runs/nb201-DATASET-sSEED``.
    """

    table: str | Path
    dataset: str = "cifar10"
    n: int = 1000
    all_cells: bool = False
    seed: int = 0
    data: str = "digits"
    proxies: tuple[str, ...] | None = None
    proxy_batch: int | None = None
    batch_size: int = 32
    queries: tuple[int, ...] = (50, 100, 200, 300)
    seeds: int = 20
    batch: int = 1
    correlate: bool = True
    search: bool = True
    out: str | Path | None = None


@dataclass(frozen=True)
class Nb201Benchmark:
    """What `benchmark_nb201` returns.

    Attributes:
      out: the run folder.
      report: what ``report.json`` holds.
      correlations: proxy name -> `nasx.bench.nb201.Correlation` (empty without `correlate`).
      curves: strategy name -> `nasx.bench.nb201.SearchCurve` (empty without `search`).
    """

    out: Path
    report: Mapping[str, Any]
    correlations: Mapping[str, Any]
    curves: Mapping[str, Any]


@contextlib.contextmanager
def _silent(description: str, total: int) -> Iterator[Callable[[int], None]]:
    yield lambda completed: None


def _proxy_setting(name: str, request: Nb201Request) -> dict:
    """What a proxy's score of a cell depends on besides the cell (`ProxyScoreLog`)."""
    from nasx.proxies import PROXIES as FUNCTIONS
    from nasx.version import __version__

    images = request.proxy_batch or (FUNCTIONS[name].batch_size if name in FUNCTIONS else None)
    return {"data": request.data, "images": images, "seed": request.seed, "nasx": __version__}


def benchmark_nb201(
    request: Nb201Request,
    *,
    stage: Stage = _silent,
    on_note: Callable[[str], None] | None = None,
) -> Nb201Benchmark:
    """Proxy quality (Spearman/Kendall with the table's test accuracy) and search quality (random
    vs aging evolution, the table as simulated training); writes ``OUT/report.json``.

    Proxy scores are appended to ``OUT/proxy_scores.jsonl`` as they are computed, and a rerun
    computes only the missing ones.

    Args:
      request: what to measure.
      stage: progress of the scoring and of the simulated search (see `Stage`).
      on_note: called with a one-line message (resuming from the score log).

    Raises:
      DatasetError: the table cannot be read or lacks the dataset's columns.
      UnknownEvaluatorError: an unknown proxy.
      RunFolderError: `request.out` cannot be written or holds something else (checked before any
        scoring); OutputBusyError: another process is writing it.
    """
    from nasx.bench.nb201_table import load_table

    nb201 = search_spaces.nb201
    table = load_table(request.table, request.dataset)  # DatasetError before any JAX work
    space = make_space(f"nb201:{request.dataset}")
    lookup = table.lookup(lambda text: nb201.from_string(text, space))
    out = Path(request.out or f"runs/nb201-{request.dataset}-s{request.seed}")
    with outputs.claim(out, "benchmark") as out:
        return _benchmark(request, table, space, lookup, out, stage, on_note)


def _benchmark(
    request: Nb201Request,
    table: Nb201Table,
    space: SearchSpace,
    lookup: Nb201Lookup,
    out: Path,
    stage: Stage,
    on_note: Callable[[str], None] | None,
) -> Nb201Benchmark:
    from nasx.bench import nb201 as bench
    from nasx.bench.score_log import ProxyScoreLog
    from nasx.evaluators import PROXY_NAMES
    from solvers.evolution import AgingEvolution
    from solvers.random import RandomSearch

    nb201 = search_spaces.nb201
    report: dict = {
        "run_dir": str(out),
        "table": str(table.path),
        "dataset": request.dataset,
        "search_column": table.search_column,
        "test_column": table.test_column,
        "optimum_test_acc": float(table.test_acc.max()),
    }
    corr = {}
    if request.correlate:
        archs = bench.sample_archs(space, request.n, request.seed, all_archs=request.all_cells)
        names = list(request.proxies) if request.proxies else list(PROXY_NAMES)
        cells = [nb201.to_string(a) for a in archs]
        scores = bench.cost_scores(space, archs)
        store = ProxyScoreLog(out / "proxy_scores.jsonl", {n: _proxy_setting(n, request) for n in names})
        pending = [n for n in names if store.missing(cells, n)]  # only these are computed
        todo = [c for c in cells if any(store.missing([c], n) for n in pending)]
        if todo:
            settings = EvaluatorSettings(
                data=request.data,
                seed=request.seed,
                batch_size=request.batch_size,
                proxy_batch=request.proxy_batch,
            )
            evaluator = build_evaluator(",".join(pending), space, settings)
            by_cell = dict(zip(cells, archs, strict=True))
            if (len(todo) < len(cells) or len(pending) < len(names)) and on_note is not None:
                on_note(f"resuming from {store.path}: {len(todo):,} cells to score with {', '.join(pending)}")
            with stage(f"scoring {len(todo):,} cells", len(todo)) as done:
                for start in range(0, len(todo), request.batch_size):
                    part = todo[start : start + request.batch_size]
                    rows = evaluator.evaluate([by_cell[c] for c in part])
                    store.add(part, [{n: row[n] for n in pending} for row in rows])
                    done(start + len(part))
        for name in names:
            scores[name] = store.get(cells, name)
        corr = bench.correlations(scores, lookup.test_acc(archs))
        report["proxies"] = {
            "n": len(archs),
            "seed": request.seed,
            "data": request.data,
            "images": request.proxy_batch or "reference batch of each proxy",
            "results": [
                {**c.to_dict(), "published_spearman": PUBLISHED_SPEARMAN.get(c.proxy)} for c in corr.values()
            ],
        }
    curves = {}
    if request.search:
        strategies = {
            "random": RandomSearch(space),
            "aging evolution": AgingEvolution(
                space, population_size=bench.REA_POPULATION_SIZE, sample_size=bench.REA_SAMPLE_SIZE
            ),
        }
        with stage("simulated search", len(strategies)) as done:
            for i, (name, strategy) in enumerate(strategies.items(), 1):
                curves[name] = bench.simulate_search(
                    strategy, lookup, request.queries, range(request.seeds), request.batch, name=name
                )
                done(i)
        report["search"] = {
            "population_size": bench.REA_POPULATION_SIZE,
            "sample_size": bench.REA_SAMPLE_SIZE,
            "seeds": request.seeds,
            "results": [c.to_dict() for c in curves.values()],
            "reference": NB201_PAPER_REFERENCE if request.dataset == "cifar10" else None,
        }
    outputs.write_json(out / "report.json", report)
    return Nb201Benchmark(out, report, corr, curves)
