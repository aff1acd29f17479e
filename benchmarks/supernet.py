"""One compile for every subnet, measured: masked supernet vs compiling each extracted subnet.

Run: ``python benchmarks/supernet.py`` (a few minutes on 2 CPU cores). Side by side, in one run:

(a) evaluating N random architectures (forward pass on a batch, batch-norm re-calibrated): the
    masked supernet compiled once and ``vmap``-ed over chunks of architectures, versus extracting
    every subnet and compiling it on its own (target ratio >= 10x);
(b) one training step of the supernet running its largest architecture versus the extracted
    standalone largest model (target overhead <= 1.5x);
(c) compiled peak memory (XLA's memory analysis: arguments + outputs + temporaries) of both steps.

Prints a table and writes ``benchmarks/results/supernet.json``.

What (b) taught (jax.profiler, idle 2-core CPU): the supernet's step was 2.0x the standalone's
because every channel mask was a pass over a feature map, forward and backward, and XLA
recomputed those mask chains inside the 1x1 convolutions' weight gradients. Masks now sit on
per-channel vectors: a masked batch norm folds its mask into its scale and shift, so the conv
before it needs no output mask, and a block's input channels past the active width are already
0, so a float conv needs no input mask either (a quantized one masks its weights, for the scale).
Measured after the change: 2.09 s vs 2.02 s (1.03x) with float weights, 2.03 s vs 2.06 s with
bits a traced choice (from 4.26 s vs 2.10 s, 2.03x, before).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nasx.nn.layers import BatchNormContext  # noqa: E402
from nasx.sampling import extreme  # noqa: E402
from nasx.supernet import functional  # noqa: E402
from search_spaces import mobilenet  # noqa: E402
from search_spaces.mobilenet.supernet import MobileNetSupernet  # noqa: E402


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _memory_bytes(compiled) -> int:
    m = compiled.memory_analysis()
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes)


def evaluation(space, supernet, n: int, chunk: int, x: jax.Array) -> dict[str, float]:
    """(a): seconds to evaluate n archs, masked (one compile) vs extracted (a compile each)."""
    _, params, apply = functional(supernet)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(n)]
    encoded = np.stack([space.encode(a) for a in archs])

    @jax.jit
    def masked(params, batch):
        def one(a):
            stats = apply(params, a, x)[1]
            return apply(params, a, x, stats)[0]

        return jax.vmap(one)(batch)

    start = time.perf_counter()
    masked.lower(params, jnp.asarray(encoded[:chunk])).compile()
    print(f"    masked: compiled in {time.perf_counter() - start:.1f} s", flush=True)
    for i in range(0, n, chunk):
        batch = encoded[i : i + chunk]
        if len(batch) < chunk:  # pad: one shape, one compile
            batch = np.concatenate([batch, np.repeat(batch[-1:], chunk - len(batch), axis=0)])
        jax.block_until_ready(masked(params, jnp.asarray(batch)))
    masked_s = time.perf_counter() - start
    calibrate = jax.jit(lambda p, a: apply(p, a, x)[1])

    start = time.perf_counter()
    for arch, enc in zip(archs, encoded, strict=True):
        stats = calibrate(params, jnp.asarray(enc))  # the same calibration, already compiled
        model = supernet.extract(arch, stats)
        graphdef, state = nnx.split(model)
        run = jax.jit(lambda s, x, g=graphdef: nnx.merge(g, s)(x))
        jax.block_until_ready(run(state, x))
    extracted_s = time.perf_counter() - start
    return {"archs": n, "masked_s": masked_s, "extracted_s": extracted_s, "ratio": extracted_s / masked_s}


def training_step(space, supernet, x: jax.Array, y: jax.Array, repeats: int) -> dict[str, float]:
    """(b), (c): train-step time and compiled memory, supernet on its largest arch vs standalone."""
    _, params, apply = functional(supernet)
    largest = extreme(space, "largest")
    encoded = jnp.asarray(space.encode(largest))
    tx = optax.sgd(0.01, momentum=0.9)
    labels = jax.nn.one_hot(y, 10)

    def make_step(loss_of):
        def step(p, opt, x):
            loss, grads = jax.value_and_grad(loss_of)(p, x)
            updates, opt = tx.update(grads, opt, p)
            return optax.apply_updates(p, updates), opt, loss

        return jax.jit(step)

    super_step = make_step(lambda p, x: optax.softmax_cross_entropy(apply(p, encoded, x)[0], labels).mean())
    stats = jax.jit(lambda p: apply(p, encoded, x)[1])(params)
    model = supernet.extract(largest, stats)
    graphdef, model_params, rest = nnx.split(model, nnx.Param, ...)

    def standalone_loss(p, x):  # training mode: batch statistics, as in the supernet's step
        logits = nnx.merge(graphdef, p, rest)(x, BatchNormContext())
        return optax.softmax_cross_entropy(logits, labels).mean()

    alone_step = make_step(standalone_loss)
    results = {}
    for name, step, p in (("supernet", super_step, params), ("standalone", alone_step, model_params)):
        opt = tx.init(p)
        compiled = step.lower(p, opt, x).compile()
        jax.block_until_ready(step(p, opt, x))
        results[f"{name}_step_s"] = _median_time(lambda step=step, p=p, opt=opt: step(p, opt, x), repeats)
        results[f"{name}_memory_bytes"] = _memory_bytes(compiled)
    results["step_ratio"] = results["supernet_step_s"] / results["standalone_step_s"]
    results["memory_ratio"] = results["supernet_memory_bytes"] / results["standalone_memory_bytes"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="architectures to evaluate in (a)")
    parser.add_argument("--chunk", type=int, default=25, help="architectures per vmapped call")
    parser.add_argument("--width-mult", type=float, default=0.5, help="mobilenet:cifar width multiplier")
    parser.add_argument("--bits", default="4,8,16,32", help="bit-width options of the space")
    parser.add_argument("--batch", type=int, default=16, help="images per forward / train step")
    parser.add_argument("--side", type=int, default=32, help="image side in px")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "supernet.json")
    args = parser.parse_args()

    space = mobilenet.space(
        "cifar", bits=tuple(int(b) for b in args.bits.split(",")), width_mult=args.width_mult
    )
    supernet = MobileNetSupernet(space, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((args.batch, args.side, args.side, 3), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, 10, args.batch))
    print(
        f"device: {jax.devices()[0].device_kind} x{jax.device_count()}; space mobilenet:cifar "
        f"w{args.width_mult}, bits {space.bits}; {args.batch} images of {args.side} px"
    )
    ev = evaluation(space, supernet, args.n, args.chunk, x)
    print(
        f"(a) {ev['archs']} archs: masked one-compile {ev['masked_s']:.1f} s, compile-per-subnet "
        f"{ev['extracted_s']:.1f} s -> {ev['ratio']:.1f}x (target >= 10x)"
    )
    tr = training_step(space, supernet, x, y, args.repeats)
    print(
        f"(b) train step, largest arch: supernet {tr['supernet_step_s'] * 1e3:.1f} ms, standalone "
        f"{tr['standalone_step_s'] * 1e3:.1f} ms -> {tr['step_ratio']:.2f}x (target <= 1.5x)"
    )
    print(
        f"(c) compiled memory: supernet {tr['supernet_memory_bytes'] / 2**20:.1f} MiB, standalone "
        f"{tr['standalone_memory_bytes'] / 2**20:.1f} MiB -> {tr['memory_ratio']:.2f}x"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"evaluation": ev, "training": tr, **vars(args), "out": str(args.out)}, indent=2)
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
