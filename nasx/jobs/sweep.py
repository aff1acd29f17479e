"""`sweep`: one whole search per (budget, seed), run as Ray Tune trials (``nasx sweep``).

Each trial runs `nasx.jobs.search.run_search` on a worker into ``OUT/BUDGET-sSEED/`` (a retried
trial resumes its own run log); the best of each goes to ``OUT/sweep.json``. Needs ``nasx[ray]``.

Every trial's search is checked before Ray starts any (`check_sweep`: space, strategy, evaluator,
objectives, a budget some architecture meets, the run folders), so a bad cell of the grid is one
`SweepCellError` line, not an error inside each trial.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import itertools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from nasx import outputs
from nasx.budget import Budget, parse_budget
from nasx.errors import NasxError
from nasx.jobs.cluster import ray_tune
from nasx.jobs.search import SearchPlan, SearchRequest, check_search, run_search

__all__ = ["SweepRequest", "SweepResult", "SweepRequestError", "SweepCellError", "check_sweep", "sweep"]


class SweepRequestError(NasxError, ValueError):
    """A sweep's grid is malformed: no budget or seed, one given twice, negative retries."""


class SweepCellError(NasxError, ValueError):
    """One (budget, seed) of a sweep's grid cannot run; the message names the cell, and the
    error's ``__cause__`` is what its search would have raised."""


@dataclass(frozen=True)
class SweepRequest:
    """A sweep: the search of `search` for every budget of `budgets` and seed of `seeds`.

    Attributes:
      search: what every search shares (its budget, seed, out, resume and ray are set per trial).
      budgets: budgets as typed (``200M-flops``); they name the runs' folders and the rows.
      seeds: seeds of each budget's searches.
      address: the Ray cluster ("auto", ``ray://HOST:PORT``, or "local": a private one here).
      max_failures: retries of a failed trial.
      out: the sweep folder (None: ``runs/sweep-SPACE``).
    """

    search: SearchRequest
    budgets: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    address: str = "local"
    max_failures: int = 2
    out: str | Path | None = None


@dataclass(frozen=True)
class SweepResult:
    """One row per (budget, seed) (as in ``sweep.json``: score, costs, best, run folder, or the
    error the trial stopped with), and the sweep folder."""

    rows: list[dict[str, Any]]
    run_dir: Path

    @property
    def ok(self) -> bool:
        return all("error" not in r for r in self.rows)


def check_sweep(request: SweepRequest) -> list[SearchPlan]:
    """Check every trial of the sweep as `nasx.jobs.search.check_search` does (cheap: no evaluator
    is built, nothing is written); returns their plans in (budget, seed) order.

    Raises:
      SweepRequestError: no budget or seed, one given twice, or negative `max_failures`.
      BudgetParseError: a malformed budget.
      RunFolderError: the sweep folder cannot be used (a file, or a folder of something else).
      SweepCellError: the first (budget, seed) whose search cannot run, and why.
    """
    for what, values in (("budget", request.budgets), ("seed", request.seeds)):
        if not values:
            raise SweepRequestError(f"a sweep needs at least one {what}")
        twice = sorted({str(v) for v in values if list(values).count(v) > 1})
        if twice:
            raise SweepRequestError(
                f"{what} {', '.join(twice)} given twice: its trials would write the same run folder"
            )
    if request.max_failures < 0:
        raise SweepRequestError(f"max_failures {request.max_failures}: expected 0 or more")
    budgets = [parse_budget(b) for b in request.budgets]  # a malformed budget fails here, not in a trial
    out = outputs.check(_folder(request), "sweep")
    plans = []
    for (text, budget), seed in itertools.product(zip(request.budgets, budgets, strict=True), request.seeds):
        try:
            plans.append(check_search(_trial_request(request.search, str(out), text, seed, budget)))
        except NasxError as e:
            raise SweepCellError(f'sweep trial budget "{text}", seed {seed}: {e}') from e
    return plans


def sweep(request: SweepRequest, *, on_start: Callable[[Path], None] | None = None) -> SweepResult:
    """Run the sweep on Ray; `on_start` is called with the sweep folder once Ray is connected.

    Every trial is checked first (`check_sweep`), and the sweep folder is locked while the sweep runs.

    Raises:
      SweepRequestError, BudgetParseError, RunFolderError, SweepCellError: see `check_sweep`
        (before Ray starts).
      OutputBusyError: another process is writing the sweep folder.
      RayMissingError, RayAddressError: no Ray, or no cluster at the address.
    """
    tune = ray_tune()
    check_sweep(request)
    with outputs.claim(_folder(request), "sweep") as out:
        return _sweep(tune, request, out, on_start)


def _folder(request: SweepRequest) -> Path:
    return Path(request.out or f"runs/sweep-{request.search.space}").expanduser().resolve()


def _sweep(
    tune: ModuleType, request: SweepRequest, out: Path, on_start: Callable[[Path], None] | None
) -> SweepResult:
    tune.connect(request.address)
    if on_start is not None:
        on_start(out)
    with contextlib.redirect_stdout(sys.stderr):  # Tune's reports: stdout is for --json
        summaries = tune.run_sweep(
            functools.partial(_search_one, request.search, str(out)),
            list(request.budgets),
            list(request.seeds),
            storage=out / "ray",
            max_failures=request.max_failures,
        )
    rows = []
    for (budget, seed), s in zip(itertools.product(request.budgets, request.seeds), summaries, strict=True):
        if "error" in s:
            rows.append({"budget": budget, "seed": seed, "error": s["error"]})
        else:
            rows.append(
                {
                    "budget": budget,
                    "seed": seed,
                    "score": s["score"],
                    "macs": s["costs"]["macs"],
                    "params": s["costs"]["params"],
                    "best": s["best"],
                    "run_dir": s["run_dir"],
                }
            )
    outputs.write_json(out / "sweep.json", rows)
    return SweepResult(rows, out)


def _trial_request(
    base: SearchRequest, out: str, budget: str, seed: int, parsed: Budget | None = None
) -> SearchRequest:
    """The search of the trial (`budget`, `seed`) of a sweep into `out`."""
    run_dir = Path(out) / f"{budget}-s{seed}"
    return dataclasses.replace(
        base,
        budget=parsed if parsed is not None else parse_budget(budget),
        seed=seed,
        out=str(run_dir),
        resume=(run_dir / "runlog.jsonl").exists(),  # a retried trial continues its own run log
        ray=None,
    )


def _search_one(base: SearchRequest, out: str, budget: str, seed: int) -> dict[str, Any]:
    """One search inside a trial (module-level: Ray pickles it); its summary."""
    with contextlib.redirect_stdout(io.StringIO()):
        return run_search(_trial_request(base, out, budget, seed)).summary
