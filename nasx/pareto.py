"""Pareto analysis: non-dominated sorting, crowding distance and hypervolume.

Objectives come with their directions (maximize accuracy, minimize MACs, params, bytes, latency);
internally every objective is turned into one to minimize. A failed evaluation (None, NaN, inf)
never sits on a front with finite points: it ranks after all of them.

References:
  Deb, Pratap, Agarwal & Meyarivan, "A Fast and Elitist Multiobjective Genetic Algorithm:
  NSGA-II", IEEE Transactions on Evolutionary Computation 6(2), 2002.
  While, Hingston, Barone & Huband, "A faster algorithm for calculating hypervolume", IEEE
  Transactions on Evolutionary Computation 10(1), 2006 (hypervolume by slicing objectives).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["pareto_front", "non_dominated_sort", "crowding_distance", "hypervolume"]

Points = Sequence[Sequence[float | None]] | np.ndarray


# --- Pareto primitives ------------------------------------------------------------------------
def _minimization(points: Points, maximize: bool | Sequence[bool]) -> np.ndarray:
    """`points` as a float (n, m) array to minimize; failed values (None, NaN, inf) become +inf."""
    rows = [[np.nan if v is None else float(v) for v in p] for p in points]
    m = len(rows[0]) if rows else int(np.size(maximize))
    f = np.array(rows, dtype=float).reshape(len(rows), m)
    flags = np.asarray(maximize, dtype=bool)
    if flags.ndim and flags.shape != (m,):
        raise ValueError(f"maximize has {flags.size} flags but the points have {m} objectives")
    f = np.where(np.broadcast_to(flags, (m,)), -f, f)
    return np.where(np.isfinite(f), f, np.inf)


def _non_dominated(f: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The rows of `order` (lexicographically sorted) that no other row of `order` dominates.

    A row can only be dominated by one before it in lexicographic order, and domination is
    transitive, so comparing against the front found so far is enough.
    """
    front: list[int] = []
    for i in order:
        if front:
            g = f[front]
            if np.any(np.all(g <= f[i], axis=1) & np.any(g < f[i], axis=1)):
                continue
        front.append(int(i))
    return np.array(front, dtype=np.int64)


def _fronts(f: np.ndarray) -> list[np.ndarray]:
    """Non-dominated fronts of a minimization array; rows with a failed value come last."""
    order = np.lexsort(f.T[::-1]) if f.size else np.arange(len(f))
    failed = ~np.all(np.isfinite(f), axis=1)
    fronts = []
    for remaining in (order[~failed[order]], order[failed[order]]):
        while remaining.size:
            front = _non_dominated(f, remaining)
            fronts.append(np.sort(front))
            remaining = remaining[~np.isin(remaining, front)]
    return fronts


def _crowding(f: np.ndarray) -> np.ndarray:
    """Crowding distance of each row of one front (Deb et al. 2002, Sec. III-B)."""
    n, m = f.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        column = f[:, j]
        if not np.all(np.isfinite(column)):
            continue
        order = np.argsort(column, kind="stable")
        lo, hi = column[order[0]], column[order[-1]]
        distance[order[0]] = distance[order[-1]] = np.inf
        if hi > lo:
            distance[order[1:-1]] += (column[order[2:]] - column[order[:-2]]) / (hi - lo)
    return distance


def pareto_front(points: Points, maximize: bool | Sequence[bool] = True) -> np.ndarray:
    """Indices (ascending) of the points no other point dominates; failed points never qualify.

    Args:
      points: (n, m) objective values; None, NaN or inf marks a failed evaluation.
      maximize: one flag for all objectives or one per objective, e.g. ``(True, False, False)``
        for (accuracy, MACs, weight bytes).
    """
    f = _minimization(points, maximize)
    valid = np.flatnonzero(np.all(np.isfinite(f), axis=1))
    order = valid[np.lexsort(f[valid].T[::-1])] if valid.size else valid
    return np.sort(_non_dominated(f, order))


def non_dominated_sort(points: Points, maximize: bool | Sequence[bool] = True) -> list[np.ndarray]:
    """Fronts of indices, best first (Deb et al. 2002); points with a failed value come last."""
    return _fronts(_minimization(points, maximize))


def crowding_distance(points: Points, maximize: bool | Sequence[bool] = True) -> np.ndarray:
    """Crowding distance of each point of one front; the extremes of every objective get inf."""
    return _crowding(_minimization(points, maximize))


def hypervolume(points: Points, reference: Sequence[float], maximize: bool | Sequence[bool] = True) -> float:
    """Volume dominated by `points` and bounded by `reference` (in the objectives' own units).

    Points that do not strictly improve on `reference` in every objective contribute nothing;
    failed points are ignored. Exact, by slicing along the first objective (HSO); fine for the
    fronts of a search (up to a few hundred points, a handful of objectives).

    Args:
      points: (n, m) objective values.
      reference: the worst acceptable value of each objective, e.g. (0.0 accuracy, 600e6 MACs).
      maximize: one flag for all objectives or one per objective.
    """
    f = _minimization(points, maximize)
    ref = _minimization([list(reference)], maximize)[0]
    if f.shape[1] != ref.shape[0]:
        raise ValueError(f"reference has {ref.shape[0]} values but the points have {f.shape[1]} objectives")
    f = f[np.all(f < ref, axis=1)]
    return _slice_volume(f, ref)


def _slice_volume(f: np.ndarray, ref: np.ndarray) -> float:
    if len(f) == 0:
        return 0.0
    if f.shape[1] == 1:
        return float(ref[0] - f[:, 0].min())
    f = f[_non_dominated(f, np.lexsort(f.T[::-1]))]
    order = np.argsort(f[:, 0], kind="stable")
    f = f[order]
    volume = 0.0
    for i in range(len(f)):
        upper = f[i + 1, 0] if i + 1 < len(f) else ref[0]
        if upper > f[i, 0]:
            volume += (upper - f[i, 0]) * _slice_volume(f[: i + 1, 1:], ref[1:])
    return volume
