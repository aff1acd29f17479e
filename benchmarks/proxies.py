"""Zero-cost proxies on the NB201 supernet, one compile for every architecture, measured.

Run: ``python benchmarks/proxies.py`` (synflow and jacob_cov; about 8 min on 2 idle CPU cores);
``--proxies synflow snip grad_norm jacob_cov naswot zen`` for all. Side by side, in one run, per
proxy, on NB201's CIFAR-10 skeleton at full width (C = 16, 32 px):

(a) batched: `nasx.proxies.make_proxy`, chunks of ``--chunk`` architectures per compiled call
    (one at a time in a ``lax.map``, as `Nb201Supernet.switches_ops` asks, or ``--vmap``),
    compiled once (compile time reported apart), then steady-state architectures per second over
    up to ``--archs`` random architectures (fewer if ``--seconds`` runs out first);
(b) one architecture per call: the same proxy jitted for a single architecture (one compile too),
    over ``--single`` architectures;
(c) the reference figures for PyTorch eager on a 2-core machine (synflow 4 archs/s, jacob_cov
    1.8 archs/s, given in the task brief; not measured here);
(d) with the NB201 table (``--nb201``, third-party data that never enters the repo), the Spearman
    rank correlation of the scores of (a) with ``cifar10_test_acc`` and with
    ``bw_cifar10valid_test_acc`` (the accuracy Abdelfattah et al. correlate with).

Images: CIFAR-10 is not available offline, so the minibatch is scikit-learn's digits upscaled to
32 px (real images, 10 classes, `nasx.data`); batch 64 as in Abdelfattah et al.'s NB201 runs,
128 for naswot as in Mellor et al.; synflow reads only the image shape. GFLOP/arch is analytic:
network passes (`CONV_PASSES`) x 2 x images x the cells' mean MACs (nasx.costs); the same run
measures this device's dense f32 matmul rate, the practical ceiling. XLA's own cost analysis
(which counts every branch of a switch) is kept in the JSON.

Prints a table and writes ``benchmarks/results/proxies.json``.

Measured on an idle 2-core CPU (2026-12-02; ``--proxies synflow jacob_cov snip grad_norm naswot
zen --archs 100 --seconds 60``), archs/s one at a time (lax.map + switch) / one architecture per
call: synflow 166 / 29.5 (PyTorch eager: 4), jacob_cov 3.29 / 1.71 (PyTorch: 1.8), snip 2.44 /
1.40, grad_norm 2.53 / 1.32, naswot 2.37 / 1.59, zen 5.32 / 2.68. Dense f32 matmul here: 399
GFLOP/s. synflow beats the 20 archs/s target (forward mode, batch 1); the others miss it because
at their reference minibatch (64 images, 128 for naswot) 20 archs/s would need 281 GFLOP/s
(jacob_cov, naswot, zen: 70 % of the matmul rate) or 421 GFLOP/s (snip, grad_norm: more than the
matmul rate) of convolutions with 16 to 64 channels, which run at 8-19 % of it; one 3x3
16-channel convolution at 32 px alone, forward + input gradient, runs at 123 GFLOP/s (another run:
matmul 329 GFLOP/s), so jacob_cov at 20 archs/s would need 2.3x that lone convolution's rate. What it took:
(1) XLA:CPU runs a convolution's autodiff gradients inside a nested computation (a switch branch,
a loop body) 5-10x slower than at the top level, so the gradient proxies run on
`nasx.nn.cpu_conv.dense_conv`, whose gradients are ordinary forward convolutions (before: jacob_cov
0.57, snip 0.07, grad_norm 0.07); (2) vmapping every chunk (``--vmap``: every op of every edge runs)
is slower than one at a time (jacob_cov 0.12, snip 0.05 before (1)); a ``jnp.where`` chain instead
of the switch gave synflow 2.7, jacob_cov 0.06.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nasx.data import load  # noqa: E402
from nasx.proxies import PROXIES, make_proxy  # noqa: E402
from nasx.supernet import build, functional  # noqa: E402
from search_spaces import nb201  # noqa: E402
from search_spaces.nb201.supernet import Nb201Supernet  # noqa: E402

PYTORCH_EAGER = {"synflow": 4.0, "jacob_cov": 1.8}
"""archs/s of the reference PyTorch code, eager, on a 2-core machine (from the task brief)."""
TARGET_ARCHS_PER_S = 20.0
"""What nasx aims for on every proxy (the task brief)."""
CONV_PASSES = {"synflow": 2, "jacob_cov": 2, "snip": 3, "grad_norm": 3, "naswot": 1, "zen": 2}
"""Network passes per image, in forward-pass equivalents: forward (1), input gradient (+1), weight
gradients (+1); synflow's forward-mode pass carries a tangent (2); zen runs two forwards."""


