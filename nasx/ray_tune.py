"""Ray Tune for cluster jobs: Tune schedules the evaluations, nasx's strategies choose them.

`StrategySearcher` is a ``ray.tune.search.Searcher`` that drives any nasx ask/tell strategy
through a `nasx.search.SearchRun`: ``suggest`` hands out chunks of the strategy's current batch,
one chunk per trial; ``on_trial_complete`` collects the scores, and when the whole batch is in,
the run records it in the run log (flushed) and tells the strategy, exactly as the in-process loop
does. So for the same seed and evaluator a Ray search asks, logs and finds what an in-process
search does, and it resumes from the same run log.

`ChunkTrial` is the trial: a ``tune.Trainable`` that builds its evaluator once per worker
(`setup`) and scores a chunk of architectures per trial, reused across trials
(``reuse_actors``), so a worker compiles its proxy once. A trial that raises, or whose worker
dies, is retried by Tune (`FailureConfig`); if it still fails, its architectures are recorded as
failed and the search goes on.

`run_search` runs a whole search on a cluster; `run_sweep` runs one in-process search per
(budget, seed) as Tune trials. Results go to the run folder (``storage_path``), never to
``~/ray_results``. Needs the extra ``nasx[ray]``; the core never imports this module.

References:
  Liaw et al., "Tune: A Research Platform for Distributed Model Selection and Training", 2018.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.search import Searcher

from nasx.errors import NasxError
from nasx.search import Evaluator, Outcome, SearchRun, score
from nasx.space import Arch

__all__ = [
    "RayAddressError",
    "StrategySearcher",
    "ChunkTrial",
    "TrainTrial",
    "connect",
    "run_search",
    "run_sweep",
]

log = logging.getLogger(__name__)


class RayAddressError(NasxError, ConnectionError):
    """No Ray cluster at the given address."""


def connect(address: str, *, num_cpus: int | None = None) -> None:
    """Join the cluster at `address` ("auto": the one ``ray start --head`` started here; "local":
    start a private one in this process). Does nothing if Ray is already initialized."""
    if ray.is_initialized():
        return
    try:
        if address == "local":
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise RayAddressError(
            f'no Ray cluster at "{address}" ({e}); start one with `ray start --head`, '
            "or use --ray local for a private one on this machine"
        ) from e


class StrategySearcher(Searcher):
    """A Tune searcher driving a nasx `SearchRun`: one trial per chunk of a batch."""

    def __init__(self, run: SearchRun, chunk: int) -> None:
        super().__init__(metric=None, mode=None)
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, not {chunk}")
        self.run, self.chunk = run, chunk
        self._queue: list[tuple[int, list[Arch]]] = []  # chunks of the batch not yet suggested
        self._running: dict[str, tuple[int, list[Arch]]] = {}
        self._outcomes: dict[int, list[Outcome]] = {}
        self._finished = False

    def __getstate__(self) -> dict:
        # Tune pickles its config, searcher included, for its own restore; nasx resumes from the
        # run log instead (nasx search --resume), so the live run (an open log) stays behind.
        return {**self.__dict__, "run": None}

    def save(self, checkpoint_path: str) -> None:
        Path(checkpoint_path).write_text(json.dumps({"resume": "nasx search --resume RUN_DIR"}))

    def suggest(self, trial_id: str) -> dict | str | None:
        if not self._queue and not self._running:  # the batch is recorded: ask the next
            archs = None if self._finished else self.run.next_batch()
            if archs is None:
                self._finished = True
                return Searcher.FINISHED
            self._queue = [(i, archs[i : i + self.chunk]) for i in range(0, len(archs), self.chunk)]
            self._outcomes = {}
        if not self._queue:
            return None  # the rest of this batch is running: its scores decide what comes next
        start, archs = self._queue.pop(0)
        self._running[trial_id] = (start, archs)
        return {"archs": json.dumps([a.to_dict() for a in archs])}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self._running:
            return
        start, archs = self._running.pop(trial_id)
        if error or not result or "outcomes" not in result:
            why = f"Ray trial {trial_id} failed after its retries" + (" (no result)" if not error else "")
            outcomes: list[Outcome] = [({}, why) for _ in archs]
        else:
            outcomes = [(s, e) for s, e in json.loads(result["outcomes"])]
        self._outcomes[start] = outcomes
        if not self._queue and not self._running:
            self.run.complete([o for i in sorted(self._outcomes) for o in self._outcomes[i]])


class ChunkTrial(tune.Trainable):
    """Scores the architectures of its config (a chunk) with an evaluator built once per worker.

    Built with ``tune.with_parameters(ChunkTrial, make_evaluator=...)``: `make_evaluator` is a
    picklable zero-argument callable returning a nasx evaluator.
    """

    def setup(self, config: dict, make_evaluator: Callable[[], Evaluator] | None = None) -> None:
        if make_evaluator is None:
            raise ValueError("ChunkTrial needs make_evaluator (tune.with_parameters)")
        self.evaluate = make_evaluator()
        self.archs = config["archs"]

    def step(self) -> dict:
        archs = [Arch(a) for a in json.loads(self.archs)]
        outcomes = score(self.evaluate, archs)
        return {"outcomes": json.dumps([(dict(s), e) for s, e in outcomes]), "done": True}

    def reset_config(self, new_config: dict) -> bool:
        self.archs = new_config["archs"]  # the evaluator (and its compiled functions) stays
        return True

    def save_checkpoint(self, checkpoint_dir: str) -> dict:
        return {}  # a chunk is scored in one step: a retried trial scores it again

    def load_checkpoint(self, checkpoint: dict | str) -> None:
        pass


class TrainTrial(tune.Trainable):
    """Trains one architecture (a `nasx.evaluators.TrainingEvaluator`) in `rounds` rounds,
    reporting held-out accuracy after each, so a scheduler (ASHA) can stop it early."""

    def setup(self, config: dict, make_evaluator: Callable[[], Any] | None = None, rounds: int = 4) -> None:
        if make_evaluator is None:
            raise ValueError("TrainTrial needs make_evaluator (tune.with_parameters)")
        self.trainer, self.rounds = make_evaluator(), rounds
        self.reset_config(config)

    def reset_config(self, new_config: dict) -> bool:
        (arch,) = [Arch(a) for a in json.loads(new_config["archs"])]
        self.state = self.trainer.start(arch)
        return True

    def step(self) -> dict:
        per_round = -(-self.trainer.steps // self.rounds)
        self.state = self.trainer.advance(self.state, per_round)
        acc, steps = self.trainer.accuracy(self.state), self.state["step"]
        outcome = ({"acc": acc, "steps": float(steps)}, None)
        return {"acc": acc, "outcomes": json.dumps([outcome]), "done": steps >= self.trainer.steps}

    def save_checkpoint(self, checkpoint_dir: str) -> dict:
        return {}  # a retried trial trains its architecture again from the start

    def load_checkpoint(self, checkpoint: dict | str) -> None:
        pass


def run_search(
    run: SearchRun,
    make_evaluator: Callable[[], Any],
    *,
    chunk: int,
    storage: Path,
    max_failures: int = 2,
    cpus_per_trial: float = 1,
    rounds: int | None = None,
) -> None:
    """Drive `run` to its end on the connected Ray cluster.

    Cheap evaluators (`rounds` None): one `ChunkTrial` per chunk of each batch. Training
    evaluators (``rounds``, e.g. 4): one `TrainTrial` per architecture, reporting ``acc`` after
    each of `rounds` rounds, with ASHA stopping the poor ones early (a stopped architecture keeps
    the accuracy it last reported, and ``steps`` says how far it trained). `storage` (absolute)
    receives Tune's own records; the run log is `run`'s.
    """
    if rounds is None:
        trainable = tune.with_parameters(ChunkTrial, make_evaluator=make_evaluator)
        scheduler = None
    else:
        from ray.tune.schedulers import ASHAScheduler

        trainable = tune.with_parameters(TrainTrial, make_evaluator=make_evaluator, rounds=rounds)
        scheduler = ASHAScheduler(
            metric="acc", mode="max", time_attr="training_iteration", max_t=rounds, grace_period=1
        )
        chunk = 1
    searcher = StrategySearcher(run, chunk)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": cpus_per_trial}),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=-1,  # until the searcher says FINISHED
            reuse_actors=True,
            trial_dirname_creator=lambda trial: f"trial_{trial.trial_id}",
        ),
        run_config=tune.RunConfig(
            name="tune",
            storage_path=str(Path(storage).resolve()),
            failure_config=tune.FailureConfig(max_failures=max_failures),
            verbose=0,
        ),
    )
    tuner.fit()


def _sweep_trial(config: dict, search_one: Callable[[str, int], dict] | None = None) -> None:
    assert search_one is not None
    tune.report({"summary": json.dumps(search_one(config["budget"], config["seed"]))})


def run_sweep(
    search_one: Callable[[str, int], dict],
    budgets: Sequence[str],
    seeds: Sequence[int],
    *,
    storage: Path,
    max_failures: int = 2,
    cpus_per_trial: float = 1,
) -> list[dict[str, Any]]:
    """One trial per (budget, seed), each running ``search_one(budget, seed) -> summary`` (a
    whole search, writing its own run folder); returns the summaries in (budget, seed) order.
    A trial that fails after its retries gives ``{"budget", "seed", "error"}``."""
    trainable = tune.with_resources(
        tune.with_parameters(_sweep_trial, search_one=search_one), {"cpu": cpus_per_trial}
    )
    tuner = tune.Tuner(
        trainable,
        param_space={"budget": tune.grid_search(list(budgets)), "seed": tune.grid_search(list(seeds))},
        tune_config=tune.TuneConfig(trial_dirname_creator=lambda trial: f"sweep_{trial.trial_id}"),
        run_config=tune.RunConfig(
            name="tune",
            storage_path=str(Path(storage).resolve()),
            failure_config=tune.FailureConfig(max_failures=max_failures),
            verbose=0,
        ),
    )
    results = tuner.fit()
    by_key = {}
    for r in results:
        key = (r.config["budget"], r.config["seed"])
        if r.error is None and r.metrics and "summary" in r.metrics:
            by_key[key] = json.loads(r.metrics["summary"])
        else:
            by_key[key] = {"budget": key[0], "seed": key[1], "error": str(r.error)}
    return [by_key[(b, s)] for b in budgets for s in seeds]
