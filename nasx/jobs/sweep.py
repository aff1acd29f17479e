"""`sweep`: one whole search per (budget, seed), run as Ray Tune trials (``nasx sweep``).

Each trial runs `nasx.jobs.search.run_search` on a worker into ``OUT/BUDGET-sSEED/`` (a retried
trial resumes its own run log); the best of each goes to ``OUT/sweep.json``. Needs ``nasx[ray]``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import itertools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasx.budget import parse_budget
from nasx.jobs.cluster import ray_tune
from nasx.jobs.search import SearchRequest, run_search

__all__ = ["SweepRequest", "SweepResult", "sweep"]


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


def sweep(request: SweepRequest, *, on_start: Callable[[Path], None] | None = None) -> SweepResult:
    """Run the sweep on Ray; `on_start` is called with the sweep folder once Ray is connected.

    Raises:
      BudgetParseError: a malformed budget (before any trial runs).
      RayMissingError, RayAddressError: no Ray, or no cluster at the address.
    """
    tune = ray_tune()
    for b in request.budgets:
        parse_budget(b)  # a malformed budget fails here, not in a trial
    out = Path(request.out or f"runs/sweep-{request.search.space}").expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
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
    (out / "sweep.json").write_text(json.dumps(rows, indent=2) + "\n")
    return SweepResult(rows, out)


def _search_one(base: SearchRequest, out: str, budget: str, seed: int) -> dict[str, Any]:
    """One search inside a trial (module-level: Ray pickles it); its summary."""
    run_dir = Path(out) / f"{budget}-s{seed}"
    request = dataclasses.replace(
        base,
        budget=parse_budget(budget),
        seed=seed,
        out=str(run_dir),
        resume=(run_dir / "runlog.jsonl").exists(),  # a retried trial continues its own run log
        ray=None,
    )
    with contextlib.redirect_stdout(io.StringIO()):
        return run_search(request).summary
