"""The search loop: ask a strategy, cost and score the architectures, log them, tell the strategy.

`search` drives any ask/tell strategy (``init(seed)``, ``ask(state, n)``, ``tell(state, archs,
objectives)``) with any evaluator (``evaluate(archs) -> [{score name: value}]``). Each batch is
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
from typing import Any, Protocol

import numpy as np

from nasx.budget import Budget
from nasx.errors import NasxError
from nasx.pareto import pareto_front
from nasx.runlog import RUNLOG_NAME, Evaluation, RunLog, recover_runlog
from nasx.space import Arch, SearchSpace

__all__ = [
    "Strategy",
    "Evaluator",
    "Objective",
    "SearchResult",
    "search",
    "COST_OBJECTIVES",
    "ResumeMismatchError",
]

log = logging.getLogger(__name__)

COST_OBJECTIVES = ("macs", "params", "weight_bytes", "activation_bytes", "layers")
"""Analytic costs that can be objectives (always minimized)."""


class Strategy(Protocol):
    """A pure ask/tell search strategy (solvers.random, solvers.evolution)."""

    def init(self, seed: int) -> Any: ...

    def ask(self, state: Any, n: int = 1) -> tuple[list[Arch], Any]: ...

    def tell(self, state: Any, archs: Sequence[Arch], objectives: Sequence[Any]) -> Any: ...


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
    if evaluations < 1 or batch_size < 1:
        raise ValueError(f"evaluations ({evaluations}) and batch_size ({batch_size}) must be >= 1")
    objs = tuple(o if isinstance(o, Objective) else Objective(o) for o in objectives)
    run_path = Path(run_dir) if run_dir is not None else None
    logged = recover_runlog(run_path / RUNLOG_NAME) if (run_path is not None and resume) else []
    if run_path is not None and not resume and (run_path / RUNLOG_NAME).exists():
        (run_path / RUNLOG_NAME).unlink()  # a fresh run in a used directory starts a fresh log

    state = strategy.init(seed)
    done: list[Evaluation] = []
    writer = RunLog(run_path / RUNLOG_NAME) if run_path is not None else None
    try:
        while len(done) < evaluations:
            n = min(batch_size, evaluations - len(done))
            archs, state = strategy.ask(state, n)
            if not archs:
                log.info("the strategy has no new architecture to ask; stopping at %d", len(done))
                break
            replayed = logged[len(done) : len(done) + len(archs)]
            _check_replay(archs, replayed, len(done))
            fresh = _evaluate(
                space, evaluate, archs[len(replayed) :], objs, len(done) + len(replayed), budget, resolution
            )
            if writer is not None:
                writer.extend(fresh)
            batch = list(replayed) + fresh
            done.extend(batch)
            state = strategy.tell(state, [e.arch for e in batch], [_told(e, objs) for e in batch])
            if on_batch is not None:
                on_batch(len(done), batch)
    finally:
        if writer is not None:
            writer.close()
    return SearchResult(tuple(done), objs, run_path, resumed=min(len(logged), len(done)))


def _told(e: Evaluation, objectives: Sequence[Objective]) -> float | list[float | None] | None:
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


def _evaluate(
    space: SearchSpace,
    evaluate: Evaluator,
    archs: Sequence[Arch],
    objectives: Sequence[Objective],
    start: int,
    budget: Budget | None,
    resolution: int | None,
) -> list[Evaluation]:
    if not archs:
        return []
    full = [space.costs(a, resolution) for a in archs]
    if budget is not None:
        outside = [a.fingerprint for a, c in zip(archs, full, strict=True) if not budget.admits(c)]
        if outside:  # a strategy bug: never let it pass silently
            raise RuntimeError(f"the strategy asked architectures outside the budget: {outside}")
    costs = [dataclasses.asdict(c) for c in full]
    try:
        scores = evaluate(archs)
        error = None
    except NasxError:
        raise
    except Exception as e:  # a failing evaluation is recorded, not fatal
        log.warning("evaluation of %d architectures failed: %s", len(archs), e)
        scores, error = [{} for _ in archs], f"{type(e).__name__}: {e}"
    out = []
    for i, (arch, c, s) in enumerate(zip(archs, costs, scores, strict=True)):
        values = tuple(o.value(c, s) for o in objectives)
        failed = error is not None or any(v is None for v in values)
        why = error or (f"no finite objective (rejected by the evaluator): {dict(s)}" if failed else None)
        out.append(
            Evaluation(
                index=start + i,
                arch=arch,
                costs=c,
                scores=s,
                objectives=values if not failed else tuple(None for _ in values),
                status="ok" if not failed else ("failed" if error else "rejected"),
                error=why,
            )
        )
    return out
