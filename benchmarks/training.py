"""Training throughput on this machine: the supernet's train step vs standalone training.

Run: ``python benchmarks/training.py`` (defaults: resnet:small and mobilenet:small, the 28 px
spaces sized for a CPU, at batch 128, Fashion-MNIST's recipe and shape; random 28x28x3 float32
images, 10 classes, so no dataset is needed). Side by side, in one run, for every space:

(a) supernet training: the step ``nasx train-supernet`` runs (`nasx.train.make_step`: sandwich
    sampling of ``--archs-per-step`` subnets drawn per step by `nasx.sampling.draw`, largest
    first, in-place distillation, augmentation inside the step, `nasx.train.optimizer`);
    images/s and subnet-images/s (images x subnets per step / step time);
(b) standalone training of the space's largest architecture (`nasx.jobs.fit.fresh_model`, the
    step `nasx.fit.make_step` and the optimizer recipe of `nasx.fit.fit`), images/s;
(c) the same for the smallest architecture;
(d) ratios, each over the standalone largest's step time: the supernet's step time per subnet
    (step time / archs per step), and the supernet's step on ONE architecture, the largest
    (`nasx.train.make_step` with a single encoded arch, no distillation), which is the cost of
    weight sharing proper (masks, the traced architecture).

Every step is compiled ahead of time (the compile time is reported), run once to warm up, then
timed ``--repeats`` times, threading the parameters and optimizer state from step to step as a
training loop does; the median is reported. Host-side work (drawing and encoding the subnets,
the PRNG key) happens outside the clock, as in the library's loop. One device, no mesh: `fit`
has none, so both sides run the same way (``nasx train-supernet`` shards over all local devices;
on one CPU device that is the same computation).

Prints a table and writes ``benchmarks/results/training.json`` (with the jax version, the device
count, ``os.getloadavg()`` before and after: the machine may be shared, and a busy one is flagged).

The number to keep: ``benchmarks/supernet.py`` measured the one-architecture supernet step against
the standalone largest at **1.07x** on mobilenet (mobilenet:cifar, width 0.5, 16 images of 32 px,
idle 2-core CPU; README); the one-arch ratio of (d) is that measurement on the 28 px spaces. The
per-subnet ratio should sit near it, not below: the supernet masks channels instead of slicing
them, so under ``vmap`` every subnet of a step (the smallest too) computes at the full width and
costs about as much as the largest. It is the cost of a subnet-image in supernet training
against one in standalone training of the largest, and the standalone smallest row shows what
a subnet-image of the smallest would cost on its own.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import search_spaces  # noqa: E402
from nasx.fit import FitConfig  # noqa: E402
from nasx.fit import make_step as make_standalone_step  # noqa: E402
from nasx.jobs.fit import fresh_model  # noqa: E402
from nasx.jobs.recipes import recipe_for  # noqa: E402
from nasx.sampling import draw, extreme  # noqa: E402
from nasx.supernet import build, count_params, functional  # noqa: E402
from nasx.train import TrainConfig, make_step, optimizer  # noqa: E402
from search_spaces import training_space  # noqa: E402

DATA = "fashion-mnist"
"""Whose recipe (learning rate, weight decay, label smoothing) and shape the benchmark uses."""
SIDE, CHANNELS, CLASSES = 28, 3, 10
REFERENCE_ONE_ARCH_RATIO = 1.07
"""benchmarks/supernet.py, mobilenet:cifar w0.5, 16 images of 32 px: one-arch supernet / standalone."""
BUSY_LOAD = 1.5


def _median_time(step: Callable, state: tuple, args_of: Callable[[int], tuple], repeats: int) -> dict:
    """Median seconds of `repeats` calls ``step(*state, *args_of(i))``, the state threaded through
    (the first two outputs: params, optimizer state); ``args_of`` runs outside the clock."""
    times = []
    for i in range(repeats):
        args = args_of(i)
        start = time.perf_counter()
        out = jax.block_until_ready(step(*state, *args))
        times.append(time.perf_counter() - start)
        state = tuple(out[:2])
    return {"step_s": float(np.median(times)), "times_s": times}


def _timed(step: Callable, state: tuple, args_of: Callable[[int], tuple], repeats: int) -> dict:
    """Compile `step` (a jitted library step) ahead of time, warm it up once, time it."""
    start = time.perf_counter()
    compiled = step.lower(*state, *args_of(0)).compile()
    compile_s = time.perf_counter() - start
    out = jax.block_until_ready(compiled(*state, *args_of(0)))  # warm-up, not timed
    state = tuple(out[:2])
    m = compiled.memory_analysis()
    memory = int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes)
    return {
        "compile_s": compile_s,
        **_median_time(compiled, state, lambda i: args_of(i + 1), repeats),
        "memory_bytes": memory,
    }


def bench_space(spec: str, batch: int, k: int, repeats: int, seed: int = 0) -> dict[str, Any]:
    """(a)-(d) for one space: a dict of rows (each with step_s, images/s, ...) and the ratios."""
    recipe = recipe_for(DATA)
    space = training_space(spec, bits=(32,), num_classes=CLASSES, width_mult=None)
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal((batch, SIDE, SIDE, CHANNELS), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, CLASSES, batch))
    base_key = jax.random.key(seed)
    keys = lambda i: jax.random.fold_in(base_key, i)  # noqa: E731
    steps = repeats + 2  # the schedule's length; it does not change the cost of a step
    extremes = {w: extreme(space, w) for w in ("largest", "smallest")}
    rows: dict[str, dict] = {}

    # (a) and the one-arch step: nasx.train's step on the supernet train_supernet builds
    supernet = build(search_spaces.family(spec).supernet(), space, seed=seed)
    _, params, apply = functional(supernet)
    config = TrainConfig(
        steps=steps,
        batch_size=batch,
        archs_per_step=k,
        sampling="sandwich",
        learning_rate=recipe.learning_rate,
        label_smoothing=recipe.label_smoothing,
        warmup_steps=max(1, round(recipe.warmup_fraction * steps)),
        seed=seed,
    )
    tx = optimizer(config)

    def sandwich(i: int) -> tuple:  # as nasx.train.train's loop: a fresh draw every step
        archs = draw(space, config.sampling, k, np.random.default_rng([seed, i]), extremes)
        return jnp.asarray(np.stack([space.encode(a) for a in archs])), x, y, keys(i)

    step = make_step(apply, tx, flip=True, distill=config.distills, label_smoothing=config.label_smoothing)
    print(f"  {spec}: supernet, {k} subnets/step ...", flush=True)
    rows["supernet"] = {"archs": k, **_timed(step, (params, tx.init(params)), sandwich, repeats)}

    largest = jnp.asarray(space.encode(extremes["largest"]))[None]
    one = make_step(apply, tx, flip=True, distill=False, label_smoothing=config.label_smoothing)
    print(f"  {spec}: supernet, largest only ...", flush=True)
    rows["supernet_one_arch"] = {
        "archs": 1,
        **_timed(one, (params, tx.init(params)), lambda i: (largest, x, y, keys(i)), repeats),
    }
    supernet_params = count_params(supernet)
    del supernet, params, apply, step, one

    # (b), (c): nasx.fit's step and recipe on fresh standalone models
    fit_config = FitConfig(
        steps=steps,
        batch_size=batch,
        learning_rate=recipe.learning_rate,
        weight_decay=recipe.weight_decay,
        label_smoothing=recipe.label_smoothing,
        warmup_steps=max(1, round(recipe.warmup_fraction * steps)),
        seed=seed,
    )
    for which in ("largest", "smallest"):
        model = fresh_model(space, extremes[which], seed=seed)
        graphdef, model_params, rest = nnx.split(model, nnx.Param, ...)
        tx = optimizer(fit_config)
        alone = make_standalone_step(
            graphdef, rest, tx, flip=True, label_smoothing=fit_config.label_smoothing
        )
        print(f"  {spec}: standalone {which} ...", flush=True)
        timed = _timed(alone, (model_params, tx.init(model_params)), lambda i: (x, y, keys(i)), repeats)
        costs = space.costs(extremes[which])
        rows[f"standalone_{which}"] = {
            "archs": 1,
            **timed,
            "params": count_params(model),
            "macs": costs.macs,
            "arch": extremes[which].to_dict(),
        }

    reference = rows["standalone_largest"]["step_s"]
    for row in rows.values():
        row["images_per_s"] = batch / row["step_s"]
        row["subnet_images_per_s"] = batch * row["archs"] / row["step_s"]
        row["ratio"] = row["step_s"] / row["archs"] / reference  # per subnet, over standalone largest
    return {
        "space": f"{space.name}:{space.variant}",
        "supernet_params": supernet_params,
        "rows": rows,
        "ratios": {
            "per_subnet_vs_standalone_largest": rows["supernet"]["ratio"],
            "one_arch_vs_standalone_largest": rows["supernet_one_arch"]["ratio"],
        },
    }


LABELS = {
    "supernet": "supernet, {k} subnets",
    "supernet_one_arch": "supernet, largest only",
    "standalone_largest": "standalone largest",
    "standalone_smallest": "standalone smallest",
}


def print_table(results: list[dict], k: int) -> None:
    header = f"{'space':<16} {'what':<24} {'compile s':>9} {'step s':>8} {'images/s':>9} {'subnet-img/s':>12} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for res in results:
        for name, row in res["rows"].items():
            print(
                f"{res['space']:<16} {LABELS[name].format(k=k):<24} {row['compile_s']:>9.1f} {row['step_s']:>8.3f} "
                f"{row['images_per_s']:>9.1f} {row['subnet_images_per_s']:>12.1f} {row['ratio']:>6.2f}"
            )
    print(
        "ratio: step time per subnet (step / subnets per step) over the standalone largest's step; "
        f"one-arch reference {REFERENCE_ONE_ARCH_RATIO:.2f}x (benchmarks/supernet.py, mobilenet:cifar)"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Random 28x28x3 images, 10 classes (Fashion-MNIST's shape and recipe); see the module docstring.",
    )
    parser.add_argument(
        "--spaces",
        default="resnet:small,mobilenet:small",
        help="comma-separated FAMILY:VARIANT spaces (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=128, help="images per train step (default: %(default)s)"
    )
    parser.add_argument(
        "--archs-per-step",
        type=int,
        default=3,
        help="subnets per supernet step, sandwich sampling, >= 2 (default: %(default)s)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=10,
        help="timed steps per row after compile and warm-up (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "benchmarks" / "results" / "training.json",
        help="JSON results file (default: benchmarks/results/training.json)",
    )
    args = parser.parse_args(argv)
    if args.archs_per_step < 2:
        parser.error("--archs-per-step must be >= 2 (sandwich sampling: the largest and the smallest)")
    if args.batch_size < 1 or args.repeats < 1:
        parser.error("--batch-size and --repeats must be >= 1")
    specs = [s.strip() for s in args.spaces.split(",") if s.strip()]

    load_start = os.getloadavg()
    device = jax.devices()[0]
    print(
        f"jax {jax.__version__}, {device.platform} ({device.device_kind}) x{jax.device_count()}; "
        f"batch {args.batch_size} of {SIDE}x{SIDE}x{CHANNELS}, {args.archs_per_step} subnets/step, "
        f"{args.repeats} timed steps; load {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}",
        flush=True,
    )
    if load_start[0] > BUSY_LOAD:
        print(
            f"WARNING: 1-min load {load_start[0]:.2f} > {BUSY_LOAD} at start: the machine is busy, "
            "times will be slower and noisier than on an idle one",
            flush=True,
        )
    began = time.perf_counter()
    results = [bench_space(spec, args.batch_size, args.archs_per_step, args.repeats) for spec in specs]
    load_end = os.getloadavg()
    print()
    print_table(results, args.archs_per_step)
    print(
        f"load at end {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}; {time.perf_counter() - began:.0f} s"
    )

    report = {
        "jax_version": jax.__version__,
        "platform": device.platform,
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "compilation_cache_dir": jax.config.jax_compilation_cache_dir,
        "loadavg_start": list(load_start),
        "loadavg_end": list(load_end),
        "busy_at_start": load_start[0] > BUSY_LOAD,
        "seconds": time.perf_counter() - began,
        "image_shape": [SIDE, SIDE, CHANNELS],
        "num_classes": CLASSES,
        "recipe": DATA,
        "reference_one_arch_ratio": REFERENCE_ONE_ARCH_RATIO,
        "args": {**vars(args), "out": str(args.out)},
        "results": {res["space"]: res for res in results},
    }
    bad = [
        (res["space"], name)
        for res in results
        for name, value in res["ratios"].items()
        if not (math.isfinite(value) and value > 0)
    ]
    if bad:
        print(f"WARNING: non-positive or non-finite ratios: {bad}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
