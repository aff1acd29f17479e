"""Typed errors: every bad input raises a `NasxError` subclass whose message names the value.

The CLI prints `str(error)` on one line and exits with status 2, so messages say what was wrong
and what is accepted, e.g. ``budget "600Q-flops": unknown unit "Q"; use K, M, G or T``.
"""

from __future__ import annotations

__all__ = [
    "StepTooLargeError",
    "NasxError",
    "InvalidArchError",
    "ArchFormatError",
    "UnknownSpaceError",
    "UnknownPresetError",
    "BudgetParseError",
    "BudgetCostError",
    "InfeasibleBudgetError",
    "UnsupportedSpaceError",
    "SolverTimeLimitError",
    "RunFolderError",
    "DatasetError",
    "UnknownEvaluatorError",
    "UnknownObjectiveError",
    "NonFiniteLossError",
]


class NasxError(Exception):
    """Base class of every error nasx raises on bad input."""


class InvalidArchError(NasxError, ValueError):
    """An architecture does not fit its search space (missing, extra or out-of-range choice)."""


class ArchFormatError(NasxError, ValueError):
    """An architecture file or string is not valid JSON / not a mapping of choices."""


class UnknownSpaceError(NasxError, KeyError):
    """A search space name is not one nasx knows."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class UnknownPresetError(NasxError, KeyError):
    """A preset name is not defined for the search space."""

    def __str__(self) -> str:
        return str(self.args[0])


class BudgetParseError(NasxError, ValueError):
    """A budget string is malformed."""


class BudgetCostError(NasxError, ValueError):
    """A budget constrains a cost the space or setting cannot measure (e.g. latency without a table)."""


class InfeasibleBudgetError(NasxError, ValueError):
    """No architecture of the space satisfies the budget."""


class DatasetError(NasxError, ValueError):
    """A dataset is missing or not in the expected format (the message names the path and format)."""


class UnsupportedSpaceError(NasxError, TypeError):
    """A solver has no formulation for this search space or skeleton (e.g. the MP solver on nasnet)."""


class SolverTimeLimitError(NasxError, RuntimeError):
    """A solver found no feasible architecture within its time limit (feasibility is unknown)."""


class RunFolderError(NasxError, OSError):
    """A run folder cannot be used: it holds another run (resume it, or choose another folder), holds
    no run where one is needed (report, export, ``--resume``), or its run cannot be resumed as asked."""


class UnknownEvaluatorError(NasxError, KeyError):
    """An evaluator (proxy, analytic score or supernet:CKPT) nasx does not know."""

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownObjectiveError(NasxError, KeyError):
    """An objective names neither a score of the evaluator nor an analytic cost."""

    def __str__(self) -> str:
        return str(self.args[0])


class StepTooLargeError(NasxError, MemoryError):
    """A compiled train step needs more memory than the device has free (checked before it runs)."""


class NonFiniteLossError(NasxError, ArithmeticError):
    """Training diverged: the loss became NaN or infinite (the checkpoints written so far are kept)."""
