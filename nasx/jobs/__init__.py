"""Jobs: every task the CLI runs, as a library call taking a plain frozen request dataclass.

This is the layer where the search spaces (``search_spaces``), the strategies (``solvers``) and the
engine meet; ``nasx.cli`` only parses arguments, calls one of these and prints its result, and
`nasx.jobs.sweep` runs `run_search` in Ray trials. Each module's docstring has an example.

========================  ===========================  =========================
job                       request                      command
========================  ===========================  =========================
`run_search`              `SearchRequest`              ``nasx search``
`solve`                   `SolveRequest`               ``nasx solve``
`sweep`                   `SweepRequest`               ``nasx sweep``
`train_supernet`          `TrainRequest`               ``nasx train-supernet``
`report_run`              `ReportRequest`              ``nasx report``
`export_front`            `ExportRequest`              ``nasx export``
`predict`                 `PredictRequest`             ``nasx predict``
`profile_space`           `ProfileRequest`             ``nasx profile``
`validate_table`          `ValidateRequest`            ``nasx profile --validate``
`benchmark_nb201`         `Nb201Request`               ``nasx benchmark nb201``
========================  ===========================  =========================
"""

from __future__ import annotations

from nasx.jobs.benchmark import Nb201Request, benchmark_nb201
from nasx.jobs.export import ExportRequest, export_front
from nasx.jobs.predict import PredictRequest, predict
from nasx.jobs.profile import ProfileRequest, ValidateRequest, profile_space, validate_table
from nasx.jobs.report import ReportRequest, report_run
from nasx.jobs.search import SearchRequest, run_search
from nasx.jobs.solve import SolveRequest, solve
from nasx.jobs.sweep import SweepRequest, sweep
from nasx.jobs.train import TrainRequest, train_supernet

__all__ = [
    "run_search",
    "SearchRequest",
    "solve",
    "SolveRequest",
    "sweep",
    "SweepRequest",
    "train_supernet",
    "TrainRequest",
    "report_run",
    "ReportRequest",
    "export_front",
    "ExportRequest",
    "predict",
    "PredictRequest",
    "profile_space",
    "ProfileRequest",
    "validate_table",
    "ValidateRequest",
    "benchmark_nb201",
    "Nb201Request",
]
