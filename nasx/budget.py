"""Budgets: ``"600M-flops,5.3M-params,4MB-size,20ms-latency,60-layers"`` -> `Budget`.

Each comma-separated part is ``<amount><unit>-<cost>``:

=========  ======================  ============================  =========================
cost       constrains              units                         example
=========  ======================  ============================  =========================
flops      `Costs.macs` (MACs)     K, M, G, T (x1000 each)       ``600M-flops``
params     `Costs.params`          K, M, G, T                    ``5.3M-params``
size       `Costs.weight_bytes`    B, KB, MB, GB; KiB, MiB, GiB  ``4MB-size``
latency    `Costs.latency_ms`      us, ms, s                     ``20ms-latency``
layers     `Costs.layers`          none                          ``60-layers``
=========  ======================  ============================  =========================

"flops" means multiply-accumulates, the convention of the NASNet, MobileNet, OFA and DeepMAD
papers (a 600M-flops network does 600 million multiply-adds per image). Every limit is
inclusive: a network is admitted when each cost is <= its limit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from nasx.costs import Costs
from nasx.errors import BudgetCostError, BudgetParseError, InfeasibleBudgetError

if TYPE_CHECKING:
    from nasx.space import Arch, SearchSpace

__all__ = ["Budget", "parse_budget", "format_amount", "sample_admitted"]

_COSTS = {  # budget word -> (Costs field, units -> multiplier, unit hint)
    "flops": ("macs", {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}, "K, M, G or T"),
    "params": ("params", {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}, "K, M, G or T"),
    "size": (
        "weight_bytes",
        {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30},
        "B, KB, MB, GB, KiB, MiB or GiB",
    ),
    "latency": ("latency_ms", {"US": 1e-3, "MS": 1.0, "S": 1e3}, "us, ms or s"),
    "layers": ("layers", {"": 1}, "no unit (e.g. 60-layers)"),
}
_ALIASES = {"macs": "flops", "mac": "flops", "madds": "flops", "param": "params", "layer": "layers"}
_WORD = {field: word for word, (field, _, _) in _COSTS.items()}
_AMOUNT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*$")


@dataclass(frozen=True)
class Budget:
    """Upper limits on costs; None means unconstrained. Build with `parse_budget`."""

    macs: int | None = None
    params: int | None = None
    weight_bytes: int | None = None
    latency_ms: float | None = None
    layers: int | None = None

    def limits(self) -> dict[str, int | float]:
        """The constrained `Costs` fields and their limits."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def violations(self, costs: Costs) -> dict[str, tuple[int | float, int | float]]:
        """``{field: (value, limit)}`` for every limit `costs` exceeds.

        Raises:
          BudgetCostError: the budget limits latency but `costs` has none (no latency table).
        """
        out = {}
        for name, limit in self.limits().items():
            value = getattr(costs, name)
            if value is None:
                raise BudgetCostError(
                    f'budget "{self}": {_WORD[name]} cannot be measured for this space without a '
                    "latency table (nasx profile); drop it or give --latency-table"
                )
            if value > limit:
                out[name] = (value, limit)
        return out

    def admits(self, costs: Costs) -> bool:
        """True when every constrained cost is within its limit."""
        return not self.violations(costs)

    def excess(self, costs: Costs) -> float:
        """Largest relative overshoot, ``max(value / limit) - 1`` (<= 0 when admitted)."""
        ratios = [
            getattr(costs, n) / lim for n, lim in self.limits().items() if getattr(costs, n) is not None
        ]
        return max(ratios, default=0.0) - 1.0

    def __str__(self) -> str:
        parts = []
        for name, limit in self.limits().items():
            word = _WORD[name]
            if word == "size":
                parts.append(f"{format_amount(limit)}B-size")
            elif word == "latency":
                parts.append(f"{limit:g}ms-latency")
            else:
                parts.append(f"{format_amount(limit)}-{word}")
        return ",".join(parts)


def format_amount(n: float) -> str:
    """``600000000 -> "600M"``, ``5300000 -> "5.3M"``, ``60 -> "60"`` (up to 4 significant digits)."""
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.4g}{unit}"
    return f"{n:.4g}"


