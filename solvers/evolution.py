"""Evolutionary strategies: aging (regularized) evolution and NSGA-II, as pure ask/tell objects.

* `AgingEvolution` maximizes (or minimizes) one objective: the population is the last
  ``population_size`` evaluated architectures; each child is a mutation of the best of
  ``sample_size`` members drawn at random, and the oldest member dies when a child is told.
* `NSGA2` optimizes several objectives at once (e.g. maximize accuracy, minimize MACs, minimize
  weight bytes): children come from binary tournaments on (Pareto rank, crowding distance),
  the space's crossover and mutation; when a generation's worth of children has been told, the
  next population is the best ``population_size`` of parents and children by non-dominated
  sorting, the last admitted front thinned by crowding distance.

Both follow DESIGN.md decision 5: the strategy object holds configuration only, the state is plain
data (`to_json` / `from_json`) and randomness is drawn from ``step_rng(seed, step)``, so the same
seed and the same told objectives give the same asked architectures, and a run resumes from its
serialized state. Every asked architecture is valid and within the budget; a child that is outside
the budget or already seen is retried a bounded number of times, then replaced by a random
admitted sample (`solvers.random.sample_unseen`). Both work asynchronously: `ask` may be called
again before earlier architectures are told, and results may be told in any order.

References:
  Real, Aggarwal, Huang & Le, "Regularized Evolution for Image Classifier Architecture Search",
  AAAI 2019 (Algorithm 1).
  Deb, Pratap, Agarwal & Meyarivan, "A Fast and Elitist Multiobjective Genetic Algorithm:
  NSGA-II", IEEE Transactions on Evolutionary Computation 6(2), 2002.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, final

import numpy as np

from nasx.budget import Budget
from nasx.pareto import crowding_distance, non_dominated_sort, pareto_front
from nasx.space import Arch, SearchSpace
from solvers._state import (
    Record,
    SearchState,
    check_count,
    check_seed,
    extend_seen,
    make_records,
    step_rng,
)
from solvers.random import sample_unseen
from solvers.strategy import ObjectiveValue, Told

__all__ = ["AgingEvolution", "NSGA2", "Nsga2State"]

Points = Sequence[Sequence[ObjectiveValue]]


# --- NSGA-II selection ----------------------------------------------------------------------
def _survivors(points: Points, maximize: Sequence[bool], k: int) -> np.ndarray:
    """Points kept by NSGA-II's environmental selection: whole fronts, the last one by crowding."""
    kept: list[int] = []
    for front in non_dominated_sort(points, maximize):
        if len(kept) + len(front) <= k:
            kept.extend(int(i) for i in front)
            continue
        crowd = crowding_distance([points[i] for i in front], maximize)
        by_crowding = front[np.argsort(-crowd, kind="stable")]
        kept.extend(int(i) for i in by_crowding[: k - len(kept)])
        break
    return np.array(kept, dtype=np.int64)


