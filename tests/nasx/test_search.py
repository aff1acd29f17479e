"""The search loop: budgets hold, runs are deterministic, resume replays, failures are recorded."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

import search_spaces
from nasx.budget import parse_budget
from nasx.evaluators import analytic
from nasx.pareto import pareto_front
from nasx.runlog import RUNLOG_NAME, read_runlog
from nasx.search import Objective, ResumeMismatchError, search
from nasx.space import Arch
from solvers.evolution import NSGA2, AgingEvolution
from solvers.random import RandomSearch

SPACE = search_spaces.SPACES["nb201"]("cifar10")
BUDGET = parse_budget("60M-flops")


class Counting:
    """An analytic evaluator (params as the score) that counts what it evaluates."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.evaluated: list[Arch] = []
        self.calls = 0
        self.fail_on_call = fail_on_call
        self._inner = analytic(
            {"params": lambda a: SPACE.costs(a).params, "neg_macs": lambda a: -SPACE.costs(a).macs}
        )

    def __call__(self, archs: Sequence[Arch]) -> list[dict[str, float]]:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("the evaluator crashed")
        self.evaluated.extend(archs)
        return self._inner(archs)


def _evolution() -> AgingEvolution:
    return AgingEvolution(SPACE, BUDGET, population_size=10, sample_size=3)


def test_every_arch_within_budget_and_logged(tmp_path: Path) -> None:
    result = search(
        SPACE,
        _evolution(),
        Counting(),
        ("params",),
        evaluations=30,
        batch_size=4,
        budget=BUDGET,
        run_dir=tmp_path,
    )
    assert len(result.evaluations) == 30
    assert all(BUDGET.admits(SPACE.costs(e.arch)) for e in result.evaluations)
    assert len({e.arch.fingerprint for e in result.evaluations}) == 30
    assert read_runlog(tmp_path / RUNLOG_NAME) == list(result.evaluations)
    assert result.best is not None and result.best.objectives[0] == max(
        e.objectives[0] for e in result.evaluations
    )


def test_same_seed_same_run_log(tmp_path: Path) -> None:
    for name in ("a", "b"):
        search(
            SPACE,
            _evolution(),
            Counting(),
            ("params",),
            evaluations=25,
            batch_size=3,
            seed=7,
            run_dir=tmp_path / name,
        )
    assert (tmp_path / "a" / RUNLOG_NAME).read_bytes() == (tmp_path / "b" / RUNLOG_NAME).read_bytes()
    search(
        SPACE,
        _evolution(),
        Counting(),
        ("params",),
        evaluations=25,
        batch_size=3,
        seed=8,
        run_dir=tmp_path / "c",
    )
    assert (tmp_path / "a" / RUNLOG_NAME).read_bytes() != (tmp_path / "c" / RUNLOG_NAME).read_bytes()


@pytest.mark.parametrize("kept", [0, 9, 10, 24])
def test_resume_after_kill_loses_and_repeats_nothing(tmp_path: Path, kept: int) -> None:
    whole = tmp_path / "whole"
    search(SPACE, _evolution(), Counting(), ("params",), evaluations=30, batch_size=4, seed=3, run_dir=whole)
    lines = (whole / RUNLOG_NAME).read_text().splitlines(keepends=True)
    killed = tmp_path / "killed"
    killed.mkdir()
    # the kill: `kept` records survive (mid-batch for 9), plus half a line being written
    (killed / RUNLOG_NAME).write_text("".join(lines[:kept]) + lines[kept][: len(lines[kept]) // 2])
    evaluator = Counting()
    result = search(
        SPACE,
        _evolution(),
        evaluator,
        ("params",),
        evaluations=30,
        batch_size=4,
        seed=3,
        run_dir=killed,
        resume=True,
    )
    assert (killed / RUNLOG_NAME).read_text() == "".join(lines)
    assert len(evaluator.evaluated) == 30 - kept
    assert {a.fingerprint for a in evaluator.evaluated}.isdisjoint(
        {e.arch.fingerprint for e in result.evaluations[:kept]}
    )
    assert result.resumed == kept


def test_resume_with_another_seed_is_refused(tmp_path: Path) -> None:
    search(SPACE, _evolution(), Counting(), ("params",), evaluations=8, seed=1, run_dir=tmp_path)
    with pytest.raises(ResumeMismatchError, match="another space, strategy, seed"):
        search(
            SPACE,
            _evolution(),
            Counting(),
            ("params",),
            evaluations=12,
            seed=2,
            run_dir=tmp_path,
            resume=True,
        )


def test_a_failing_evaluation_is_recorded_and_the_search_goes_on(tmp_path: Path) -> None:
    result = search(
        SPACE,
        RandomSearch(SPACE, BUDGET),
        Counting(fail_on_call=2),
        ("params",),
        evaluations=12,
        batch_size=4,
        run_dir=tmp_path,
    )
    statuses = [e.status for e in read_runlog(tmp_path / RUNLOG_NAME)]
    assert statuses == ["ok"] * 4 + ["failed"] * 4 + ["ok"] * 4
    failed = [e for e in result.evaluations if not e.ok]
    assert all("the evaluator crashed" in (e.error or "") for e in failed)
    assert result.best is not None and result.best.ok


def test_nsga2_front_is_non_dominated() -> None:
    strategy = NSGA2(SPACE, (True, False), BUDGET, population_size=8)
    result = search(
        SPACE, strategy, Counting(), ("params", Objective.cost("macs")), evaluations=32, batch_size=8
    )
    front = result.front
    points = [list(e.objectives) for e in result.ok]
    assert {e.arch.fingerprint for e in front} == {
        result.ok[i].arch.fingerprint for i in pareto_front(points, (True, False))
    }
    assert len(front) >= 1