def _gflop_per_s(fn, args: tuple, flops: float, repeats: int) -> float:
    """GFLOP/s of a jitted `fn` doing `flops` per call, after one warm-up call."""
    jax.block_until_ready(fn(*args))
    start = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(fn(*args))
    return flops * repeats / (time.perf_counter() - start) / 1e9


def conv_gflop_per_s(images: int = 64, repeats: int = 20) -> float:
    """NB201's commonest convolution alone at the top level (3x3, 16 channels, 32 px), forward
    plus input gradient (jacob_cov's work per convolution): the best case of any NB201 network."""
    x, w = jnp.ones((images, 32, 32, 16)), jnp.full((3, 3, 16, 16), 0.01)

    def loss(x, w):
        y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jnp.sum(y * y)

    return _gflop_per_s(jax.jit(jax.grad(loss)), (x, w), 2 * 2 * images * 32 * 32 * 16 * 16 * 9, repeats)


def matmul_gflop_per_s(n: int = 2048, repeats: int = 5) -> float:
    """This device's dense float32 matmul rate: the practical ceiling of any network on it."""
    return _gflop_per_s(jax.jit(lambda a: a @ a), (jnp.ones((n, n), jnp.float32),), 2 * n**3, repeats)


def _flops(compiled) -> float:
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    return float(analysis.get("flops", float("nan"))) if analysis else float("nan")


