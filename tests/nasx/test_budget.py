"""Budget strings: what parses, what is rejected and how the error reads."""

from __future__ import annotations

import numpy as np
import pytest

from nasx.budget import Budget, parse_budget, sample_admitted
from nasx.costs import Costs
from nasx.errors import BudgetCostError, BudgetParseError, InfeasibleBudgetError
from search_spaces import nb201


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("600M-flops", Budget(macs=600_000_000)),
        ("5.3M-params", Budget(params=5_300_000)),
        ("4MB-size", Budget(weight_bytes=4_000_000)),
        ("4MiB-size", Budget(weight_bytes=4 * 2**20)),
        ("512KB-size", Budget(weight_bytes=512_000)),
        ("20ms-latency", Budget(latency_ms=20.0)),
        ("1.5s-latency", Budget(latency_ms=1500.0)),
        ("60-layers", Budget(layers=60)),
        ("0.6G-flops", Budget(macs=600_000_000)),
        ("600m-MACs", Budget(macs=600_000_000)),
        ("1e9-flops", Budget(macs=1_000_000_000)),
        (
            "600M-flops, 5.3M-params,4MB-size,20ms-latency,60-layers",
            Budget(macs=600_000_000, params=5_300_000, weight_bytes=4_000_000, latency_ms=20.0, layers=60),
        ),
    ],
)
def test_accepts(text: str, expected: Budget) -> None:
    assert parse_budget(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("600Q-flops", 'budget "600Q-flops": unknown unit "Q" for flops; use K, M, G or T'),
        ("600M", 'budget "600M": "600M" has no cost name; write <amount>-<cost>'),
        ("600M-flop", 'unknown cost "flop"; use flops, params, size, latency or layers'),
        ("abcM-flops", '"abcM" is not a number'),
        ("20-latency", 'latency "20" needs a unit; use us, ms or s'),
        ("4XB-size", 'unknown unit "XB" for size'),
        ("60K-layers", 'unknown unit "K" for layers'),
        ("0M-flops", "must be positive"),
        ("-5M-flops", "is not a number"),
        ("1M-flops,2M-flops", "flops is given twice"),
        ("1M-flops,,2M-params", "empty part between commas"),
        ("", "empty"),
        ("1e400M-flops", 'flops limit "1e400M" is not a finite number'),
        ("1e400ms-latency", 'latency limit "1e400ms" is not a finite number'),
        ("0.4-layers", 'layers limit "0.4" is below 1 layers'),
        ("0.1-params", 'params limit "0.1" is below 1 params'),
    ],
)
def test_rejects_with_a_message_naming_the_part(text: str, message: str) -> None:
    with pytest.raises(BudgetParseError) as info:
        parse_budget(text)
    assert message in str(info.value)


def test_str_round_trips() -> None:
    for text in (
        "600M-flops",
        "5.3M-params",
        "4MB-size",
        "20ms-latency",
        "60-layers",
        "600M-flops,5.3M-params",
    ):
        assert str(parse_budget(text)) == text
        assert parse_budget(str(parse_budget(text))) == parse_budget(text)


def test_admits_is_inclusive_and_reports_violations() -> None:
    budget = parse_budget("600M-flops,5M-params")
    assert budget.admits(Costs(macs=600_000_000, params=5_000_000))
    over = Costs(macs=600_000_001, params=4_000_000)
    assert not budget.admits(over)
    assert budget.violations(over) == {"macs": (600_000_001, 600_000_000)}
    assert budget.excess(over) == pytest.approx(1 / 600_000_000)


def test_latency_without_a_table_is_a_clear_error() -> None:
    with pytest.raises(BudgetCostError, match="latency table"):
        parse_budget("20ms-latency").admits(Costs(macs=1))


def test_sample_admitted_respects_the_budget_and_is_seeded() -> None:
    space = nb201.space()
    budget = parse_budget("30M-flops,0.3M-params")
    archs = sample_admitted(space, budget, np.random.default_rng(0), n=20)
    assert len(archs) == len(set(archs)) == 20
    assert all(budget.admits(space.costs(a)) for a in archs)
    assert archs == sample_admitted(space, budget, np.random.default_rng(0), n=20)


def test_sample_admitted_repairs_when_samples_rarely_fit() -> None:
    """Only cells without any conv fit (3^6 / 5^6 ~ 5 % of samples); repair must still deliver."""
    space = nb201.space()
    budget = parse_budget("0.08M-params")  # a single 1x1 conv edge already adds 28,000 params
    archs = sample_admitted(space, budget, np.random.default_rng(0), n=5, tries_per_arch=1)
    assert len(archs) == 5 and all(budget.admits(space.costs(a)) for a in archs)


def test_infeasible_budget_names_the_binding_cost() -> None:
    with pytest.raises(InfeasibleBudgetError, match=r'budget "1M-flops".*flops 7\.783M > 1M'):
        sample_admitted(nb201.space(), parse_budget("1M-flops"), np.random.default_rng(0), tries_per_arch=20)
