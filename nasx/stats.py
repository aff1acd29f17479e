"""Rank correlations and percentage errors: how well one ranking (a proxy, a latency model)
matches measured values. Built on `scipy.stats`; this module imports no JAX.

Every function returns NaN when the measure is undefined: fewer than two values, or a constant
vector (no ranking to compare). What a NaN *inside* the data means is the caller's policy, given
by ``nan_policy``:

* ``"propagate"`` (default): a NaN anywhere makes the result NaN (nothing is hidden).
* ``"lowest"``: a NaN is a failed measurement that ranks below every other value, tied with the
  other failures (a proxy that failed on a cell); -inf and +inf keep their order.
* ``"omit"``: pairs where either value is not finite (NaN, -inf, +inf) are left out.

scipy is imported when a function is first called (it takes about a second), so importing this
module stays cheap for the commands that never correlate anything.

References:
  Spearman, "The proof and measurement of association between two things", 1904.
  Kendall, "The treatment of ties in ranking problems", Biometrika 1945 (tau-b).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

__all__ = ["NanPolicy", "spearman", "kendall_tau_b", "mape_percent"]

NanPolicy = Literal["propagate", "lowest", "omit"]
"""What a NaN in the data means: the result is NaN, it ranks lowest, or its pair is left out."""

Values = Sequence[float] | np.ndarray


def _pair(x: Values, y: Values, nan_policy: NanPolicy) -> tuple[np.ndarray, np.ndarray] | None:
    """`x` and `y` as float vectors under `nan_policy`; None if the correlation is undefined."""
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    b = np.asarray(y, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"rank correlation of {a.size} values with {b.size} values")
    if nan_policy == "lowest":
        a, b = np.where(np.isnan(a), -np.inf, a), np.where(np.isnan(b), -np.inf, b)
    elif nan_policy == "omit":
        keep = np.isfinite(a) & np.isfinite(b)
        a, b = a[keep], b[keep]
    elif nan_policy != "propagate":
        raise ValueError(f'nan_policy "{nan_policy}": expected "propagate", "lowest" or "omit"')
    elif np.isnan(a).any() or np.isnan(b).any():
        return None
    if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return None
    return a, b


def spearman(x: Values, y: Values, *, nan_policy: NanPolicy = "propagate") -> float:
    """Spearman's rho of two equal-length vectors: the Pearson correlation of their average ranks.

    NaN if it is undefined (fewer than two values, a constant vector) or, under
    ``nan_policy="propagate"``, if either vector holds a NaN.
    """
    from scipy import stats

    pair = _pair(x, y, nan_policy)
    if pair is None:
        return math.nan
    return float(stats.spearmanr(*pair).statistic)


def kendall_tau_b(x: Values, y: Values, *, nan_policy: NanPolicy = "propagate") -> float:
    """Kendall's tau-b (ties corrected) of two equal-length vectors; NaN as for `spearman`."""
    from scipy import stats

    pair = _pair(x, y, nan_policy)
    if pair is None:
        return math.nan
    return float(stats.kendalltau(*pair, variant="b").statistic)


def mape_percent(predicted: Values, measured: Values) -> float:
    """Mean absolute percentage error of `predicted` against `measured` (nonzero), in %."""
    p, m = np.asarray(predicted, np.float64), np.asarray(measured, np.float64)
    return float(100.0 * np.mean(np.abs(p - m) / m))
