"""DeepMAD's program over a ResNet grid (bottleneck or basic blocks).

The program is an *extended* formulation: per stage ``i`` one binary ``z_t`` per option tuple
``t = (a, w, b, k)`` (previous stage's width, width, bottleneck, kernel) that the space's rules
allow, so every block's costs (the space's own `stage_terms`) and entropy are constants per tuple;
consecutive stages agree on the width they share through flow equations
``sum_{t: a_t = v} z_t = sum_{t': w_t' = v} z_t'``. Depth enters as
``y_q = (L - 1) * [stage takes (w, b, k) = q]``, continuous with ``0 <= y_q <= (L_max - 1) z_q`` and
``sum_q y_q = L - 1``: the convex hull of each stage's (tuple, depth) choice, so the inner blocks'
costs and entropy are linear and exact. ``L`` is one general integer variable when the depth
options are consecutive (branching on it halves its range; with one-hot depths CBC took ~6x longer
on a neighbourhood program we timed), else one-hot. The score's products ``log C_g * E_g`` are
exact for the stage that ends group ``g`` (``log w`` is a constant of its tuples) and McCormick
envelopes on binaries (exact at integral points) for the earlier stages' entropies. The
effectiveness bound ``2 E_g >= D_g (log D_g - log rho_max)`` has a convex right-hand side in the
integer ``D_g``; the secants between consecutive attainable values of ``D_g`` impose it exactly.

References:
  Balas, "Disjunctive programming and a hierarchy of relaxations for discrete optimization
  problems", SIAM J. Algebraic Discrete Methods 6(3), 1985 (the extended formulation).
  McCormick, "Computability of global solutions to factorable nonconvex programs", Math.
  Programming 10, 1976.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping

import pulp

from nasx.space import Value
from solvers.mp.formulas import _entropy, _resnet_convs, _resnet_sides, _weights
from solvers.mp.grids import _Grid, _Rules
from solvers.mp.program import _MODELED, _bits_keys, _chosen, _Expr, _Integer, _Model, _Program, _Setting

__all__: list[str] = []


def _resnet_model(setting: _Setting, rules: _Rules, grid: _Grid, rho_max: float | None) -> _Model:
    """The extended formulation of the module docstring over `grid`."""
    space, sk, res, bits = setting.space, setting.space.skeleton, setting.resolution, setting.bits
    n, p = rules.n, _Program()
    sides = _resnet_sides(sk, res)
    ends = ([0] if sk.strides[0] != 1 else []) + [i for i in range(1, n + 1) if i == n or sk.strides[i] != 1]
    weights = dict(zip(ends, _weights(len(ends), setting.stage_weights), strict=True))

    x_prev: dict[int, _Expr] = dict(p.onehot(grid.stem))
    stem_x = x_prev
    costs = {
        name: pulp.lpSum(
            getattr(space.stem_costs(v, resolution=res, bits=bits), name) * x for v, x in x_prev.items()
        )
        for name in _MODELED
    }
    ent0 = _entropy(((3, sk.stem_kernel),))
    parts: list[tuple[pulp.LpVariable, float, float]] = []  # per stage: entropy S_i and its bounds
    layers: pulp.LpAffineExpression = pulp.LpAffineExpression(constant=1)
    attainable = {1}
    score = pulp.LpAffineExpression()
    chosen = []

    def close(end: int, x_end: Mapping[int, _Expr], last: pulp.LpAffineExpression) -> None:
        """Effectiveness and the score of the DeepMAD stage ending at stage `end` (0: the stem)."""
        beta = weights[end]
        entropy_expr = ent0 + pulp.lpSum(s for s, _, _ in parts)
        lo, hi = ent0 + sum(lo for _, lo, _ in parts), ent0 + sum(hi for _, _, hi in parts)
        entropy = p.named(entropy_expr, lo, hi)
        if rho_max is not None:
            depth = p.named(layers, min(attainable), max(attainable))
            p.rho_bound(entropy, depth, sorted(attainable), rho_max)
        terms = [
            2 * math.log(sides[end]) * entropy,
            ent0 * pulp.lpSum(math.log(v) * x for v, x in x_end.items()),
        ]
        terms.append(last)  # log C * (entropy of the closing stage): exact, per tuple
        for s_j, lo_j, hi_j in parts[:-1] if end > 0 else ():
            u = p.product(x_end, s_j, lo_j, hi_j)
            terms.append(pulp.lpSum(math.log(v) * u_v for v, u_v in u.items()))
        nonlocal score
        score += beta * pulp.lpSum(terms)

    if 0 in weights:
        close(0, stem_x, pulp.LpAffineExpression())
    for i, pairs in enumerate(grid.stages, start=1):
        kernels, depths = rules.kernels(i), rules.depths(i)
        allowed = {a: set(rules.widths(i, a)) for a in x_prev}
        tuples = [(a, w, b, k) for a in x_prev for w, b in pairs if w in allowed[a] for k in kernels]
        z = {t: p.var(binary=True) for t in tuples}
        by_a, by_q, by_w = defaultdict(list), defaultdict(list), defaultdict(list)
        for t, zt in z.items():
            by_a[t[0]].append(zt)
            by_q[t[1:]].append(zt)
            by_w[t[1]].append(zt)
        for a, xa in x_prev.items():  # flow: the stage starts from the width the previous one ends at
            p.prob += pulp.lpSum(by_a[a]) == xa
        d_lo, d_hi = min(depths) - 1, max(depths) - 1
        y = {q: p.var(0, d_hi) for q in by_q}
        for q, yq in y.items():
            p.prob += yq <= d_hi * pulp.lpSum(by_q[q])
            if d_lo > 0:
                p.prob += yq >= d_lo * pulp.lpSum(by_q[q])
        depth = _Integer(p, depths)
        p.prob += pulp.lpSum(y.values()) == depth.expr - 1

        first, inner = {}, {}
        for t in tuples:
            a, w, b, k = t
            first[t], inner[t[1:]] = space.stage_terms(i, a, w, b, k, resolution=res, bits=bits)
        for name in _MODELED:
            costs[name] += pulp.lpSum(getattr(first[t], name) * z[t] for t in tuples)
            costs[name] += pulp.lpSum(getattr(inner[q], name) * y[q] for q in y)
        e_first = {t: _entropy(_resnet_convs(sk.block, *t)) for t in tuples}
        e_inner = {q: _entropy(_resnet_convs(sk.block, q[0], *q)) for q in y}
        n_first = len(_resnet_convs(sk.block, 1, 1, 1, 1))
        s_expr = pulp.lpSum(e_first[t] * z[t] for t in tuples) + pulp.lpSum(e_inner[q] * y[q] for q in y)
        lo = min(e_first.values()) + d_lo * min(e_inner.values())
        hi = max(e_first.values()) + d_hi * max(e_inner.values())
        parts.append((p.named(s_expr, lo, hi), lo, hi))
        layers = layers + n_first * depth.expr
        attainable = {t + n_first * d for t in attainable for d in depths}
        x_prev = {w: pulp.lpSum(zs) for w, zs in by_w.items()}
        chosen.append((z, y, depth))
        if i in weights:
            last = pulp.lpSum(math.log(t[1]) * e_first[t] * z[t] for t in tuples)
            last += pulp.lpSum(math.log(q[0]) * e_inner[q] * y[q] for q in y)
            close(i, x_prev, last)
    for name in _MODELED:
        costs[name] += pulp.lpSum(
            getattr(space.head_costs(w, resolution=res, bits=bits), name) * x for w, x in x_prev.items()
        )

    def decode() -> dict[str, Value]:
        values: dict[str, Value] = {"stem.width": _chosen(stem_x)}
        for i, (z, _, depth) in enumerate(chosen, start=1):
            _, w, b, k = _chosen(z)
            values |= {f"s{i}.width": w, f"s{i}.kernel": k, f"s{i}.depth": depth.value()}
            if rules.bottleneck:
                values[f"s{i}.btn"] = b
        return values | _bits_keys(space, bits)

    def start(arch: Mapping[str, Value]) -> bool:
        a, picks = arch["stem.width"], []
        for i in range(1, n + 1):
            picks.append((a, arch[f"s{i}.width"], arch.get(f"s{i}.btn", 0), arch[f"s{i}.kernel"]))
            a = picks[-1][1]
        if arch["stem.width"] not in stem_x or any(
            t not in z for t, (z, _, _) in zip(picks, chosen, strict=True)
        ):
            return False
        for option, x in stem_x.items():
            x.setInitialValue(int(option == arch["stem.width"]))
        for i, (t, (z, y, depth)) in enumerate(zip(picks, chosen, strict=True), start=1):
            d = arch[f"s{i}.depth"]
            for option, x in z.items():
                x.setInitialValue(int(option == t))
            for q, yq in y.items():
                yq.setInitialValue(d - 1 if q == t[1:] else 0)
            depth.start(d)
        return True

    return _Model(p, score, costs, decode, start)
