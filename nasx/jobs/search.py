"""`run_search`: a search into a run folder, the job behind ``nasx search``.

A `SearchRequest` holds everything the command takes; `run_search` resolves the space (a family
spec, or the network of a ``supernet:CKPT`` evaluator), builds the evaluator and the strategy,
runs the search (in this process or on Ray) and writes the run folder (`nasx.run_folder`):
``config.json``, ``runlog.jsonl``, ``front/``, ``front.json``, ``best.json``, ``summary.json``.
With ``strategy="mp"`` the architecture comes from DeepMAD's mathematical program instead.

Example::

    from nasx.jobs.search import SearchRequest, run_search

    done = run_search(SearchRequest("nb201", "100M-flops", evaluations=16, seed=3, out="/tmp/run"))
    done.summary["best"], done.summary["score"]
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

import search_spaces
from nasx import outputs, run_folder
from nasx.budget import Budget, parse_budget, sample_admitted
from nasx.errors import NasxError, RunFolderError, UnknownEvaluatorError, UnsupportedSpaceError
from nasx.evaluators import ANALYTIC_NAMES, PROXY_NAMES
from nasx.hardware.latency import LatencyTable, attach
from nasx.jobs.cluster import RaySettings, search_on_ray
from nasx.jobs.evaluators import BuiltEvaluator, EvaluatorSettings, build_evaluator, default_rho
from nasx.jobs.latency import table_settings
from nasx.jobs.strategies import STRATEGIES, build_strategy, check_strategy, resolve_objectives
from nasx.runlog import Evaluation
from nasx.search import Objective, SearchResult, SearchRun, search
from nasx.space import SearchSpace
from nasx.space_family import BlockPricedSpace, QuantizedSpace, StagePricedSpace
from solvers.fill import Filled

__all__ = [
    "STRATEGIES",
    "SearchRequest",
    "SearchEvent",
    "CompletedSearch",
    "SearchFailedError",
    "SearchPlan",
    "check_search",
    "run_search",
]

log = logging.getLogger(__name__)


class SearchFailedError(NasxError, RuntimeError):
    """Every evaluation of a search failed."""


@dataclass(frozen=True)
class SearchRequest:
    """Everything ``nasx search`` takes, as plain values.

    Attributes:
      space: the family spec (``nasnet``, ``nasnet:cifar``).
      budget: a `Budget`, or its text (``600M-flops,5M-params``).
      strategy: one of `STRATEGIES`.
      evaluator: proxies/analytic scores (comma-separated), ``supernet:CKPT_DIR`` or
        ``train:STEPS``; None: the family's ``default_evaluator``.
      objectives: score names (``acc``/``score``: the evaluator's first) and costs; None: the
        first score, with ``macs`` added for nsga2.
      population: population size of evolution and NSGA-II.
      evaluations: architectures to evaluate in all (including resumed ones).
      batch_size: architectures asked and scored per call.
      seed: the strategy's (and the evaluator's) seed.
      out: the run folder; None: a fresh ``runs/SPACE-BUDGET-STRATEGY-sSEED``.
      resume: continue the run in `out`.
      bits: weight bit-widths to search (None: 32 only; with ``supernet:CKPT``, the checkpoint's).
      resolution: px at which costs apply (None: the space's, or the latency table's).
      data, proxy_batch, width_mult: the evaluator's (`EvaluatorSettings`).
      rho: DeepMAD's effectiveness bound (None: the family's ``default_rho``).
      time_limit: seconds of the MP solver (``mp``).
      ray: run the evaluations on Ray (`RaySettings`); None: in this process.
      latency_table: path of a latency table (recorded in ``config.json``); loaded unless
        `latency` is given.
      latency: the loaded table of `latency_table`.
      top: rows of the result table (`CompletedSearch.top`).
    """

    space: str
    budget: Budget | str
    strategy: str = "evolution"
    evaluator: str | None = None
    objectives: tuple[str, ...] | None = None
    population: int = 32
    evaluations: int = 256
    batch_size: int = 16
    seed: int = 0
    out: str | Path | None = None
    resume: bool = False
    bits: tuple[int, ...] | None = None
    resolution: int | None = None
    data: str = "digits"
    proxy_batch: int | None = None
    width_mult: float | None = None
    rho: float | None = None
    time_limit: float = 60.0
    ray: RaySettings | None = None
    latency_table: str | None = None
    latency: LatencyTable | None = None
    top: int = 5

    def __post_init__(self) -> None:
        if isinstance(self.budget, str):
            object.__setattr__(self, "budget", parse_budget(self.budget))
        if self.objectives is not None and not isinstance(self.objectives, tuple):
            object.__setattr__(self, "objectives", tuple(self.objectives))

    def evaluator_settings(self) -> EvaluatorSettings:
        """The settings the evaluator is built from."""
        return EvaluatorSettings(
            data=self.data,
            seed=self.seed,
            batch_size=self.batch_size,
            proxy_batch=self.proxy_batch,
            width_mult=self.width_mult,
            rho=self.rho,
            resolution=self.resolution,
        )


@dataclass(frozen=True)
class SearchEvent:
    """A stage `run_search` reached: ``solving`` (MP), ``preparing`` (the evaluator) or
    ``searching`` (the loop starts: the evaluator is built and the run folder configured)."""

    stage: Literal["solving", "preparing", "searching"]
    space: SearchSpace
    budget: Budget
    strategy: str
    evaluator: str
    evaluations: int = 0
    description: str = ""
    run_dir: Path | None = None
    objectives: tuple[Objective, ...] = ()

    @property
    def message(self) -> str:
        """The event as one line for a person."""
        where = f"{self.space.name}:{self.space.variant} under {self.budget}"
        if self.stage == "solving":
            return f"solving DeepMAD's program for {where} (CBC) ..."
        if self.stage == "preparing":
            return f"preparing the evaluator ({self.evaluator}) ..."
        return (
            f"searching {where} with {self.strategy} "
            f"({self.evaluations} evaluations, {self.description}) -> {self.run_dir}"
        )


@dataclass(frozen=True)
class CompletedSearch:
    """What `run_search` wrote and found.

    Attributes:
      summary: the content of ``summary.json``.
      config: the content of ``config.json``.
      result: every evaluation, the objectives, the front and the best (`nasx.search.SearchResult`).
      space: the searched space (costs are its own).
      budget: the budget searched under.
      seconds: wall-clock seconds from the evaluator's preparation (or the solve) to the end.
      top: the best distinct architectures by the first objective (at most `SearchRequest.top`).
    """

    summary: dict[str, Any]
    config: dict[str, Any]
    result: SearchResult
    space: SearchSpace
    budget: Budget
    seconds: float
    top: tuple[Evaluation, ...]

    @property
    def run_dir(self) -> Path:
        return Path(self.summary["run_dir"])


@dataclass(frozen=True)
class SearchPlan:
    """A `SearchRequest` checked by `check_search`, with everything resolved but the evaluator.

    Attributes:
      request: the request, its latency table loaded and resolution and bits defaulted from it.
      space: the searched space.
      budget: the budget.
      rho: DeepMAD's effectiveness bound (the family's unless given).
      evaluator: the evaluator spec (the family's default unless given; ``entropy`` for ``mp``).
      objectives: the objectives, resolved against the evaluator's score names.
      folder: the run folder (checked, not yet created).
    """

    request: SearchRequest
    space: SearchSpace
    budget: Budget
    rho: float
    evaluator: str
    objectives: tuple[Objective, ...]
    folder: Path


def check_search(request: SearchRequest) -> SearchPlan:
    """Everything about `request` that can be checked without building the evaluator or writing:
    strategy, latency table, space, budget (an architecture meets it), evaluator spec, objectives
    and the run folder. Cheap (no evaluator built, no data loaded, nothing compiled or written):
    `nasx.jobs.sweep` checks every trial with it before Ray starts one.

    Raises:
      NasxError: what `run_search` would raise on the request before its first evaluation
        (unknown strategy, space, evaluator or objective; a budget nothing meets; a run folder
        that cannot be used as asked).
    """
    check_strategy(request.strategy)
    table, resolution, bits = table_settings(
        request.latency_table, request.latency, request.resolution, request.bits
    )
    request = dataclasses.replace(request, latency=table, resolution=resolution, bits=bits)
    space = _space(request)
    budget = request.budget
    assert isinstance(budget, Budget)
    rho = default_rho(space.name, request.rho)
    if request.resume and not request.out:
        raise RunFolderError("--resume needs --out RUN_DIR, the folder of the run to continue")
    folder = run_folder.run_dir(request.out, request.space, budget, request.strategy, request.seed)
    outputs.check(folder, "search", resume=request.resume)
    # fail fast on a budget nothing meets (and on costs the space cannot measure)
    sample_admitted(space, budget, np.random.default_rng(request.seed), 1, resolution=resolution)
    if request.strategy == "mp":
        if not isinstance(space, StagePricedSpace | BlockPricedSpace):  # what solvers.mp formulates
            raise UnsupportedSpaceError(
                f'strategy "mp" (DeepMAD\'s program) needs a stage-structured space (resnet, mobilenet), '
                f'not "{space.name}"; use --strategy evolution'
            )
        return SearchPlan(request, space, budget, rho, "entropy", (Objective("entropy"),), folder)
    spec = request.evaluator or search_spaces.family(space.name).default_evaluator
    settings = dataclasses.replace(request.evaluator_settings(), rho=rho)
    objectives = resolve_objectives(request.objectives, request.strategy, _score_names(spec, space, settings))
    return SearchPlan(request, space, budget, rho, spec, objectives, folder)


def _score_names(spec: str, space: SearchSpace, settings: EvaluatorSettings) -> tuple[str, ...]:
    """The score names of the evaluator `spec` on `space`, checked without building it: where the
    spec is wrong, `build_evaluator` is called, as it raises before it builds anything."""
    if spec.startswith("supernet:"):
        return ("acc",)  # `_space` has read the checkpoint
    if spec.startswith("train:"):
        steps = spec.partition(":")[2]
        if not (steps.isdigit() and int(steps) >= 1):
            build_evaluator(spec, space, settings)  # raises UnknownEvaluatorError
        return ("acc",)
    names = tuple(n.strip() for n in spec.split(",") if n.strip())
    if not names or any(n not in PROXY_NAMES + ANALYTIC_NAMES for n in names):
        build_evaluator(spec, space, settings)  # raises UnknownEvaluatorError
        raise UnknownEvaluatorError(f'unknown evaluator "{spec}"')  # not reached
    closed = [n for n in names if n in ANALYTIC_NAMES]
    if closed:  # analytic scores only: cheap, and checks that the space has them (entropy)
        build_evaluator(",".join(closed), space, settings)
    return names


def run_search(
    request: SearchRequest,
    *,
    on_batch: Callable[[int, list[Evaluation]], None] | None = None,
    on_event: Callable[[SearchEvent], None] | None = None,
) -> CompletedSearch:
    """Run the search `request` describes into its run folder.

    The request is checked first (`check_search`); the run folder is then locked until the search
    ends (`nasx.outputs.claim`: a second process writing it is refused).

    Args:
      request: what to search, how, and where to write it.
      on_batch: called after each batch with the number done and the batch's evaluations.
      on_event: called at each stage (`SearchEvent`); by default the event is logged.

    Raises:
      RunFolderError: the folder cannot be written, holds something else or another run (and
        `resume` is off), holds no run to resume, or a resumed run's configuration differs.
      OutputBusyError: another process is writing the folder.
      SearchFailedError: no architecture was scored successfully.
      NasxError: any other invalid request (unknown space, evaluator, objective, strategy; a
        budget no architecture meets).
    """
    notify = on_event or (lambda event: log.info("%s", event.message))
    plan = check_search(request)
    with outputs.claim(plan.folder, "search", resume=plan.request.resume) as folder:
        return _search(plan, folder, notify, on_batch)


def _search(
    plan: SearchPlan,
    folder: Path,
    notify: Callable[[SearchEvent], None],
    on_batch: Callable[[int, list[Evaluation]], None] | None,
) -> CompletedSearch:
    request, space, budget, spec = plan.request, plan.space, plan.budget, plan.evaluator
    t0 = time.perf_counter()
    if request.strategy == "mp":
        return _search_mp(request, space, budget, plan.rho, folder, notify, t0)
    family = search_spaces.family(space.name)
    event = SearchEvent("preparing", space, budget, request.strategy, spec, request.evaluations)
    notify(event)
    settings = dataclasses.replace(request.evaluator_settings(), rho=plan.rho)
    evaluator = build_evaluator(spec, space, settings)
    objectives = resolve_objectives(request.objectives, request.strategy, evaluator.names)
    strategy = build_strategy(
        request.strategy,
        space,
        budget,
        [o.maximize for o in objectives],
        population=request.population,
        resolution=request.resolution,
    )
    fill = family.macro_choices if len(objectives) == 1 else ()
    if fill:  # one objective: every cell is scaled to use the budget (a Pareto search keeps N, F free)
        strategy = Filled(strategy, space, budget, fill, request.resolution)
    config = _config(request, space, budget, spec, evaluator, fill, objectives)
    run_folder.check_config(folder, config, request.resume)
    run_folder.write_config(folder, config)
    notify(
        dataclasses.replace(
            event, stage="searching", description=evaluator.description, run_dir=folder, objectives=objectives
        )
    )
    run = SearchRun(
        space,
        strategy,
        objectives,
        evaluations=request.evaluations,
        batch_size=request.batch_size,
        seed=request.seed,
        budget=budget,
        resolution=request.resolution,
        run_dir=folder,
        resume=request.resume,
        on_batch=on_batch,
    )
    with run:
        if request.ray is None:
            run.evaluate_all(evaluator.evaluate)
        else:
            search_on_ray(run, evaluator=spec, settings=settings, ray=request.ray, storage=folder / "ray")
    return _complete(request, space, budget, run.result(), config, t0)


def _space(request: SearchRequest) -> SearchSpace:
    """The searched space: the checkpoint's network with ``supernet:CKPT``, else the family's
    (float unless `bits` are given: proxies and analytic scores cannot see quantization)."""
    if request.evaluator and request.evaluator.startswith("supernet:"):
        from nasx.jobs.trained import checkpoint_space

        space = checkpoint_space(request.evaluator.partition(":")[2], request.space, request.bits)
    else:
        space = search_spaces.make_space(request.space, request.bits or (32,))
    return space if request.latency is None else attach(space, request.latency, request.resolution)


def _config(
    request: SearchRequest,
    space: SearchSpace,
    budget: Budget,
    spec: str,
    evaluator: BuiltEvaluator,
    fill: tuple[str, ...],
    objectives: tuple[Objective, ...],
) -> dict[str, Any]:
    return {
        "space": space.name,
        "variant": space.variant,
        "bits": list(space.bits) if isinstance(space, QuantizedSpace) else None,
        "budget": str(budget),
        "strategy": request.strategy,
        "evaluator": spec,
        "evaluator_description": evaluator.description,
        "filled_choices": list(fill),
        "objectives": [o.name for o in objectives],
        "population": request.population,
        "evaluations": request.evaluations,
        "batch_size": request.batch_size,
        "seed": request.seed,
        "resolution": request.resolution,
        "data": request.data,
        "latency_table": request.latency_table,
    }


def _search_mp(
    request: SearchRequest,
    space: SearchSpace,
    budget: Budget,
    rho: float,
    folder: Path,
    notify: Callable[[SearchEvent], None],
    t0: float,
) -> CompletedSearch:
    from nasx.evaluators import analytic
    from solvers.mp import solve
    from solvers.mp.strategy import Solved

    notify(SearchEvent("solving", space, budget, "mp", "entropy"))
    solved = solve(space, budget, rho_max=rho, resolution=request.resolution, time_limit_s=request.time_limit)
    config: dict[str, Any] = {
        "space": space.name,
        "variant": space.variant,
        "budget": str(budget),
        "strategy": "mp",
        "evaluator": "entropy",
        "objectives": ["entropy"],
        "rho": rho,
        "seed": request.seed,
    }
    run_folder.write_config(folder, config)
    scores = analytic({"entropy": lambda a: solved.score})
    result = search(
        space,
        Solved(solved),
        scores,
        ("entropy",),
        evaluations=1,
        run_dir=folder,
        resolution=request.resolution,
    )
    config["solver"] = {
        "status": solved.status,
        "optimal": solved.optimal,
        "gap": solved.gap,
        "solve_s": solved.solve_s,
    }
    run_folder.write_config(folder, config)
    return _complete(request, space, budget, result, config, t0)


def _complete(
    request: SearchRequest,
    space: SearchSpace,
    budget: Budget,
    result: SearchResult,
    config: dict[str, Any],
    t0: float,
) -> CompletedSearch:
    if result.best is None:
        raise SearchFailedError(
            f"no architecture was scored successfully ({len(result.evaluations)} evaluated); "
            f"see {result.run_dir}/runlog.jsonl"
        )
    seconds = time.perf_counter() - t0
    summary = run_folder.write_results(space, result, config, seconds)
    top = tuple(run_folder.top(result, request.top))
    return CompletedSearch(summary, config, result, space, budget, seconds, top)
