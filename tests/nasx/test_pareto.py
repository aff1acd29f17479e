"""Pareto analysis: fronts, crowding and hypervolume against hand-computed cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nasx.pareto import crowding_distance, hypervolume, non_dominated_sort, pareto_front


def test_front_of_accuracy_vs_macs() -> None:
    points = [(0.90, 300), (0.80, 100), (0.85, 300), (0.95, 600), (0.70, 150)]
    assert pareto_front(points, (True, False)).tolist() == [0, 1, 3]
    assert [f.tolist() for f in non_dominated_sort(points, (True, False))] == [[0, 1, 3], [2, 4]]


def test_failed_points_never_on_the_front() -> None:
    points = [(None, 1.0), (0.5, 2.0), (float("nan"), 0.1)]
    assert pareto_front(points, (True, False)).tolist() == [1]


def test_crowding_gives_extremes_infinity() -> None:
    d = crowding_distance([(1, 5), (2, 3), (4, 1)], False)
    assert np.isinf(d[0]) and np.isinf(d[2]) and d[1] == pytest.approx(2.0)


def test_front_and_sort_on_a_hand_made_set_with_ties_and_a_failure() -> None:
    points = [(1, 2), (2, 1), (0, 0), (2, 2), (None, 5), (2, 2)]
    assert pareto_front(points, maximize=True).tolist() == [3, 5]  # equal points both stay
    assert pareto_front(points, maximize=False).tolist() == [2]
    assert pareto_front(points, maximize=(True, False)).tolist() == [1, 2]
    fronts = non_dominated_sort(points, maximize=True)
    assert [f.tolist() for f in fronts] == [[3, 5], [0, 1], [2], [4]]  # the failed point last
    assert pareto_front(np.zeros((0, 2))).tolist() == []


def test_crowding_of_inner_points_sums_normalized_neighbour_gaps() -> None:
    d = crowding_distance([(0.0, 4.0), (1.0, 3.0), (3.0, 1.0), (4.0, 0.0)], maximize=False)
    assert np.isinf(d[0]) and np.isinf(d[3])
    np.testing.assert_allclose(d[1:3], [3 / 4 + 3 / 4, 3 / 4 + 3 / 4])


@pytest.mark.parametrize(
    ("points", "reference", "maximize", "expected"),
    [
        ([(0.9, 100), (0.8, 50)], (0.0, 200), (True, False), 0.9 * 100 + 0.8 * 150 - 0.8 * 100),
        ([(1, 1)], (3, 3), False, 4.0),
        ([(1, 2), (2, 1)], (3, 3), False, 3.0),
        ([(4, 4)], (3, 3), False, 0.0),  # beyond the reference: nothing
        ([(1, 1, 1)], (2, 2, 2), False, 1.0),
        ([(1, 1, 2), (2, 2, 1)], (3, 3, 3), False, 4 + 2 - 1),
        ([(2.0,)], (5.0,), False, 3.0),
    ],
)
def test_hypervolume_by_hand(points, reference, maximize, expected) -> None:
    assert hypervolume(points, reference, maximize) == pytest.approx(expected)


def test_hypervolume_matches_monte_carlo_free_grid_count() -> None:
    """On integer points the volume is the count of unit cells dominated (exact)."""
    rng = np.random.default_rng(0)
    points = rng.integers(0, 6, size=(12, 3))
    reference = (6, 6, 6)
    cells = sum(
        any(all(p[k] <= c[k] for k in range(3)) for p in points)
        for c in itertools.product(range(6), repeat=3)
    )
    assert hypervolume(points, reference, False) == pytest.approx(cells)
