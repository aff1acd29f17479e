"""The search loop: ask a strategy, cost and score the architectures, log them, tell the strategy.

`search` drives any ask/tell strategy (`solvers.strategy.Strategy`: ``init(seed)``, ``ask(state, n)``,
``tell(state, archs, objectives)``) with any evaluator (``evaluate(archs) -> [{score name: value}]``). Each batch is
costed analytically, scored in one call (a vmapped, jitted proxy or accuracy), appended to the
run log and flushed, and only then told to the strategy: a crash loses nothing already scored.

Resuming replays the run log: strategies are deterministic given their seed and what they were
told, so asking again yields the logged architectures, whose logged scores are told without
evaluating them again; the run then continues as if it had never stopped.

Objectives name a score of the evaluator (maximized) or an analytic cost (minimized):
``("synflow",)`` for one objective, ``("synflow", Objective.cost("macs"))`` for a Pareto search.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasx.budget import Budget
from nasx.costs import Costs
from nasx.errors import NasxError
from nasx.pareto import pareto_front
from nasx.runlog import RUNLOG_NAME, Evaluation, RunLog, recover_runlog
from nasx.space import Arch, SearchSpace
from solvers.strategy import Strategy, Told

__all__ = [
    "Strategy",
    "Evaluator",
    "Objective",
    "SearchResult",
    "search",
    "SearchRun",
    "score",
    "Outcome",
    "COST_OBJECTIVES",
    "ResumeMismatchError",
]

log = logging.getLogger(__name__)

COST_OBJECTIVES = ("macs", "params", "weight_bytes", "activation_bytes", "layers")
"""Analytic costs that can be objectives (always minimized)."""


Evaluator = Callable[[Sequence[Arch]], list[dict[str, float]]]
"""Scores of a batch of architectures, one mapping per architecture (higher is better)."""


class ResumeMismatchError(NasxError, ValueError):
    """A run log does not replay: it was written by a different space, strategy, seed or batch."""


@dataclass(frozen=True)
class Objective:
    """One objective: a score of the evaluator (maximized) or an analytic cost (minimized).

    A plain string in `search`'s objectives means a score; ``Objective.cost("macs")`` a cost.
    """

    name: str
    maximize: bool = True
    is_cost: bool = False

    @classmethod
    def cost(cls, name: str) -> Objective:
        if name not in COST_OBJECTIVES:
            raise ValueError(f"cost objective {name!r}: expected one of {', '.join(COST_OBJECTIVES)}")
        return cls(name, maximize=False, is_cost=True)

    def value(self, costs: Mapping[str, float], scores: Mapping[str, float]) -> float | None:
        raw = (costs if self.is_cost else scores).get(self.name)
        if raw is None or not math.isfinite(float(raw)):
            return None
        return float(raw)


@dataclass(frozen=True)
class SearchResult:
    """What a search found: every evaluation, the best one(s), and where they were written."""

    evaluations: tuple[Evaluation, ...]
    objectives: tuple[Objective, ...]
    run_dir: Path | None
    resumed: int = 0
    """Evaluations read back from the run log instead of evaluated again."""

    @property
    def ok(self) -> list[Evaluation]:
        return [e for e in self.evaluations if e.ok]

    @property
    def front(self) -> list[Evaluation]:
        """The non-dominated evaluations (for one objective: the best, ties included)."""
        ok = self.ok
        if not ok:
            return []
        points = [list(e.objectives) for e in ok]
        idx = pareto_front(points, [o.maximize for o in self.objectives])
        front = [ok[i] for i in idx]
        return sorted(front, key=lambda e: _sort_key(e, self.objectives))

    @property
    def best(self) -> Evaluation | None:
        """The best evaluation by the first objective (ties: fewer MACs, then earlier)."""
        ok = self.ok
        return min(ok, key=lambda e: _sort_key(e, self.objectives)) if ok else None


def _sort_key(e: Evaluation, objectives: Sequence[Objective]) -> tuple[float, float, int]:
    first = e.objectives[0]
    value = -np.inf if first is None else (first if objectives[0].maximize else -first)
    return (-value, float(e.costs.get("macs", 0.0)), e.index)


def search(
    space: SearchSpace,
    strategy: Strategy,
    evaluate: Evaluator,
    objectives: Sequence[str | Objective],
    *,
    evaluations: int,
    batch_size: int = 16,
    seed: int = 0,
    budget: Budget | None = None,
    resolution: int | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    on_batch: Callable[[int, list[Evaluation]], None] | None = None,
) -> SearchResult:
    """Run `strategy` for `evaluations` architectures, scoring them with `evaluate`.

    Args:
      space: the space the strategy searches and costs are computed in.
      strategy: an ask/tell strategy configured for `space` and its budget.
      evaluate: scores a batch of architectures (see `Evaluator`); an exception marks the whole
        batch failed (recorded with the error) and the search goes on.
      objectives: names of scores (maximized) or `Objective`s (e.g. costs), the first is primary.
      evaluations: how many architectures to evaluate in all (including resumed ones).
      batch_size: architectures asked and scored together (one vmapped call).
      seed: the strategy's seed.
      budget: checked on every asked architecture (a strategy bug would otherwise go unnoticed).
      resolution: px at which costs are computed (default: the space's).
      run_dir: where ``runlog.jsonl`` is appended; None keeps results in memory only.
      resume: replay an existing run log in `run_dir` and continue it.
      on_batch: called after each batch with the number done and the batch's evaluations.

    Raises:
      ResumeMismatchError: the run log does not replay with this strategy and seed.
    """
    run = SearchRun(
        space,
        strategy,
        objectives,
        evaluations=evaluations,
        batch_size=batch_size,
        seed=seed,
        budget=budget,
        resolution=resolution,
        run_dir=run_dir,
        resume=resume,
        on_batch=on_batch,
    )
    with run:
        run.evaluate_all(evaluate)
    return run.result()


Outcome = tuple[Mapping[str, float], str | None]
"""What evaluating one architecture gave: its scores, and an error message if it failed."""


def score(evaluate: Evaluator, archs: Sequence[Arch]) -> list[Outcome]:
    """`evaluate(archs)`; an exception (not a `NasxError`) marks every arch failed, with it."""
    try:
        return [(s, None) for s in evaluate(archs)]
    except NasxError:
        raise
    except Exception as e:  # a failing evaluation is recorded, not fatal
        log.warning("evaluation of %d architectures failed: %s", len(archs), e)
        return [({}, f"{type(e).__name__}: {e}") for _ in archs]


class SearchRun:
    """The search loop turned inside out, for callers that score batches elsewhere (Ray Tune).

    ``next_batch()`` asks the strategy and returns the architectures to score (None when the
    run is over); ``complete(outcomes)`` records their scores in the run log, flushed, and only
    then tells the strategy. Resumed batches are replayed from the log inside `next_batch`.
    Arguments as for `search`. Use as a context manager (closes the run log).
    """

    def __init__(
        self,
        space: SearchSpace,
        strategy: Strategy,
        objectives: Sequence[str | Objective],
        *,
        evaluations: int,
        batch_size: int = 16,
        seed: int = 0,
        budget: Budget | None = None,
        resolution: int | None = None,
        run_dir: str | Path | None = None,
        resume: bool = False,
        on_batch: Callable[[int, list[Evaluation]], None] | None = None,
    ) -> None:
        if evaluations < 1 or batch_size < 1:
            raise ValueError(f"evaluations ({evaluations}) and batch_size ({batch_size}) must be >= 1")
        self.space, self.strategy, self.budget, self.resolution = space, strategy, budget, resolution
        self.objectives = tuple(o if isinstance(o, Objective) else Objective(o) for o in objectives)
        self.evaluations, self.batch_size, self.on_batch = evaluations, batch_size, on_batch
        self.run_dir = Path(run_dir) if run_dir is not None else None
        log_path = self.run_dir / RUNLOG_NAME if self.run_dir is not None else None
        self.logged = recover_runlog(log_path) if (log_path is not None and resume) else []
        if log_path is not None and not resume and log_path.exists():
            log_path.unlink()  # a fresh run in a used directory starts a fresh log
        self.state = strategy.init(seed)
        self.done: list[Evaluation] = []
        self.writer = RunLog(log_path) if log_path is not None else None
        # the batch being scored: (replayed records, fresh archs, their costs)
        self._pending: tuple[list[Evaluation], list[Arch], list[Costs]] | None = None

    def __enter__(self) -> SearchRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def evaluate_all(self, evaluate: Evaluator) -> None:
        """Score every remaining batch in this process with `evaluate` (what `search` does)."""
        while (archs := self.next_batch()) is not None:
            self.complete(score(evaluate, archs))

    def next_batch(self) -> list[Arch] | None:
        """The next architectures to score, or None when the run has all its evaluations."""
        if self._pending is not None:
            raise RuntimeError("complete() the batch next_batch() returned before asking another")
        while len(self.done) < self.evaluations:
            n = min(self.batch_size, self.evaluations - len(self.done))
            archs, self.state = self.strategy.ask(self.state, n)
            if not archs:
                log.info("the strategy has no new architecture to ask; stopping at %d", len(self.done))
                return None
            replayed = self.logged[len(self.done) : len(self.done) + len(archs)]
            _check_replay(archs, replayed, len(self.done))
            fresh = archs[len(replayed) :]
            costs = [self.space.costs(a, self.resolution) for a in fresh]  # once: checked, then logged
            self._check_budget(fresh, costs)
            self._pending = (list(replayed), fresh, costs)
            if fresh:
                return fresh
            self.complete([])
        return None

    def complete(self, outcomes: Sequence[Outcome]) -> list[Evaluation]:
        """Record the outcomes of the last `next_batch` (in its order), then tell the strategy."""
        if self._pending is None:
            raise RuntimeError("complete() without a batch from next_batch()")
        replayed, fresh, costs = self._pending
        if len(outcomes) != len(fresh):
            raise ValueError(f"{len(outcomes)} outcomes for a batch of {len(fresh)} architectures")
        start = len(self.done) + len(replayed)
        records = [
            _record(a, c, scores, error, self.objectives, start + i)
            for i, (a, c, (scores, error)) in enumerate(zip(fresh, costs, outcomes, strict=True))
        ]
        if self.writer is not None:
            self.writer.extend(records)
        batch = replayed + records
        self.done.extend(batch)
        self._pending = None
        told = [_told(e, self.objectives) for e in batch]
        self.state = self.strategy.tell(self.state, [e.arch for e in batch], told)
        if self.on_batch is not None:
            self.on_batch(len(self.done), batch)
        return batch

    def result(self) -> SearchResult:
        resumed = min(len(self.logged), len(self.done))
        return SearchResult(tuple(self.done), self.objectives, self.run_dir, resumed=resumed)

    def _check_budget(self, archs: Sequence[Arch], costs: Sequence[Costs]) -> None:
        if self.budget is None:
            return
        outside = [a.fingerprint for a, c in zip(archs, costs, strict=True) if not self.budget.admits(c)]
        if outside:  # a strategy bug: never let it pass silently
            raise RuntimeError(f"the strategy asked architectures outside the budget: {outside}")


def _told(e: Evaluation, objectives: Sequence[Objective]) -> Told:
    if len(objectives) == 1:
        return e.objectives[0]
    return list(e.objectives)


def _check_replay(archs: Sequence[Arch], logged: Sequence[Evaluation], start: int) -> None:
    """Logged records must be the architectures the strategy asks again, in order."""
    for i, (arch, e) in enumerate(zip(archs, logged, strict=False)):
        if arch.fingerprint != e.arch.fingerprint:
            raise ResumeMismatchError(
                f"run log record {start + i} is arch {e.arch.fingerprint} but the strategy asks "
                f"{arch.fingerprint}: the log was written with another space, strategy, seed or batch "
                "size; resume with the same options, or start a new run directory"
            )


def _record(
    arch: Arch,
    full_costs: Costs,
    scores: Mapping[str, float],
    error: str | None,
    objectives: Sequence[Objective],
    index: int,
) -> Evaluation:
    costs = dataclasses.asdict(full_costs)
    values = tuple(o.value(costs, scores) for o in objectives)
    failed = error is not None or any(v is None for v in values)
    why = error or (f"no finite objective (rejected by the evaluator): {dict(scores)}" if failed else None)
    return Evaluation(
        index=index,
        arch=arch,
        costs=costs,
        scores=dict(scores),
        objectives=values if not failed else tuple(None for _ in values),
        status="ok" if not failed else ("failed" if error else "rejected"),
        error=why,
    )
