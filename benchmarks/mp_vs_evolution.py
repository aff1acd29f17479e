"""DeepMAD's objective: the MP solver vs a TinyNAS-style evolutionary search, side by side.

Same space (the ``resnet`` imagenet skeleton at 224 px, 32-bit weights), same objective (the
DeepMAD score, `solvers.mp.deepmad_score`), same hard constraints (the budget and rho <= 0.3),
same wall-clock limit per method. For each setting (DeepMAD-R18/R34/R50 budgets, from
``shared/reference/deepmad_formulas.md`` section 5) it reports the best score each method reached,
when it reached it and when it first beat the released DeepMAD structure, candidates evaluated per
second (the evolution) or MILPs solved (MP), and whether the result satisfies every constraint.

The evolution is TinyNAS's (``tinynas/strategy/strategy.py``, ``configs/classification/
deepmad_*.py``): a population of the 256 best admitted architectures; each child is a random
member with 2 mutations (`nasx.space.AbstractSearchSpace.mutate`); children outside the budget or
the rho bound, or already seen, are dropped; an admitted child replaces the worst member when the
population is full and it scores higher. No crossover. It starts from the smallest architecture
(every choice at its smallest option), as TinyNAS starts from a small initial structure; that one
violates the rho bound (rho 0.75), so it is a parent only, never a result. The MP solver runs CBC
on 1 thread; the evolution is one Python process.

Run: ``python benchmarks/mp_vs_evolution.py`` (R50, 60 s per method, about 2 minutes), or
``--settings r18,r34,r50 --seconds 60``. Prints a table and writes
``benchmarks/results/mp_vs_evolution.json``. Timings are wall clock on a shared machine: noisy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nasx.budget import Budget, parse_budget  # noqa: E402
from nasx.space import Arch, SearchSpace  # noqa: E402
from search_spaces import resnet  # noqa: E402
from solvers.mp import deepmad_score, effectiveness, solve  # noqa: E402

SETTINGS = {  # name: (budget, released structure), deepmad_formulas.md section 5
    "r18": ("1.82G-flops,11.69M-params", "deepmad-r18"),
    "r34": ("3.68G-flops,21.80M-params", "deepmad-r34"),
    "r50": ("4.13G-flops,25.55M-params", "deepmad-r50"),
}
RHO_MAX = resnet.FAMILY.default_rho  # 0.3, DeepMAD's bound for its ResNet configs
POPULATION = 256
MUTATIONS = 2


@dataclass
class Run:
    """What one method reached within its time."""

    method: str
    best_score: float = float("-inf")
    best_arch: dict = field(default_factory=dict)
    time_to_best_s: float | None = None
    time_to_released_s: float | None = None
    seconds: float = 0.0
    candidates: int = 0
    programs: int | None = None
    status: str = ""
    satisfied: bool = False
    history: list[tuple[float, float]] = field(default_factory=list)


def smallest(space: SearchSpace) -> Arch:
    """Every choice at its smallest allowed option, walked in order."""
    values: dict = {}
    for choice in space.choices:
        allowed = space.options(choice, values)
        if allowed:
            values[choice.name] = min(allowed)
    return space.validate(values)


def evolution(space: SearchSpace, budget: Budget, released: float, seconds: float, seed: int) -> Run:
    """TinyNAS-style elitist mutation-only evolution for `seconds` (module docstring)."""
    rng, run = np.random.default_rng(seed), Run("evolution (TinyNAS-style)")
    start = time.perf_counter()
    first = smallest(space)
    population = [(float("-inf"), first)]  # a parent only: it violates the rho bound
    seen = {first}
    while time.perf_counter() - start < seconds:
        child = population[rng.integers(len(population))][1]
        for _ in range(MUTATIONS):
            child = space.mutate(child, rng)
        run.candidates += 1
        if child in seen:
            continue
        seen.add(child)
        if not budget.admits(space.costs(child)) or effectiveness(space, child) > RHO_MAX:
            continue
        score = deepmad_score(space, child)
        if len(population) < POPULATION:
            population.append((score, child))
        else:
            worst = min(range(len(population)), key=lambda i: population[i][0])
            if score <= population[worst][0]:
                continue
            population[worst] = (score, child)
        if score > run.best_score:
            now = time.perf_counter() - start
            run.best_score, run.best_arch, run.time_to_best_s = score, dict(child), now
            run.history.append((now, score))
            if run.time_to_released_s is None and score >= released:
                run.time_to_released_s = now
    run.seconds = time.perf_counter() - start
    if run.best_arch:
        best = space.validate(run.best_arch)
        run.satisfied = budget.admits(space.costs(best)) and effectiveness(space, best) <= RHO_MAX
    run.status = f"{len(population)} in population"
    return run


def mp_solver(space: SearchSpace, budget: Budget, released: float, seconds: float) -> Run:
    run = Run("MP (MILP, CBC 1 thread)")
    result = solve(space, budget, rho_max=RHO_MAX, time_limit_s=seconds, threads=1)
    run.best_score, run.best_arch = result.score, dict(result.arch)
    run.time_to_best_s, run.seconds = result.history[-1][0], result.solve_s
    run.time_to_released_s = next((t for t, s in result.history if s >= released), None)
    run.programs, run.status, run.history = result.programs, result.status, list(result.history)
    run.satisfied = budget.admits(space.costs(result.arch)) and effectiveness(space, result.arch) <= RHO_MAX
    return run


def costs(space: SearchSpace, values: dict) -> dict | None:
    return space.costs(space.validate(values)).to_dict() if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default="r50", help="comma-separated subset of r18,r34,r50")
    parser.add_argument("--seconds", type=float, default=60.0, help="wall-clock limit of each method")
    parser.add_argument("--seed", type=int, default=0, help="seed of the evolution")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "mp_vs_evolution.json")
    args = parser.parse_args()
    names = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = sorted(set(names) - set(SETTINGS))
    if unknown:
        parser.error(f"unknown settings {unknown}; choose from {', '.join(SETTINGS)}")

    space = resnet.space("imagenet", bits=(32,))
    results = {
        "seconds": args.seconds,
        "rho_max": RHO_MAX,
        "space": "resnet:imagenet, 224 px",
        "settings": {},
    }
    header = (
        f"{'setting':<7} {'method':<26} {'best score':>11} {'t best s':>9} {'t released s':>13} "
        f"{'cand/s':>8} {'programs':>9} {'ok':>3}  {'released':>9}  status"
    )
    print(header)
    for name in names:
        budget_text, preset = SETTINGS[name]
        budget = parse_budget(budget_text)
        released_arch = space.validate(
            {k: v for k, v in resnet.PRESETS[preset].arch.items() if "bits" not in k}
        )
        released = deepmad_score(space, released_arch)
        runs = [
            mp_solver(space, budget, released, args.seconds),
            evolution(space, budget, released, args.seconds, args.seed),
        ]
        results["settings"][name] = {
            "budget": budget_text,
            "released": {"preset": preset, "score": released, "costs": space.costs(released_arch).to_dict()},
            "runs": [run.__dict__ | {"costs": costs(space, run.best_arch)} for run in runs],
        }
        for run in runs:
            rate = f"{run.candidates / run.seconds:,.0f}" if run.candidates else "-"
            t_rel = f"{run.time_to_released_s:.1f}" if run.time_to_released_s is not None else "never"
            print(
                f"{name:<7} {run.method:<26} {run.best_score:>11,.2f} {run.time_to_best_s or 0:>9.1f} {t_rel:>13} "
                f"{rate:>8} {run.programs or '-':>9} {'yes' if run.satisfied else 'NO':>3}  "
                f"{released:>9,.2f}  {run.status}"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
