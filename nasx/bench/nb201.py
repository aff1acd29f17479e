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
arch-string parser and the strategies are passed in (this module imports neither
``search_spaces`` nor ``solvers``; the CLI wires them).

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
  Knight, "A Computer Method for Calculating Kendall's Tau with Ungrouped Data", JASA 1966.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from nasx.errors import NasxError
from nasx.runlog import cut_torn_tail
from nasx.space import Arch, SearchSpace

__all__ = [
    "QUERIES",
    "SEEDS",
    "REA_POPULATION_SIZE",
    "REA_SAMPLE_SIZE",
    "Strategy",
    "SearchCurve",
    "simulate_search",
    "compare_searches",
    "Correlation",
    "correlations",
    "spearman",
    "kendall_tau_b",
    "sample_archs",
    "enumerate_archs",
    "cost_scores",
    "ProxyScoreLog",
    "ScoreLogError",
]

QUERIES = (50, 100, 200, 300)
SEEDS = tuple(range(20))
REA_POPULATION_SIZE = 10
"""Aging evolution's population on NB201, as in the NB201/NATS-Bench REA scripts."""
REA_SAMPLE_SIZE = 3
"""Aging evolution's tournament size on NB201, as in the NB201/NATS-Bench REA scripts."""
ENUMERATE_LIMIT = 1_000_000
"""Largest space `enumerate_archs` walks (NB201 has 15,625 cells)."""


class Strategy(Protocol):
    """A pure ask/tell search strategy (DESIGN.md, decision 5), e.g. ``solvers.random.RandomSearch``."""

    def init(self, seed: int) -> Any: ...
    def ask(self, state: Any, n: int = 1) -> tuple[list[Arch], Any]: ...
    def tell(self, state: Any, archs: Sequence[Arch], objectives: Sequence[float]) -> Any: ...


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


def compare_searches(
    strategies: Mapping[str, Strategy],
    evaluate: Evaluate,
    queries: Sequence[int] = QUERIES,
    seeds: Iterable[int] = SEEDS,
    batch: int = 1,
) -> dict[str, SearchCurve]:
    """`simulate_search` for each named strategy, on the same seeds and budgets."""
    seeds = tuple(seeds)
    return {
        name: simulate_search(strategy, evaluate, queries, seeds, batch, name=name)
        for name, strategy in strategies.items()
    }


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


def _clean(scores: np.ndarray) -> np.ndarray:
    """NaN -> -inf, so a failed score ties with every other failure below every real one."""
    x = np.asarray(scores, dtype=np.float64).reshape(-1)
    return np.where(np.isnan(x), -np.inf, x)


def _tie_groups(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorting order, dense rank of each sorted element, start of each tie group in that order)."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    new = np.empty(len(x), dtype=bool)
    new[:1] = True
    new[1:] = xs[1:] != xs[:-1]
    return order, np.cumsum(new) - 1, np.flatnonzero(new)


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order, dense, starts = _tie_groups(x)
    ends = np.append(starts[1:], len(x))
    ranks = np.empty(len(x))
    ranks[order] = ((starts + ends - 1) / 2 + 1)[dense]
    return ranks


def _dense_ranks(x: np.ndarray) -> np.ndarray:
    order, dense, _ = _tie_groups(x)
    out = np.empty(len(x), dtype=np.int64)
    out[order] = dense
    return out