def _plain(value):
    """NaN and infinities as None (strict JSON)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return None if isinstance(value, float) and not np.isfinite(value) else value


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    keep = np.isfinite(a) & np.isfinite(b)
    return float(spearmanr(a[keep], b[keep]).correlation) if keep.sum() > 2 else float("nan")


def measure(
    name: str, apply, params, encoded: np.ndarray, macs: np.ndarray, x, y, args, *, one_at_a_time: bool
) -> dict:
    """(a) and (b) for one proxy: compile seconds, archs/s, scores of the archs scored in (a)."""
    proxy, key = PROXIES[name], jax.random.key(args.seed)
    scores_fn = make_proxy(apply, proxy, one_at_a_time=one_at_a_time)
    chunk = args.chunk
    start = time.perf_counter()
    vmapped = scores_fn.lower(params, jnp.asarray(encoded[:chunk]), x, y, key).compile()
    compile_s = time.perf_counter() - start
    print(f"  {name}: vmapped compiled in {compile_s:.0f} s", flush=True)
    jax.block_until_ready(vmapped(params, jnp.asarray(encoded[:chunk]), x, y, key))  # warm-up
    scores, start = [], time.perf_counter()
    for i in range(0, len(encoded), chunk):
        batch = encoded[i : i + chunk]
        if len(batch) < chunk:  # pad: one shape, one compile
            batch = np.concatenate([batch, np.repeat(batch[-1:], chunk - len(batch), axis=0)])
        scores.append(np.asarray(vmapped(params, jnp.asarray(batch), x, y, key))[: len(encoded) - i])
        if time.perf_counter() - start > args.seconds:
            break
    vmapped_s = time.perf_counter() - start
    scores = np.concatenate(scores)
    print(f"  {name}: {len(scores)} archs in {vmapped_s:.1f} s", flush=True)

    n_single, single_compile_s, single_s = min(args.single, len(encoded)), float("nan"), float("nan")
    if n_single:
        one = jax.jit(lambda p, a, x, y, k: proxy.fn(apply, p, a, x, y, k))
        start = time.perf_counter()
        single = one.lower(params, jnp.asarray(encoded[0]), x, y, key).compile()
        single_compile_s = time.perf_counter() - start
        jax.block_until_ready(single(params, jnp.asarray(encoded[0]), x, y, key))
        start = time.perf_counter()
        for arch in encoded[:n_single]:
            jax.block_until_ready(single(params, jnp.asarray(arch), x, y, key))
        single_s = time.perf_counter() - start
    gflop_per_arch = CONV_PASSES[name] * 2 * x.shape[0] * float(macs[: len(scores)].mean()) / 1e9
    return {
        "images": int(x.shape[0]),
        "compile_s": compile_s,
        "archs": len(scores),
        "archs_per_s": len(scores) / vmapped_s,
        "gflop_per_arch": gflop_per_arch,
        "gflop_per_s": gflop_per_arch * len(scores) / vmapped_s,
        "xla_gflop_per_arch_every_branch": _flops(vmapped) / chunk / 1e9,
        "single_compile_s": single_compile_s,
        "single_archs": n_single,
        "single_archs_per_s": n_single / single_s if n_single else float("nan"),
        "pytorch_eager_archs_per_s": PYTORCH_EAGER.get(name),
        "scores": scores.tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxies", nargs="+", default=["synflow", "jacob_cov"], choices=list(PROXIES))
    parser.add_argument("--archs", type=int, default=200, help="random architectures for (a)")
    parser.add_argument("--seconds", type=float, default=600.0, help="time limit of (a) per proxy")
    parser.add_argument("--chunk", type=int, default=8, help="architectures per vmapped call")
    parser.add_argument("--single", type=int, default=5, help="architectures for (b); 0 skips (b)")
    parser.add_argument("--batch", type=int, default=64, help="images per minibatch")
    parser.add_argument("--naswot-batch", type=int, default=128, help="images per minibatch for naswot")
    parser.add_argument(
        "--vmap", action="store_true", help="vmap every chunk (each switch runs every op) instead of lax.map"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nb201", type=Path, default=ROOT.parent / "shared" / "data" / "nb201" / "nb201.csv")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "proxies.json")
    args = parser.parse_args()

    space = nb201.space("cifar10")
    supernet = build(Nb201Supernet, space, seed=args.seed)
    # forward-mode proxies (synflow) cannot pass the XLA:CPU convolutions with canonical gradients
    _, params, plain = functional(supernet)
    canonical = functional(supernet, canonical_conv_grads=True)[2]
    rng = np.random.default_rng(args.seed)
    archs = [space.sample(rng) for _ in range(args.archs)]
    encoded = np.stack([space.encode(a) for a in archs])
    macs = np.array([space.costs(a).macs for a in archs], dtype=np.float64)
    data = load("digits", size=space.resolution, seed=args.seed)
    order = np.random.default_rng([args.seed, 1]).permutation(len(data.x_train))
    accuracy = {}
    if args.nb201.is_file():
        with args.nb201.open() as f:
            rows = {r["arch_str"]: r for r in csv.DictReader(f)}
        for column in ("cifar10_test_acc", "bw_cifar10valid_test_acc"):
            accuracy[column] = np.array([float(rows[nb201.to_string(a)][column]) for a in archs])
    print(f"NB201 cifar10 supernet, {jax.device_count()} device(s), {len(archs)} archs", flush=True)

    results = {}
    for name in args.proxies:
        n = args.naswot_batch if name == "naswot" else (1 if name == "synflow" else args.batch)
        x = jnp.asarray(data.x_train[order[:n]])
        y = jnp.asarray(data.y_train[order[:n]]) if PROXIES[name].needs_labels else None
        r = measure(
            name,
            plain if PROXIES[name].forward_mode else canonical,
            params,
            encoded,
            macs,
            x,
            y,
            args,
            one_at_a_time=not args.vmap and Nb201Supernet.switches_ops,
        )
        for column, acc in accuracy.items():
            r[f"spearman_{column}"] = _spearman(np.asarray(r["scores"]), acc[: r["archs"]])
        results[name] = r

    header = (
        f"{'proxy':<10} {'imgs':>4} {'compile s':>9} {'archs/s':>8} {'GFLOP/arch':>10} {'GFLOP/s':>7} "
        f"{'1-arch compile s':>16} {'1-arch archs/s':>14} {'PyTorch':>7} {'n':>4} {'rho test':>8} {'rho valid':>9}"
    )
    print(header)
    for name, r in results.items():
        torch = "" if r["pytorch_eager_archs_per_s"] is None else f"{r['pytorch_eager_archs_per_s']:.1f}"
        print(
            f"{name:<10} {r['images']:>4} {r['compile_s']:>9.0f} {r['archs_per_s']:>8.2f} {r['gflop_per_arch']:>10.2f} {r['gflop_per_s']:>7.0f} "
            f"{r['single_compile_s']:>16.0f} {r['single_archs_per_s']:>14.2f} {torch:>7} {r['archs']:>4} "
            f"{r.get('spearman_cifar10_test_acc', float('nan')):>8.3f} "
            f"{r.get('spearman_bw_cifar10valid_test_acc', float('nan')):>9.3f}"
        )
    peak, conv = matmul_gflop_per_s(), conv_gflop_per_s()
    print(
        "GFLOP/arch: passes (CONV_PASSES) x 2 x images x mean MACs of the scored cells (nasx.costs). Here: "
        f"dense f32 matmul {peak:.0f} GFLOP/s; one 3x3 16-channel convolution at 32 px, forward + input "
        f"gradient, alone at the top level: {conv:.0f} GFLOP/s"
    )
    for name, r in results.items():
        if r["archs_per_s"] < TARGET_ARCHS_PER_S:
            need = TARGET_ARCHS_PER_S * r["gflop_per_arch"]
            print(
                f"{name} at {TARGET_ARCHS_PER_S:.0f} archs/s would need {need:.0f} GFLOP/s "
                f"({need / peak:.0%} of the matmul rate, {need / conv:.1f}x the lone convolution's; "
                f"it runs at {r['gflop_per_s']:.0f})"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    out = {
        "results": results,
        "args": meta,
        "backend": jax.default_backend(),
        "matmul_gflop_per_s": peak,
        "conv_gflop_per_s": conv,
    }
    args.out.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
