"""The evaluator names a user types (``nasx search --evaluator``), written once and JAX-free.

`PROXY_NAMES` are the zero-cost proxies of `nasx.proxies` (its ``PROXIES`` dict holds their
functions), in the order the CLI lists them; `ANALYTIC_NAMES` the closed-form scores of
`nasx.evaluators.analytic`. The CLI builds its help from these without importing JAX.
"""

from __future__ import annotations

__all__ = ["PROXY_NAMES", "ANALYTIC_NAMES"]

PROXY_NAMES = ("synflow", "naswot", "jacob_cov", "snip", "grad_norm", "zen")
"""Zero-cost proxies (`nasx.proxies.PROXIES` has one entry per name)."""

ANALYTIC_NAMES = ("entropy", "params", "macs")
"""Closed-form scores: DeepMAD's entropy (stage-structured spaces), parameter count, MACs."""
