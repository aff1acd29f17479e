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
    "parse_budget",
    "sample_admitted",
]
