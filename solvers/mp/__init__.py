"""DeepMAD's mathematical program as a mixed-integer linear program (PuLP + CBC).

DeepMAD designs a CNN by maximising its *weighted multi-scale entropy* subject to budgets and to an
*effectiveness* bound. `deepmad_score` and `effectiveness` evaluate those formulas on any
architecture of the `resnet` and `mobilenet` spaces; `solve` searches a space for the architecture
with the largest score under a `Budget` by solving mixed-integer linear programs with CBC.

Modules, one concept each:

* `formulas`: the score and effectiveness formulas on any architecture (no PuLP).
* `program`: MILP building blocks (one-hot choices, McCormick products, the rho bound by secants).
* `grids`: a ResNet space's rules and option grids (full, coarse, neighbourhoods).
* `resnet` / `mobilenet`: the program over a ResNet grid (an extended formulation) and over an
  MBConv space (linear without products).
* `cbc`: solving one program and checking its architecture against the space.
* `solver`: `solve`, the entry point, and its ``method`` (one full program, or `coarse_to_fine` over
  sub-grids); `result`: what it returns; `diagnose`: why it found nothing.

Limits: MBConv programs and small ResNet grids are solved to proven optimality (the tests check
them against brute force); on large grids the result is a local optimum (`coarse_to_fine`). Costs
in the program are the spaces' own analytic costs, and `solve` checks the returned architecture
against ``space.costs`` and the rho bound. A budget on latency is modelled for MBConv spaces with
a latency table (per-option block latencies add up, `nasx.hardware.latency`), not otherwise. On a
coarse-to-fine solve, an infeasible budget is diagnosed on the coarse grid (`diagnose`).

References:
  Shen et al., "DeepMAD: Mathematical Architecture Design for Deep Convolutional Neural Network",
  CVPR 2023 (arXiv 2303.02165).
  TinyNAS, alibaba/lightweight-neural-architecture-search @ 8ccaf889
  (``tinynas/scores/compute_deepmad.py``, ``tinynas/models/cnnnet.py``).
"""

from nasx.errors import SolverTimeLimitError, UnsupportedSpaceError
from solvers.mp.formulas import deepmad_score, effectiveness
from solvers.mp.result import MPResult
from solvers.mp.solver import FULL_GRID_MAX_TUPLES, solve

__all__ = [
    "MPResult",
    "UnsupportedSpaceError",
    "SolverTimeLimitError",
    "FULL_GRID_MAX_TUPLES",
    "solve",
    "deepmad_score",
    "effectiveness",
]
