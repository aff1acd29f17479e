"""Random search: admitted, distinct, seeded, resumable, and bounded on infeasible budgets."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest

from nasx.budget import parse_budget
from nasx.errors import InfeasibleBudgetError, InvalidArchError
from nasx.space import Arch
from search_spaces import mobilenet, nb201
from solvers._state import SearchState
from solvers.random import RandomSearch, sample_unseen

BUDGET = parse_budget("60M-flops,1MB-size")


def _space():
    return nb201.space(bits=(4, 8, 16, 32))


def _objective(space, arch: Arch) -> float:
    """A fixed additive function of the encoding (weights drawn once from seed 123)."""
    weights = np.random.default_rng(123).normal(
        size=(len(space.choices), 1 + max(len(c.options) for c in space.choices))
    )
    code = space.encode(arch) + 1  # -1 marks an inactive choice
    return float(weights[np.arange(len(code)), code].sum())


def _run(strategy, state, rounds: int, batch: int):
    asked = []
    for _ in range(rounds):
        archs, state = strategy.ask(state, batch)
        asked += archs
        state = strategy.tell(state, archs, [_objective(strategy.space, a) for a in archs])
    return asked, state


@pytest.mark.parametrize(
    ("space", "budget"),
    [(_space(), BUDGET), (mobilenet.space(), parse_budget("300M-flops,20MB-size"))],
    ids=["nb201-bits", "mobilenet"],
)
def test_asked_archs_are_valid_distinct_and_within_budget(space, budget) -> None:
    strategy = RandomSearch(space, budget)
    asked, state = _run(strategy, strategy.init(0), rounds=4, batch=25)
    assert len(asked) == 100
    assert len({a.fingerprint for a in asked}) == 100
    for arch in asked:
        assert space.validate(arch) == arch
        assert budget.admits(space.costs(arch))
    assert [r.arch for r in state.history] == asked
    assert state.seen == tuple(a.fingerprint for a in asked)


def test_no_repeats_while_new_archs_exist_then_repeats_instead_of_hanging() -> None:
    space = nb201.space()
    budget = parse_budget("7.8M-flops")  # only cells without convolutions: 3**6 = 729
    cheap = ("none", "skip_connect", "avg_pool_3x3")
    admitted = {
        space.validate(dict(zip([c.name for c in space.choices], ops, strict=True))).fingerprint
        for ops in itertools.product(cheap, repeat=6)
    }
    assert len(admitted) == 729
    strategy = RandomSearch(space, budget)
    archs, _ = strategy.ask(strategy.init(1), 200)
    assert len({a.fingerprint for a in archs}) == 200
    assert {a.fingerprint for a in archs} <= admitted

    exhausted = SearchState(seed=1, seen=tuple(sorted(admitted)))
    repeats, _ = strategy.ask(exhausted, 5)
    assert len(repeats) == 5
    assert {a.fingerprint for a in repeats} <= admitted


def test_same_seed_same_archs_and_different_seed_different_archs() -> None:
    strategy = RandomSearch(_space(), BUDGET)
    first, _ = _run(strategy, strategy.init(7), rounds=3, batch=10)
    again, _ = _run(strategy, strategy.init(7), rounds=3, batch=10)
    other, _ = _run(strategy, strategy.init(8), rounds=3, batch=10)
    assert first == again
    assert first != other


def test_state_json_round_trip_resumes_identically() -> None:
    strategy = RandomSearch(_space(), BUDGET)
    straight, end = _run(strategy, strategy.init(3), rounds=6, batch=5)
    head, middle = _run(strategy, strategy.init(3), rounds=3, batch=5)
    restored = SearchState.from_json(middle.to_json())
    assert restored == middle
    tail, resumed_end = _run(strategy, restored, rounds=3, batch=5)
    assert head + tail == straight
    assert resumed_end.to_json() == end.to_json()


def test_infeasible_budget_raises_and_leaves_state_alone() -> None:
    strategy = RandomSearch(nb201.space(), parse_budget("1M-flops"))  # the smallest cell needs 7.8M
    state = strategy.init(0)
    with pytest.raises(InfeasibleBudgetError, match="1M-flops"):
        strategy.ask(state, 4)
    with pytest.raises(InfeasibleBudgetError):
        sample_unseen(nb201.space(), parse_budget("1M-flops"), np.random.default_rng(0), 1)
    assert state == strategy.init(0)


def test_tell_validates_archs_and_lengths() -> None:
    strategy = RandomSearch(_space(), BUDGET)
    state = strategy.init(0)
    archs, state = strategy.ask(state, 2)
    with pytest.raises(ValueError, match="2 architectures but 1 objectives"):
        strategy.tell(state, archs, [0.5])
    with pytest.raises(InvalidArchError, match=r"edge\.9->9"):
        strategy.tell(state, [archs[0].replace({"edge.9->9": "none"})], [0.5])
    told = strategy.tell(state, archs, [float("nan"), (0.3, 2.0)])
    assert [r.objectives for r in told.history] == [(None,), (0.3, 2.0)]
    assert SearchState.from_json(told.to_json()) == told


def test_solvers_import_no_jax() -> None:
    code = (
        "import sys, solvers.random, solvers.evolution; print(any(m.startswith('jax') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