def parse_budget(text: str) -> Budget:
    """Parse a budget string; see the module docstring for the grammar.

    Raises:
      BudgetParseError: naming the bad part and what is accepted.
    """
    if not isinstance(text, str) or not text.strip():
        raise BudgetParseError(
            f'budget "{text}": empty; expected e.g. "600M-flops" or "600M-flops,5M-params"'
        )
    limits: dict[str, int | float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise BudgetParseError(f'budget "{text}": empty part between commas')
        amount, dash, word = part.rpartition("-")
        if not dash or not amount:
            raise BudgetParseError(
                f'budget "{text}": "{part}" has no cost name; write <amount>-<cost>, e.g. 600M-flops'
            )
        word = _ALIASES.get(word.lower(), word.lower())
        if word not in _COSTS:
            raise BudgetParseError(
                f'budget "{text}": unknown cost "{part.rpartition("-")[2]}"; use flops, params, size, latency or layers'
            )
        field, units, hint = _COSTS[word]
        m = _AMOUNT.match(amount)
        if not m:
            raise BudgetParseError(
                f'budget "{text}": "{amount}" is not a number with an optional unit ({hint})'
            )
        number, unit = float(m.group(1)), m.group(2)
        key = unit.upper()
        if word == "latency" and unit == "":
            raise BudgetParseError(f'budget "{text}": latency "{amount}" needs a unit; use {hint}')
        if word == "size" and unit == "":
            key = "B"
        if key not in units:
            raise BudgetParseError(f'budget "{text}": unknown unit "{unit}" for {word}; use {hint}')
        if number <= 0:
            raise BudgetParseError(f'budget "{text}": {word} limit must be positive, got "{amount}"')
        if field in limits:
            raise BudgetParseError(f'budget "{text}": {word} is given twice')
        value = number * units[key]
        if not math.isfinite(value):
            raise BudgetParseError(f'budget "{text}": {word} limit "{amount}" is not a finite number')
        if field != "latency_ms":
            if value < 1:
                raise BudgetParseError(f'budget "{text}": {word} limit "{amount}" is below 1 {word}')
            value = round(value)
        limits[field] = value
    return Budget(**limits)


def sample_admitted(
    space: SearchSpace,
    budget: Budget,
    rng: np.random.Generator,
    n: int = 1,
    *,
    resolution: int | None = None,
    tries_per_arch: int = 200,
    repair_steps: int = 200,
) -> list[Arch]:
    """Up to `n` distinct architectures of `space` within `budget`, with a bounded effort.

    Uniform samples are kept when admitted. When too few are, the closest ones are repaired by
    greedy descent: each step tries a handful of single-choice mutations and keeps the one that
    most reduces the budget excess. Never loops without bound.

    Raises:
      InfeasibleBudgetError: not even one admitted architecture was found; the message gives
        the closest candidate's costs.
      BudgetCostError: the budget limits a cost the space cannot measure.
    """
    found: dict[Arch, None] = {}
    rejected: list[tuple[float, Arch]] = []
    for _ in range(n * tries_per_arch):
        if len(found) >= n:
            break
        arch = space.sample(rng)
        costs = space.costs(arch, resolution)
        if budget.admits(costs):
            found[arch] = None
        elif len(rejected) < 4 * n:
            rejected.append((budget.excess(costs), arch))
    rejected.sort(key=lambda t: t[0])
    closest: tuple[float, Arch] | None = rejected[0] if rejected else None
    for excess, start in rejected:
        if len(found) >= n:
            break
        arch, excess = _descend(space, budget, rng, start, excess, resolution, repair_steps)
        if excess <= 0:
            found[arch] = None
        elif closest is None or excess < closest[0]:
            closest = (excess, arch)
    if not found:
        assert closest is not None
        costs = space.costs(closest[1], resolution)
        over = ", ".join(
            f"{_WORD[k]} {format_amount(v)} > {format_amount(lim)}"
            for k, (v, lim) in budget.violations(costs).items()
        )
        raise InfeasibleBudgetError(
            f'no architecture of space "{space.name}" found within budget "{budget}" '
            f"(closest after {n * tries_per_arch} samples and greedy repair: {over}); loosen the budget"
        )
    return list(found)


def _descend(
    space: SearchSpace,
    budget: Budget,
    rng: np.random.Generator,
    arch: Arch,
    excess: float,
    resolution: int | None,
    steps: int,
    neighbours: int = 16,
) -> tuple[Arch, float]:
    for _ in range(steps):
        if excess <= 0:
            break
        # distinct neighbours in the order drawn (a set's order would follow the process's string
        # hashing, and ties would then be broken differently from one run to the next)
        candidates = list(dict.fromkeys(space.mutate(arch, rng) for _ in range(neighbours)))
        scored = [(budget.excess(space.costs(c, resolution)), c) for c in candidates]
        best_excess, best = min(scored, key=lambda t: t[0])
        if best_excess < excess:
            arch, excess = best, best_excess
    return arch, excess