def _tied_pairs(labels: np.ndarray) -> int:
    counts = np.unique(labels, return_counts=True)[1].astype(np.int64)
    return int((counts * (counts - 1) // 2).sum())


def _inversions(a: np.ndarray) -> int:
    """Pairs i < j with a[i] > a[j] (ties are not inversions), by bottom-up merge sort: O(n log² n).

    At each level, blocks of `width` are sorted; each element of a right block is counted against
    the larger elements of its left partner with one `searchsorted` over all left blocks at once.
    """
    a = np.asarray(a, dtype=np.int64)
    n = len(a)
    if n < 2:
        return 0
    span = int(a.max()) + 1  # a holds dense ranks 0..span-1
    position = np.arange(n)
    total, width = 0, 1
    while width < n:
        block = position // width
        pair = block // 2
        right = block % 2 == 1
        key = pair * span + a  # sorted within blocks; left blocks concatenated are sorted too
        left_keys = key[~right]
        not_above = np.searchsorted(left_keys, key[right], side="right")
        block_end = np.searchsorted(left_keys, (pair[right] + 1) * span, side="left")
        total += int((block_end - not_above).sum())
        a = np.sort(key) % span
        width *= 2
    return total


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho of two equal-length vectors (NaN in `x` or `y` ranks lowest)."""
    rx, ry = _average_ranks(_clean(x)), _average_ranks(_clean(y))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float((rx * rx).sum()) * float((ry * ry).sum()))
    return float((rx * ry).sum()) / denominator if denominator > 0 else math.nan


def kendall_tau_b(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b of two equal-length vectors in O(n log² n) (Knight 1966); NaN ranks lowest.

    tau_b = (concordant - discordant) / sqrt((n0 - ties_x) (n0 - ties_y)) with n0 = n (n - 1) / 2.
    After sorting by (x, y), the discordant pairs are exactly the strict inversions of y.
    """
    xd, yd = _dense_ranks(_clean(x)), _dense_ranks(_clean(y))
    n = len(xd)
    n0 = n * (n - 1) // 2
    ties_x, ties_y = _tied_pairs(xd), _tied_pairs(yd)
    ties_xy = _tied_pairs(xd * (int(yd.max(initial=0)) + 1) + yd)
    discordant = _inversions(yd[np.lexsort((yd, xd))])
    denominator = math.sqrt(float(n0 - ties_x) * float(n0 - ties_y))
    if denominator == 0:
        return math.nan
    return (n0 - ties_x - ties_y + ties_xy - 2 * discordant) / denominator


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
        out[name] = Correlation(name, int(acc.size), spearman(x, acc), kendall_tau_b(x, acc), failed)
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


class ScoreLogError(NasxError, ValueError):
    """A proxy score log holds a line, other than its last, that is not a score record."""


class ProxyScoreLog:
    """Proxy scores of cells, appended and flushed as they are computed, so a killed run resumes.

    One JSON line per cell and proxy: ``{"cell": "|nor_conv_3x3~0|+...", "proxy": "snip",
    "score": 1.2, "setting": {...}}``. `setting` holds everything else the proxy's score depends on
    (the images, how many, the seed of the weights, the nasx version); a line is reused only under
    the same setting.
    NaN (a proxy that failed on a cell) is written as JSON's ``NaN``. A torn last line (a kill
    mid-write) is cut off on opening.
    """

    def __init__(self, path: str | Path, settings: Mapping[str, Mapping[str, Any]]) -> None:
        """`settings`: proxy name -> its setting; lines of other proxies or settings are ignored."""
        self.path = Path(path)
        self.settings = json.loads(json.dumps(dict(settings)))  # as they read back from the file
        self.scores: dict[tuple[str, str], float] = {}
        if self.path.exists():
            self._read()

    def _read(self) -> None:
        cut_torn_tail(self.path)
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                record = json.loads(line)
                cell, proxy, score = record["cell"], record["proxy"], float(record["score"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                raise ScoreLogError(  # not a kill mid-write: never cut off what follows
                    f"proxy score log {self.path}, line {number}, is not a score record ({e}); "
                    "repair or delete the file (nothing was changed)"
                ) from None
            if proxy in self.settings and record.get("setting") == self.settings[proxy]:
                self.scores[(cell, proxy)] = score

    def missing(self, cells: Sequence[str], proxy: str) -> list[str]:
        """The cells (of `cells`, in order) with no stored score for `proxy` under its setting."""
        return [c for c in cells if (c, proxy) not in self.scores]

    def add(self, cells: Sequence[str], scores: Sequence[Mapping[str, float]]) -> None:
        """Store one mapping proxy -> score per cell, flushed to disk before returning."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            for cell, row in zip(cells, scores, strict=True):
                for proxy, score in row.items():
                    record = {"cell": cell, "proxy": proxy, "score": float(score)}
                    f.write(json.dumps({**record, "setting": self.settings[proxy]}) + "\n")
                    self.scores[(cell, proxy)] = float(score)
            f.flush()
            os.fsync(f.fileno())

    def get(self, cells: Sequence[str], proxy: str) -> np.ndarray:
        """The stored scores of `cells` for `proxy`, in order (KeyError if one is missing)."""
        return np.array([self.scores[(c, proxy)] for c in cells], dtype=float)
