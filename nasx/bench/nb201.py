"""NAS-Bench-201 benchmark: how well nasx's proxies rank cells, and how well its strategies search.

Two measurements against the trained accuracies of the NB201 table (`nasx.bench.nb201_table`):

* **Proxy quality**: Spearman's rho and Kendall's tau-b between each proxy's scores (computed by
  nasx, never read from the table) and the table's test accuracy, over a deterministic sample of
  distinct cells (`sample_archs`). A proxy that failed on a cell (NaN) ranks it lowest.
* **Search quality**: the standard NAS-Bench protocol, with the table as the simulated training
  run. Each query asks a strategy for one cell and tells it the cell's accuracy; after 50, 100,
  200 and 300 queries, the best cell so far (by the accuracy the strategy was told, validation
  where the table has it) is reported by its test accuracy. Mean and std over 20 seeds.

Everything here is a pure function returning data; nothing is printed. The search space, the
arch-string parser and the strategies are passed in (this module imports no ``search_spaces`` and
no strategy, only their protocol `solvers.strategy.Strategy`; the CLI wires them). Rank
correlations come from `nasx.stats`; proxy scores are kept in `nasx.bench.score_log`.

Aging evolution on NB201 is run as in the NB201/NATS-Bench scripts (D-X-Y/AutoDL-Projects,
``exps/algos-v2/REA.py``): population 10, tournament size 3 (`REA_POPULATION_SIZE`,
`REA_SAMPLE_SIZE`). Unlike those scripts, where a query is a unit of simulated training time
(12-epoch accuracies, a 12,000 s budget), a query here is one distinct cell with its 200-epoch
accuracy; nasx strategies never ask a cell twice.

References:
  Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture Search",
  ICLR 2020.
  Real, Aggarwal, Huang & Le, "Regularized Evolution for Image Classifier Architecture Search",
  AAAI 2019.
  Abdelfattah, Mehrotra, Dudziak & Lane, "Zero-Cost Proxies for Lightweight NAS", ICLR 2021
  (the correlation protocol).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasx.space import Arch, SearchSpace
from nasx.stats import kendall_tau_b, spearman
from solvers.strategy import Strategy

__all__ = [
    "QUERIES",
    "SEEDS",
    "REA_POPULATION_SIZE",
    "REA_SAMPLE_SIZE",
    "SearchCurve",
    "simulate_search",
    "Correlation",
    "correlations",
    "sample_archs",
    "enumerate_archs",
    "cost_scores",
]

QUERIES = (50, 100, 200, 300)
SEEDS = tuple(range(20))
REA_POPULATION_SIZE = 10
"""Aging evolution's population on NB201, as in the NB201/NATS-Bench REA scripts."""
REA_SAMPLE_SIZE = 3
"""Aging evolution's tournament size on NB201, as in the NB201/NATS-Bench REA scripts."""
ENUMERATE_LIMIT = 1_000_000
"""Largest space `enumerate_archs` walks (NB201 has 15,625 cells)."""


Evaluate = Callable[[Arch], tuple[float, float]]
"""Simulated training: arch -> (accuracy the strategy is told, test accuracy reported)."""


# --- search quality ---------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class SearchCurve:
    """Best test accuracy found by one strategy after each number of queries, for every seed.

    Attributes:
      strategy: the strategy's name.
      queries: numbers of queries at which the best so far is read, ascending.
      seeds: the seeds run.
      best_test: (seeds, queries) test accuracy of the best-by-told-accuracy cell so far.
      best_told: (seeds, queries) the told accuracy of that cell.
    """

    strategy: str
    queries: tuple[int, ...]
    seeds: tuple[int, ...]
    best_test: np.ndarray
    best_told: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        """Mean over seeds of the best test accuracy, one value per entry of `queries`."""
        return self.best_test.mean(axis=0)

    @property
    def std(self) -> np.ndarray:
        """Standard deviation over seeds (population std, ddof=0, as numpy computes it)."""
        return self.best_test.std(axis=0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "queries": list(self.queries),
            "seeds": list(self.seeds),
            "mean_test_acc": self.mean.tolist(),
            "std_test_acc": self.std.tolist(),
            "mean_told_acc": self.best_told.mean(axis=0).tolist(),
            "best_test_acc": self.best_test.tolist(),
        }


