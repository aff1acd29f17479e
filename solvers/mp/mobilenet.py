"""DeepMAD's program over an MBConv (mobilenet) space.

MBConv spaces have fixed widths, so their program is linear without products: per stage a one-hot
depth and SE flag, per block position a one-hot (kernel, expansion, SE) option active when the
depth reaches it, priced by the space's `block_costs` (with a latency table, latency too: a block's
predicted latency is a constant per option, `nasx.hardware.latency`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pulp

from nasx.costs import out_size
from nasx.space import Value
from solvers.mp.formulas import _entropy, _mbconv_convs, _weights
from solvers.mp.program import _MODELED, _bits_keys, _chosen, _Model, _Program, _Setting

__all__: list[str] = []


def _mobilenet_model(setting: _Setting, rho_max: float | None) -> _Model:
    """Per stage a one-hot depth and SE flag, per block position a one-hot (kernel, expansion, SE)
    option, active when the depth reaches it. Widths are fixed, so every block's costs
    (`space.block_costs`) and entropy are constants per option, and each DeepMAD stage's width is
    a constant: the program is linear without products."""
    space, res, bits = setting.space, setting.resolution, setting.bits
    sk, p = space.scaled, _Program()
    options = [(k, e, se) for k in sk.kernels for e in sk.expands for se in (False, True)]
    resolution_key = {}
    if sk.fixed_resolution is None and res in space.skeleton.resolutions:
        resolution_key = {"resolution": res}
    fixed = space.fixed_costs(resolution=res, bits=bits)
    modelled = _MODELED + (("latency_ms",) if space.latency is not None else ())  # additive per option
    costs = {name: pulp.LpAffineExpression(constant=getattr(fixed, name)) for name in modelled}
    n_stages = int(sk.first_stride != 1) + sum(s.stride != 1 for s in sk.stages) + 1
    weights = iter(_weights(n_stages, setting.stage_weights))
    score = pulp.LpAffineExpression()
    entropy = pulp.LpAffineExpression(constant=_entropy(((3, 3),)))
    layers, attainable = pulp.LpAffineExpression(constant=1), {1}

    def close(width: int, side: int) -> None:
        nonlocal score
        if rho_max is not None:
            p.rho_bound(entropy, layers, sorted(attainable), rho_max)
        score += next(weights) * (math.log(width) + 2 * math.log(side)) * entropy

    side = out_size(res, 3, sk.stem_stride)
    if sk.first_stride != 1:
        close(sk.stem_width, side)
    side = out_size(side, 3, sk.first_stride)
    first = _mbconv_convs(sk.stem_width, sk.stem_width, 3, 1)
    entropy += _entropy(first)
    layers += len(first)
    attainable = {d + len(first) for d in attainable}
    end_width, chosen = sk.first_width, []
    for s, stage in enumerate(sk.stages, start=1):
        if stage.stride != 1:
            close(end_width, side)
        side = out_size(side, 3, stage.stride)
        dl, se = p.onehot(stage.depths), p.onehot((False, True))
        blocks = []
        for j in range(1, max(stage.depths) + 1):
            c_in = stage.width if j > 1 else end_width
            z = {o: p.var(binary=True) for o in options}
            p.prob += pulp.lpSum(z.values()) == pulp.lpSum(v for d, v in dl.items() if d >= j)
            for flag in (False, True):
                p.prob += pulp.lpSum(v for o, v in z.items() if o[2] == flag) <= se[flag]
            blocks.append(z)
            for name in modelled:
                costs[name] += pulp.lpSum(
                    getattr(space.block_costs(s, j, *o, resolution=res, bits=bits), name) * v
                    for o, v in z.items()
                )
            convs = {o: _mbconv_convs(c_in, c_in * o[1], o[0], o[1]) for o in options}
            entropy += pulp.lpSum(_entropy(convs[o]) * v for o, v in z.items())
            layers += pulp.lpSum(len(convs[o]) * v for o, v in z.items())
        block_layers = {len(_mbconv_convs(1, 1, 3, e)) for e in sk.expands}
        reach = set()
        for d in stage.depths:
            sums = {0}
            for _ in range(d):
                sums = {t + m for t in sums for m in block_layers}
            reach |= {t + u for t in attainable for u in sums}
        attainable = reach
        chosen.append((dl, se, blocks))
        end_width = stage.width
    entropy += _entropy(((end_width, 1),))  # the head conv
    layers += 1
    attainable = {d + 1 for d in attainable}
    close(sk.head_width, side)

    def decode() -> dict[str, Value]:
        values: dict[str, Value] = {**resolution_key}
        for s, (dl, se, blocks) in enumerate(chosen, start=1):
            depth = _chosen(dl)
            values |= {f"s{s}.depth": depth, f"s{s}.se": _chosen(se)}
            for j, z in enumerate(blocks[:depth], start=1):
                kernel, expand, _ = _chosen(z)
                values |= {f"s{s}.b{j}.kernel": kernel, f"s{s}.b{j}.expand": expand}
        return values | _mobilenet_bits(space, values, bits)

    return _Model(p, score, costs, decode)


def _mobilenet_bits(space: Any, values: Mapping[str, Value], bits: int) -> dict[str, Value]:
    """The ``bits`` choices of the blocks `values` makes active, and of stem and head."""
    keys = _bits_keys(space, bits)
    active = {k: v for k, v in keys.items() if k.startswith("bits.")}
    for name in keys:
        stage, _, rest = name.partition(".")
        depth = values.get(f"{stage}.depth")
        if rest.startswith("b") and depth is not None and int(rest.split(".")[0][1:]) <= int(depth):
            active[name] = bits
    return active
