"""MILP building blocks shared by the DeepMAD programs: variables, one-hot choices, exact products
of binaries and bounded variables (McCormick), the effectiveness bound by secants, and `_Model`,
what a program hands to the solver.

References:
  McCormick, "Computability of global solutions to factorable nonconvex programs", Math.
  Programming 10, 1976.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulp

from nasx.space import SearchSpace, Value

__all__: list[str] = []

_MODELED = ("macs", "params", "weight_bytes", "layers")
_WORD = {
    "macs": "flops",
    "params": "params",
    "weight_bytes": "size",
    "layers": "layers",
    "latency_ms": "latency",
}
_RHO_MARGIN = 1e-6  # slack on 2E >= f(D) so the solver's tolerance cannot admit rho a hair above the bound

_Expr = pulp.LpAffineExpression | pulp.LpVariable


class _Program:
    """A minimising `pulp.LpProblem` (CBC reads a MIP start only when minimising) and helpers."""

    def __init__(self) -> None:
        self.prob = pulp.LpProblem("deepmad", pulp.LpMinimize)
        self._n = itertools.count()

    def var(
        self, lo: float | None = None, hi: float | None = None, *, binary: bool = False
    ) -> pulp.LpVariable:
        cat = pulp.LpBinary if binary else pulp.LpContinuous
        return self.prob.add_variable(f"v{next(self._n)}", lo, hi, cat=cat)  # PuLP 4 style: no warning

    def onehot(self, options: Sequence[Value]) -> dict[Value, pulp.LpVariable]:
        """Binaries, one per option, exactly one of which is 1."""
        x = {v: self.var(binary=True) for v in options}
        self.prob += pulp.lpSum(x.values()) == 1
        return x

    def named(self, expr: _Expr, lo: float, hi: float) -> pulp.LpVariable:
        """`expr` as one continuous variable (an equality row), so rows using it stay sparse."""
        v = self.var(lo, hi)
        self.prob += v == expr
        return v

    def product(
        self, x: Mapping[Value, _Expr], e: pulp.LpVariable, lo: float, hi: float
    ) -> dict[Value, pulp.LpVariable]:
        """``u_v = x_v * e`` for one-hot binaries ``x`` and ``lo <= e <= hi``, exactly.

        McCormick's four inequalities pin ``u_v`` to ``e`` when ``x_v = 1`` and to 0 otherwise;
        ``sum_v u_v = e`` holds at integral points and tightens the relaxation.
        """
        out = {}
        for v, xv in x.items():
            u = self.var(min(lo, 0.0), max(hi, 0.0))
            self.prob += u <= hi * xv
            self.prob += u >= lo * xv
            self.prob += u <= e - lo * (1 - xv)
            self.prob += u >= e - hi * (1 - xv)
            out[v] = u
        self.prob += pulp.lpSum(out.values()) == e
        return out

    def rho_bound(self, entropy: _Expr, layers: _Expr, attainable: Sequence[int], rho_max: float) -> None:
        """``D / exp(2E / D) <= rho_max``, i.e. ``2E >= f(D) = D (log D - log rho_max)``.

        `f` is convex, so at integral ``D`` it equals the maximum of its secants between
        consecutive attainable values: one linear inequality per secant, exact.
        """
        ds = sorted(set(attainable))

        def f(d: int) -> float:
            return d * (math.log(d) - math.log(rho_max)) + _RHO_MARGIN

        if len(ds) == 1:
            self.prob += 2 * entropy >= f(ds[0])
        for d0, d1 in itertools.pairwise(ds):
            slope = (f(d1) - f(d0)) / (d1 - d0)
            self.prob += 2 * entropy - slope * layers >= f(d0) - slope * d0


class _Integer:
    """A choice among sorted integer `options`: one general integer variable when they are
    consecutive (branching on it halves its range, where one-hot branching fixes one value),
    else one-hot binaries."""

    def __init__(self, p: _Program, options: Sequence[int]) -> None:
        self.options = tuple(options)
        if self.options == tuple(range(self.options[0], self.options[-1] + 1)):
            self._var = p.prob.add_variable(
                f"v{next(p._n)}", self.options[0], self.options[-1], cat=pulp.LpInteger
            )
            self._onehot = None
            self.expr = pulp.LpAffineExpression(self._var)
        else:
            self._var, self._onehot = None, p.onehot(self.options)
            self.expr = pulp.lpSum(d * x for d, x in self._onehot.items())

    def value(self) -> int:
        if self._onehot is not None:
            return _chosen(self._onehot)
        return round(self._var.varValue)

    def start(self, d: int) -> None:
        if self._onehot is not None:
            for option, x in self._onehot.items():
                x.setInitialValue(int(option == d))
        else:
            self._var.setInitialValue(d)


def _chosen(x: Mapping[Value, pulp.LpVariable]) -> Value:
    return max(x, key=lambda v: x[v].varValue or 0.0)


def _bits_keys(space: SearchSpace, bits: int) -> dict[str, Value]:
    """Every ``bits`` choice of `space` set to `bits` (none if the space has no bits choice)."""
    return {
        c.name: bits
        for c in space.choices
        if c.name == "bits" or c.name.endswith(".bits") or c.name.startswith("bits.")
    }


@dataclass
class _Model:
    """A DeepMAD program: objective, modelled costs, how to read the arch back and to warm-start."""

    program: _Program
    score: pulp.LpAffineExpression
    costs: dict[str, pulp.LpAffineExpression]
    decode: Callable[[], dict[str, Value]]
    start: Callable[[Mapping[str, Value]], bool] = lambda arch: False  # True if a MIP start was set


@dataclass(frozen=True)
class _Setting:
    """Everything a program depends on besides its grid and the rho bound."""

    space: Any
    resolution: int
    bits: int
    stage_weights: Sequence[float] | None
    monotone_widths: bool
