"""Rank correlations: each NaN policy as documented, undefined cases NaN, scipy's values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from nasx.stats import kendall_tau_b, mape_percent, spearman


def test_a_nan_propagates_by_default_and_ranks_lowest_when_asked() -> None:
    x, y = [np.nan, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0]
    assert math.isnan(spearman(x, y)) and math.isnan(kendall_tau_b(x, y))
    assert spearman(x, y, nan_policy="lowest") == pytest.approx(1.0)
    assert kendall_tau_b(x, y, nan_policy="lowest") == pytest.approx(1.0)
    kept = [1.0, 3.0, 2.0, 4.0]  # "omit" leaves out the pairs holding a NaN or an infinity
    omitted = spearman([np.nan, *kept, np.inf], [5.0, 1.0, 2.0, 3.0, 4.0, 0.0], nan_policy="omit")
    assert omitted == pytest.approx(scipy.stats.spearmanr(kept, [1.0, 2.0, 3.0, 4.0]).statistic)
    low = [0.0, 1.0, 2.0, -np.inf]  # a NaN ties with -inf, below every finite value
    assert spearman([np.nan, 1.0, 2.0, np.nan], low, nan_policy="lowest") == pytest.approx(
        scipy.stats.spearmanr([-np.inf, 1.0, 2.0, -np.inf], low).statistic
    )


@pytest.mark.parametrize(("x", "y"), [([1.0], [2.0]), ([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]), ([], [])])
def test_undefined_correlations_are_nan(x, y) -> None:
    assert math.isnan(spearman(x, y)) and math.isnan(kendall_tau_b(x, y))


def test_ties_match_scipy_and_lengths_must_agree() -> None:
    x, y = [1, 2, 2, 3, 5, 5], [1, 3, 2, 4, 4, 6]
    assert spearman(x, y) == pytest.approx(scipy.stats.spearmanr(x, y).statistic, rel=1e-12)
    assert kendall_tau_b(x, y) == pytest.approx(scipy.stats.kendalltau(x, y).statistic, rel=1e-12)
    with pytest.raises(ValueError, match="3 values with 2 values"):
        spearman([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match='nan_policy "drop"'):
        spearman([1, 2], [1, 2], nan_policy="drop")  # type: ignore[arg-type]
    assert mape_percent([110.0, 90.0], [100.0, 100.0]) == pytest.approx(10.0)