def _rank_and_crowding(points: Points, maximize: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    """Each point's Pareto rank (0: the first front) and its crowding distance within its front."""
    rank = np.zeros(len(points), dtype=np.int64)
    crowd = np.zeros(len(points))
    for r, front in enumerate(non_dominated_sort(points, maximize)):
        rank[front] = r
        crowd[front] = crowding_distance([points[i] for i in front], maximize)
    return rank, crowd


# --- shared strategy plumbing -----------------------------------------------------------------
def _random_fill(
    space: SearchSpace, budget: Budget, rng: np.random.Generator, resolution: int | None, tries_per_arch: int
) -> Callable[[int, set[str]], list[Arch]]:
    """``fill(k, taken)``: `k` random admitted architectures not in `taken`, which it extends."""

    def fill(k: int, taken: set[str]) -> list[Arch]:
        archs = sample_unseen(
            space, budget, rng, k, taken, resolution=resolution, tries_per_arch=tries_per_arch
        )
        taken.update(a.fingerprint for a in archs)
        return archs

    return fill


def _breed(
    n: int,
    make_child: Callable[[set[str]], Arch | None],
    fill: Callable[[int, set[str]], list[Arch]],
    taken: set[str],
) -> list[Arch]:
    """`n` children from `make_child`, those it fails to make drawn by `fill` instead."""
    archs = []
    for _ in range(n):
        child = make_child(taken)
        if child is not None:
            archs.append(child)
            taken.add(child.fingerprint)
    if len(archs) < n:
        archs += fill(n - len(archs), taken)
    return archs


# --- aging evolution --------------------------------------------------------------------------
@final
@dataclass(frozen=True)
class AgingEvolution:
    """Aging (regularized) evolution for one objective under a budget (Real et al. 2019).

    Attributes:
      space: the search space.
      budget: limits every asked architecture meets (default: none).
      population_size: P, the number of most recently told architectures that form the
        population; the first P asked are uniform random samples.
      sample_size: S, the tournament size.
      maximize: whether the objective is maximized (accuracy) or minimized (loss).
      resolution: input size in px at which the budget applies (default: the space's).
      child_tries: mutations tried per child before falling back to a random sample. A child
        already seen is mutated again (a walk away from the parent, so a converged population
        still yields new architectures); a child outside the budget is discarded.
      tries_per_arch: random samples per architecture before repair (see `sample_unseen`).
    """

    space: SearchSpace
    budget: Budget = field(default_factory=Budget)
    population_size: int = 50
    sample_size: int = 10
    maximize: bool = True
    resolution: int | None = None
    child_tries: int = 32
    tries_per_arch: int = 200

    def __post_init__(self) -> None:
        if not 1 <= self.sample_size <= self.population_size:
            raise ValueError(
                f"sample_size {self.sample_size} must be in 1..population_size ({self.population_size})"
            )

    def init(self, seed: int) -> SearchState:
        """A fresh run seeded with `seed` (a non-negative int)."""
        return SearchState(seed=check_seed(seed))

    def fitness(self, record: Record) -> float:
        """The value tournaments maximize; a failed evaluation ranks below everything."""
        value = record.objectives[0]
        if value is None:
            return -np.inf
        return value if self.maximize else -value

    def best(self, state: SearchState) -> Record | None:
        """The best record told so far (the first of equals); None before any tell."""
        return max(state.history, key=self.fitness, default=None)

    def ask(self, state: SearchState, n: int = 1) -> tuple[list[Arch], SearchState]:
        """`n` new admitted architectures: random until P are asked, then mutated winners.

        Raises:
          InfeasibleBudgetError: nothing within the budget was found in the bounded effort.
        """
        if check_count(n) == 0:
            return [], state
        rng = step_rng(state.seed, state.step)
        population = state.history[-self.population_size :]
        n_random = n if not population else min(n, max(0, self.population_size - len(state.seen)))
        taken = set(state.seen)
        fill = _random_fill(self.space, self.budget, rng, self.resolution, self.tries_per_arch)

        archs = fill(n_random, taken) if n_random else []
        archs += _breed(n - n_random, lambda t: self._child(population, rng, t), fill, taken)
        return archs, replace(state, step=state.step + 1, seen=extend_seen(state.seen, archs))

    def _child(self, population: Sequence[Record], rng: np.random.Generator, taken: set[str]) -> Arch | None:
        size = min(self.sample_size, len(population))
        picks = rng.choice(len(population), size=size, replace=False)
        parent = population[max(picks, key=lambda i: self.fitness(population[i]))].arch
        current = parent
        for _ in range(self.child_tries):
            child = self.space.mutate(current, rng)
            if not self.budget.admits(self.space.costs(child, self.resolution)):
                current = parent
            elif child.fingerprint in taken:
                current = child
            else:
                return child
        return None

    def tell(
        self,
        state: SearchState,
        archs: Sequence[Arch],
        objectives: Sequence[Told],
    ) -> SearchState:
        """Add evaluated architectures (one value each) to the population; the oldest age out."""
        records = make_records(self.space, archs, objectives, n_objectives=1)
        told = [r.arch for r in records]
        return replace(state, seen=extend_seen(state.seen, told), history=state.history + records)


# --- NSGA-II ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Nsga2State:
    """The state of an `NSGA2` run, as plain data.

    Attributes:
      seed, step, seen, history: as in `solvers._state.SearchState`.
      population: indices into `history` of the current parents (empty before the first
        generation is complete).
      offspring: indices into `history` of the children told since the last selection.
      generation: number of environmental selections so far.
    """

    seed: int
    step: int = 0
    seen: tuple[str, ...] = ()
    history: tuple[Record, ...] = ()
    population: tuple[int, ...] = ()
    offspring: tuple[int, ...] = ()
    generation: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "step": self.step,
            "seen": list(self.seen),
            "history": [r.to_dict() for r in self.history],
            "population": list(self.population),
            "offspring": list(self.offspring),
            "generation": self.generation,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Nsga2State:
        return cls(
            seed=int(data["seed"]),
            step=int(data["step"]),
            seen=tuple(data["seen"]),
            history=tuple(Record.from_dict(r) for r in data["history"]),
            population=tuple(int(i) for i in data["population"]),
            offspring=tuple(int(i) for i in data["offspring"]),
            generation=int(data["generation"]),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Nsga2State:
        return cls.from_dict(json.loads(text))


@final
@dataclass(frozen=True)
class NSGA2:
    """NSGA-II for several objectives under a budget (Deb et al. 2002).

    Attributes:
      space: the search space.
      maximize: one flag per objective, e.g. ``(True, False, False)`` for (accuracy, MACs,
        weight bytes); told objective vectors follow this order.
      budget: limits every asked architecture meets (default: none).
      population_size: N; the first N told form generation 1, and every N children told after
        that trigger a selection of N survivors among parents and children.
      crossover_prob: probability that a child is the space's crossover of two tournament
        winners rather than a copy of the first.
      mutation_prob: probability that the child is then mutated (always, if it is not new).
      resolution: input size in px at which the budget applies (default: the space's).
      child_tries: children bred per requested one before falling back to a random sample.
      tries_per_arch: random samples per architecture before repair (see `sample_unseen`).
    """

    space: SearchSpace
    maximize: tuple[bool, ...]
    budget: Budget = field(default_factory=Budget)
    population_size: int = 50
    crossover_prob: float = 0.9
    mutation_prob: float = 1.0
    resolution: int | None = None
    child_tries: int = 32
    tries_per_arch: int = 200

    def __post_init__(self) -> None:
        object.__setattr__(self, "maximize", tuple(bool(m) for m in self.maximize))
        if not self.maximize:
            raise ValueError("NSGA2 needs at least one objective in `maximize`")
        if self.population_size < 2:
            raise ValueError(f"population_size must be >= 2, got {self.population_size}")

    def init(self, seed: int) -> Nsga2State:
        """A fresh run seeded with `seed` (a non-negative int)."""
        return Nsga2State(seed=check_seed(seed))

    def front(self, state: Nsga2State) -> list[Record]:
        """The Pareto front of every architecture told so far (first occurrence of each)."""
        unique: dict[str, Record] = {}
        for record in state.history:
            unique.setdefault(record.arch.fingerprint, record)
        records = list(unique.values())
        keep = pareto_front([r.objectives for r in records], self.maximize)
        return [records[i] for i in keep]

    def ask(self, state: Nsga2State, n: int = 1) -> tuple[list[Arch], Nsga2State]:
        """`n` new admitted architectures: random until a generation exists, then bred children.

        Raises:
          InfeasibleBudgetError: nothing within the budget was found in the bounded effort.
        """
        if check_count(n) == 0:
            return [], state
        rng = step_rng(state.seed, state.step)
        parents = [state.history[i] for i in state.population]
        taken = set(state.seen)
        fill = _random_fill(self.space, self.budget, rng, self.resolution, self.tries_per_arch)

        if not parents:
            archs = fill(n, taken)
        else:
            rank, crowd = _rank_and_crowding([r.objectives for r in parents], self.maximize)
            archs = _breed(n, lambda t: self._child(parents, rank, crowd, rng, t), fill, taken)
        return archs, replace(state, step=state.step + 1, seen=extend_seen(state.seen, archs))

    def _child(
        self,
        parents: Sequence[Record],
        rank: np.ndarray,
        crowd: np.ndarray,
        rng: np.random.Generator,
        taken: set[str],
    ) -> Arch | None:
        def tournament() -> Arch:
            i, j = (int(k) for k in rng.integers(len(parents), size=2))
            better = (rank[j], -crowd[j]) < (rank[i], -crowd[i])
            return parents[j if better else i].arch

        for _ in range(self.child_tries):
            a, b = tournament(), tournament()
            child = self.space.crossover(a, b, rng) if rng.random() < self.crossover_prob else a
            if rng.random() < self.mutation_prob or child.fingerprint in taken:
                child = self.space.mutate(child, rng)
            if child.fingerprint not in taken and self.budget.admits(
                self.space.costs(child, self.resolution)
            ):
                return child
        return None

    def tell(
        self,
        state: Nsga2State,
        archs: Sequence[Arch],
        objectives: Sequence[Sequence[ObjectiveValue]],
    ) -> Nsga2State:
        """Add evaluated architectures (one vector each, ordered as `maximize`).

        Once `population_size` children are told, the next generation is selected from parents
        and children by non-dominated sorting and crowding distance.
        """
        records = make_records(self.space, archs, objectives, n_objectives=len(self.maximize))
        start = len(state.history)
        history = state.history + records
        state = replace(
            state,
            seen=extend_seen(state.seen, [r.arch for r in records]),
            history=history,
            offspring=state.offspring + tuple(range(start, len(history))),
        )
        if len(state.offspring) < self.population_size:
            return state
        candidates = state.population + state.offspring
        keep = _survivors([history[i].objectives for i in candidates], self.maximize, self.population_size)
        return replace(
            state,
            population=tuple(sorted(candidates[i] for i in keep)),
            offspring=(),
            generation=state.generation + 1,
        )