def simulate_search(
    strategy: Strategy,
    evaluate: Evaluate,
    queries: Sequence[int] = QUERIES,
    seeds: Iterable[int] = SEEDS,
    batch: int = 1,
    name: str = "",
) -> SearchCurve:
    """Run `strategy` once per seed against a table and record the best cell after each budget.

    Args:
      strategy: a pure ask/tell strategy maximizing the told value (a value: it holds only
        configuration, so one object serves every seed).
      evaluate: simulated training, e.g. an `nasx.bench.nb201_table.Nb201Lookup`.
      queries: numbers of queries (cells asked and told) at which the best so far is read.
      seeds: one run per seed (`strategy.init(seed)`).
      batch: cells asked (and then told) at a time; 1 is the sequential protocol.
      name: the strategy's name in the result (default: its class name).

    Returns:
      The best test accuracy at each budget for each seed. "Best" is judged by the told value
      (the first of equals); the test accuracy of that cell is what is reported.
    """
    budgets = tuple(sorted({int(q) for q in queries}))
    if not budgets or budgets[0] < 1:
        raise ValueError(f"queries must be positive numbers of queries, got {list(queries)}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    seeds = tuple(seeds)
    best_test = np.empty((len(seeds), len(budgets)))
    best_told = np.empty((len(seeds), len(budgets)))
    for s, seed in enumerate(seeds):
        state = strategy.init(seed)
        told, top_told, top_test, k = 0, -math.inf, math.nan, 0
        while told < budgets[-1]:
            archs, state = strategy.ask(state, min(batch, budgets[-1] - told))
            results = [evaluate(a) for a in archs]
            state = strategy.tell(state, archs, [r[0] for r in results])
            for value, test in results:
                told += 1
                if value > top_told:
                    top_told, top_test = value, test
                if told == budgets[k]:
                    best_test[s, k], best_told[s, k] = top_test, top_told
                    k += 1
    return SearchCurve(name or type(strategy).__name__, budgets, seeds, best_test, best_told)


# --- proxy quality ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Correlation:
    """Rank correlation of one proxy's scores with accuracy.

    Attributes:
      proxy: the proxy's name.
      n: number of cells.
      spearman: Spearman's rho (Pearson correlation of average ranks); NaN if either is constant.
      kendall: Kendall's tau-b (ties corrected, as scipy's default); NaN if either is constant.
      failed: cells whose score was NaN or infinite (NaN ranks lowest, infinities keep order).
    """

    proxy: str
    n: int
    spearman: float
    kendall: float
    failed: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "proxy": self.proxy,
            "n": self.n,
            "spearman": self.spearman,
            "kendall": self.kendall,
            "failed": self.failed,
        }


def correlations(scores: Mapping[str, np.ndarray], accuracies: np.ndarray) -> dict[str, Correlation]:
    """Spearman and Kendall tau-b of each proxy's scores with `accuracies` (same cells, same order).

    A score that is NaN (the proxy failed) ranks below every other, tied with the other failures;
    -inf and +inf keep their order. Accuracies must all be finite.

    Raises:
      ValueError: a score vector's length differs from the accuracies', or an accuracy is not finite.
    """
    acc = np.asarray(accuracies, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(acc)):
        raise ValueError(f"accuracies: {int((~np.isfinite(acc)).sum())} are not finite")
    out = {}
    for name, values in scores.items():
        x = np.asarray(values, dtype=np.float64).reshape(-1)
        if x.shape != acc.shape:
            raise ValueError(f'proxy "{name}": {x.size} scores for {acc.size} accuracies')
        failed = int((~np.isfinite(x)).sum())
        rho = spearman(x, acc, nan_policy="lowest")
        tau = kendall_tau_b(x, acc, nan_policy="lowest")
        out[name] = Correlation(name, int(acc.size), rho, tau, failed)
    return out


# --- samples of cells -------------------------------------------------------------------------
def enumerate_archs(space: SearchSpace, limit: int = ENUMERATE_LIMIT) -> list[Arch]:
    """Every architecture of `space` once (canonical forms), in a fixed order.

    Raises:
      ValueError: the space has more than `limit` architectures.
    """
    if space.size() > limit:
        raise ValueError(
            f"{space.name}: {space.size():,} architectures are too many to enumerate (> {limit:,})"
        )
    partial: list[dict] = [{}]
    for choice in space.choices:
        grown = []
        for values in partial:
            options = space.options(choice, values)
            if not options:  # inactive given the choices before it
                grown.append(values)
            grown.extend({**values, choice.name: o} for o in options)
        partial = grown
    return list(dict.fromkeys(space.canonical(Arch(values)) for values in partial))


def sample_archs(space: SearchSpace, n: int, seed: int, all_archs: bool = False) -> list[Arch]:
    """`n` distinct architectures drawn uniformly without replacement, the same for the same seed.

    A larger `n` extends the sample of a smaller one (a prefix of one seeded permutation), so
    scores kept from a smaller run are reused.

    Args:
      space: the search space.
      n: how many (all of them if the space has fewer).
      seed: seeds ``np.random.default_rng``.
      all_archs: return every architecture instead, in `enumerate_archs` order (NB201: 15,625).
    """
    if all_archs:
        return enumerate_archs(space)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    if space.size() <= ENUMERATE_LIMIT:
        every = enumerate_archs(space)
        if n >= len(every):
            return every
        return [every[i] for i in rng.permutation(len(every))[:n]]
    found: dict[Arch, None] = {}
    for _ in range(100 * n):  # a huge space: collisions are rare, the bound is never reached
        if len(found) == n:
            break
        found[space.sample(rng)] = None
    return list(found)


def cost_scores(space: SearchSpace, archs: Sequence[Arch]) -> dict[str, np.ndarray]:
    """Analytic baselines to compare proxies with: params and MACs of each cell (from nasx.costs)."""
    costs = [space.costs(a) for a in archs]
    return {
        "params": np.array([c.params for c in costs], dtype=np.float64),
        "macs": np.array([c.macs for c in costs], dtype=np.float64),
    }
