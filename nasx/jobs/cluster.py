"""A search's evaluations on a Ray cluster (``nasx search --ray``; the extra ``nasx[ray]``).

The strategy, the run log and the resume logic stay in this process; each Ray Tune trial scores
a chunk of a batch with an evaluator its worker builds once from the (picklable) spec and
`EvaluatorSettings` (`nasx.jobs.evaluators.worker_evaluator`). See `nasx.ray_tune`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from nasx.errors import NasxError
from nasx.jobs.evaluators import EvaluatorSettings, worker_evaluator
from nasx.search import SearchRun

__all__ = ["RaySettings", "RayMissingError", "ray_tune", "search_on_ray"]


class RayMissingError(NasxError, ImportError):
    """Ray is not installed."""


@dataclass(frozen=True)
class RaySettings:
    """Where and how a search's evaluations run on Ray.

    Attributes:
      address: "auto" (the cluster ``ray start --head`` runs here or that this machine joined),
        ``ray://HOST:PORT``, or "local" (a private one in this process).
      chunk: architectures per trial (a worker scores, and pads to, one chunk at a time).
      rounds: with a ``train:STEPS`` evaluator, accuracy reports per architecture for ASHA.
    """

    address: str
    chunk: int = 4
    rounds: int = 4


def ray_tune() -> ModuleType:
    """`nasx.ray_tune`, or `RayMissingError` naming the extra to install."""
    try:
        from nasx import ray_tune as module
    except ImportError as e:
        raise RayMissingError(f'--ray needs Ray Tune ({e}); install it with: pip install "nasx[ray]"') from e
    return module


def search_on_ray(
    run: SearchRun, *, evaluator: str, settings: EvaluatorSettings, ray: RaySettings, storage: Path
) -> None:
    """Score every remaining batch of the open `run` as Ray Tune trials (chunks of a batch), as
    `SearchRun.evaluate_all` does in this process.

    The evaluator is given by its spec and settings (each worker builds its own), `ray` says where
    it runs; Tune's records go to `storage`.
    """
    tune = ray_tune()
    tune.connect(ray.address)
    worker = dataclasses.replace(settings, batch_size=ray.chunk)  # a worker scores one chunk at a time
    make_evaluator: Callable[[], Any] = functools.partial(worker_evaluator, evaluator, run.space, worker)
    rounds = ray.rounds if evaluator.startswith("train:") else None  # ASHA over training rounds
    with contextlib.redirect_stdout(sys.stderr):  # Tune's reports: stdout is for --json
        tune.run_search(run, make_evaluator, chunk=ray.chunk, storage=storage, rounds=rounds)
