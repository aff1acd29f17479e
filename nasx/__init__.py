"""nasx: neural architecture search and compression on JAX.

The data layer (spaces, costs, budgets) imports no JAX; see DESIGN.md for the layout.
"""

from __future__ import annotations

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

__version__ = "0.1.0"

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
    """`load_family` on first use: it imports JAX, which the data layer above must not."""
    if name == "load_family":
        from nasx.export.load import load_family

        return load_family
    raise AttributeError(f"module 'nasx' has no attribute {name!r}")
