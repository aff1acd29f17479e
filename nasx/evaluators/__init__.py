"""Evaluators: turn a batch of architectures into scores for the search loop (`nasx.search`).

* `analytic`: closed-form scores of the arch alone (DeepMAD entropy, params, MACs); no JAX.
* `ProxyEvaluator` (`proxy`): zero-cost proxies (`nasx.proxies`) of the masked supernet at
  initialization, one jitted, vmapped call per chunk of architectures, so every chunk reuses one
  compile.
* `AccuracyEvaluator`, `TrainingEvaluator` (`accuracy`): held-out accuracy of each subnet with the
  weights it inherits from a trained supernet, or after a short training of its own.

Scores are measured on a *proxy network*: a space with the same choices as the searched one but
a small skeleton. `project` maps an architecture of the searched space onto it; costs and budgets
are always those of the searched space. The JAX evaluators load on first use, so that analytic
scores (and `PROXY_NAMES`, `ANALYTIC_NAMES`) come without JAX.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nasx.evaluators.analytic import analytic, analytic_scores, fill_budget, project
from nasx.evaluators.names import ANALYTIC_NAMES, PROXY_NAMES

if TYPE_CHECKING:
    from nasx.evaluators.accuracy import AccuracyEvaluator, TrainingEvaluator
    from nasx.evaluators.proxy import ProxyEvaluator

__all__ = [
    "analytic",
    "analytic_scores",
    "project",
    "fill_budget",
    "ProxyEvaluator",
    "AccuracyEvaluator",
    "TrainingEvaluator",
    "PROXY_NAMES",
    "ANALYTIC_NAMES",
]


def __getattr__(name: str):
    """The JAX evaluators on first use (importing this package must not import JAX)."""
    if name == "ProxyEvaluator":
        from nasx.evaluators.proxy import ProxyEvaluator

        return ProxyEvaluator
    if name in ("AccuracyEvaluator", "TrainingEvaluator"):
        from nasx.evaluators import accuracy

        return getattr(accuracy, name)
    raise AttributeError(f"module 'nasx.evaluators' has no attribute {name!r}")
