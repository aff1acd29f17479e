"""`solve`: DeepMAD's mathematical program on a space, the job behind ``nasx solve``.

Maximizes DeepMAD's stage-weighted entropy under a budget and the effectiveness bound
``rho <= rho0`` with CBC (`solvers.mp`), for the families DeepMAD formulates (resnet, mobilenet).

Example::

    from nasx.jobs.solve import SolveRequest, solve

    solution = solve(SolveRequest("resnet", "1G-flops"))
    solution.summary["arch"], solution.summary["score"]

References:
  Shen et al., "DeepMAD: Mathematical Architecture Design for Deep Convolutional Neural Network",
  CVPR 2023 (arXiv 2303.02165).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasx.budget import Budget, parse_budget
from nasx.hardware.latency import LatencyTable, attach
from nasx.jobs.evaluators import default_rho
from nasx.jobs.latency import table_settings
from nasx.outputs import claim_file, write_json
from nasx.space import SearchSpace
from search_spaces import make_space

if TYPE_CHECKING:
    from solvers.mp import MPResult

__all__ = ["SolveRequest", "Solution", "solve"]


@dataclass(frozen=True)
class SolveRequest:
    """Everything ``nasx solve`` takes.

    Attributes:
      space: ``resnet`` or ``mobilenet`` (optionally ``:VARIANT``).
      budget: a `Budget`, or its text (``4.13G-flops,25.55M-params``).
      rho: the effectiveness bound rho0 (None: the family's ``default_rho``).
      bits: weight bit-widths to choose from (None: the family's default).
      resolution: input side in px (None: the space's, or the latency table's).
      time_limit: the solver's time limit in seconds.
      latency_table: path of a latency table (for a latency budget); loaded unless `latency` is given.
      latency: the loaded table.
      out: also write the result JSON (`Solution.summary`) to this file.
    """

    space: str
    budget: Budget | str
    rho: float | None = None
    bits: tuple[int, ...] | None = None
    resolution: int | None = None
    time_limit: float = 60.0
    latency_table: str | None = None
    latency: LatencyTable | None = None
    out: str | Path | None = None

    def __post_init__(self) -> None:
        if isinstance(self.budget, str):
            object.__setattr__(self, "budget", parse_budget(self.budget))


@dataclass(frozen=True)
class Solution:
    """What `solve` found.

    Attributes:
      summary: the result as ``nasx solve --json`` prints it (arch, score, costs, status, ...).
      result: the solver's `solvers.mp.MPResult`.
      space: the space solved over.
      budget: the budget solved under.
      rho: the effectiveness bound used.
      rescored: the DeepMAD score of the architecture recomputed from the formulas (a check).
    """

    summary: dict[str, Any]
    result: MPResult
    space: SearchSpace
    budget: Budget
    rho: float
    rescored: float


def solve(request: SolveRequest) -> Solution:
    """Solve DeepMAD's program for `request`; write `request.out` if given (checked and locked
    before solving, written whole: `nasx.outputs.claim_file`).

    Raises:
      RunFolderError: `request.out` is a folder or cannot be written.
    """
    if not request.out:
        return _solve(request, None)
    with claim_file(request.out, example="solution.json") as out:
        return _solve(request, out)


def _solve(request: SolveRequest, out: Path | None) -> Solution:
    from solvers.mp import deepmad_score, effectiveness  # PuLP: only when solving
    from solvers.mp import solve as solve_program

    table, resolution, bits = table_settings(
        request.latency_table, request.latency, request.resolution, request.bits
    )
    space = make_space(request.space, bits)
    if table is not None:
        space = attach(space, table, resolution)
    budget = request.budget
    assert isinstance(budget, Budget)
    rho = default_rho(space.name, request.rho)
    result = solve_program(space, budget, rho_max=rho, resolution=resolution, time_limit_s=request.time_limit)
    arch = result.arch
    summary = {
        "space": space.name,
        "variant": space.variant,
        "budget": str(budget),
        "arch": arch.to_dict(),
        "fingerprint": arch.fingerprint,
        "score": result.score,
        "effectiveness": effectiveness(space, arch),
        "costs": result.costs.to_dict(),
        "status": result.status,
        "optimal": result.optimal,
        "gap": result.gap,
        "solve_s": result.solve_s,
    }
    if out is not None:
        write_json(out, summary)
    rescored = deepmad_score(space, arch, resolution=resolution)
    return Solution(summary, result, space, budget, rho, rescored)
