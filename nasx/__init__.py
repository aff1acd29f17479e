"""nasx: neural architecture search and compression on JAX.

The data layer (spaces, costs, budgets) imports no JAX. Every job the CLI runs is a library call
(`nasx.jobs`, also reachable as ``nasx.run_search`` etc.); see the README's "Layout".
"""

from __future__ import annotations

import importlib

from nasx.budget import Budget, format_amount, parse_budget, sample_admitted
from nasx.costs import Costs, conv2d, dense
from nasx.errors import (
    ArchFormatError,
    BudgetCostError,
    BudgetParseError,
    InfeasibleBudgetError,
    InvalidArchError,
    NasxError,
    UnknownPresetError,
    UnknownSpaceError,
)
from nasx.space import AbstractSearchSpace, Arch, Choice, Preset, SearchSpace
from nasx.version import __version__ as __version__

__all__ = [
    "AbstractSearchSpace",
    "Arch",
    "ArchFormatError",
    "Budget",
    "BudgetCostError",
    "BudgetParseError",
    "Choice",
    "Costs",
    "InfeasibleBudgetError",
    "InvalidArchError",
    "NasxError",
    "Preset",
    "SearchSpace",
    "UnknownPresetError",
    "UnknownSpaceError",
    "conv2d",
    "dense",
    "format_amount",
    "load_family",
    "parse_budget",
    "sample_admitted",
]


def __getattr__(name: str):
    """`load_family` and the jobs (`nasx.jobs`: ``nasx.run_search`` etc.) on first use, so that
    ``import nasx`` stays as light as the data layer it re-exports."""
    if name == "load_family":
        from nasx.export.load import load_family

        return load_family
    if not name.startswith("_"):
        jobs = importlib.import_module("nasx.jobs")  # during its own import, __all__ is not yet set
        if name in getattr(jobs, "__all__", ()):
            return getattr(jobs, name)
    raise AttributeError(f"module 'nasx' has no attribute {name!r}")
