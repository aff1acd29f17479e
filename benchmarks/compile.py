"""Compile time of every space's default supernet train step: what bare ``nasx train-supernet
--space S`` compiles before its first step.

Run: ``python benchmarks/compile.py`` (default: every family). Each space runs in its own
subprocess (a cold in-memory cache, the persistent compilation cache switched off, and a
``--timeout`` after which the space is reported as not compiled), on exactly what the bare
command builds: digits (the default data, 32 px), the family's supernet variant with its own
weight bits (`search_spaces.training_space`), the recipe's batch and 4 subnets per step, sandwich
sampling with in-place distillation (`nasx.train.make_step` on the ``apply`` `nasx.train.train`
uses: canonical convolution gradients, stacks scanned). Per space:

- ``build_s``: building the supernet (``nnx`` init, a trace of its own);
- ``lower_s``: tracing the train step to StableHLO (Python time: grows with unrolled layers);
- ``compile_s``: XLA's compile of that step (grows with the size of the HLO);
- ``first_step_s`` and ``step_s``: the first call after compile, and the median of the next few;
- the supernet's parameters and XLA's ``memory_analysis`` of the compiled step (bytes of
  arguments, outputs and temporaries).

Prints a table and writes ``benchmarks/results/compile.json`` with the load average before and
after (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = "digits"
ARCHS_PER_STEP = 4  # nasx train-supernet's default


def measure(spec: str, repeats: int, bits: tuple[int, ...] | None = None) -> dict[str, Any]:
    """The figures above for one space, in this process."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import search_spaces
    from nasx import data as datasets
    from nasx.jobs.recipes import recipe_for
    from nasx.sampling import draw, extreme
    from nasx.supernet import build, count_params, functional
    from nasx.train import TrainConfig, make_step, optimizer
    from search_spaces import training_space

    data = datasets.load(DATA, seed=0, val_fraction=0.1)
    space = training_space(spec, bits=bits, num_classes=data.num_classes, width_mult=None)
    recipe = recipe_for(DATA)
    config = TrainConfig(
        steps=100,
        batch_size=recipe.supernet_batch_size,
        archs_per_step=ARCHS_PER_STEP,
        learning_rate=recipe.learning_rate,
        label_smoothing=recipe.label_smoothing,
    )
    t0 = time.perf_counter()
    supernet = build(search_spaces.family(spec).supernet(), space, seed=0)
    _, params, apply = functional(supernet, canonical_conv_grads=True, scan_stacks=True)  # as nasx.train
    jax.block_until_ready(params)
    build_s = time.perf_counter() - t0
    tx = optimizer(config)
    opt_state = tx.init(params)
    step = make_step(
        apply, tx, flip=data.flip, distill=config.distills, label_smoothing=config.label_smoothing
    )
    extremes = {w: extreme(space, w) for w in ("largest", "smallest")}

    def args_of(i: int) -> tuple:
        archs = draw(space, "sandwich", ARCHS_PER_STEP, np.random.default_rng([0, i]), extremes)
        x = jnp.asarray(data.x_train[: config.batch_size])
        y = jnp.asarray(data.y_train[: config.batch_size])
        return jnp.asarray(np.stack([space.encode(a) for a in archs])), x, y, jax.random.key(i)

    t0 = time.perf_counter()
    lowered = step.lower(params, opt_state, *args_of(0))
    lower_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t0
    memory = compiled.memory_analysis()
    mem = {
        k: int(getattr(memory, k, 0) or 0)
        for k in ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes")
    }
    times = []
    for i in range(repeats + 1):
        a = args_of(i)
        t0 = time.perf_counter()
        params, opt_state, metrics = compiled(params, opt_state, *a)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t0)
    return {
        "space": f"{space.name}:{space.variant}",
        "bits": list(space.bits),
        "image_size": data.image_size,
        "batch_size": config.batch_size,
        "archs_per_step": ARCHS_PER_STEP,
        "params": count_params(supernet),
        "build_s": build_s,
        "lower_s": lower_s,
        "compile_s": compile_s,
        "first_step_s": times[0],
        "step_s": float(np.median(times[1:])),
        "loss": float(metrics["loss"]),
        "memory_bytes": mem,
        "hlo_chars": len(lowered.as_text()),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import search_spaces

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--spaces",
        default=",".join(search_spaces.FAMILIES),
        help="comma-separated spaces (default: %(default)s)",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed steps after the first (default: %(default)s)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800,
        help="seconds per space before giving up (default: %(default)s)",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "compile.json", help="JSON results file"
    )
    parser.add_argument(
        "--bits",
        default="32",
        help="weight bit-widths of the supernet, e.g. 4,8,16,32 (default: %(default)s)",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one space, print JSON
    args = parser.parse_args(argv)
    bits = tuple(int(b) for b in args.bits.split(",")) if args.bits else None
    if args.one:
        print(json.dumps(measure(args.one, args.repeats, bits)))
        return {}
    import jax

    load_start = os.getloadavg()
    print(f"jax {jax.__version__}, {os.cpu_count()} CPUs; load {load_start[0]:.2f}", flush=True)
    env = {**os.environ, "JAX_ENABLE_COMPILATION_CACHE": "false", "JAX_COMPILATION_CACHE_DIR": ""}
    results: dict[str, Any] = {}
    for spec in [s.strip() for s in args.spaces.split(",") if s.strip()]:
        print(f"  {spec} ...", flush=True)
        t0 = time.perf_counter()
        try:
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one",
                    spec,
                    "--repeats",
                    str(args.repeats),
                    "--bits",
                    args.bits,
                ],
                capture_output=True,
                text=True,
                timeout=args.timeout,
                env=env,
            )
        except subprocess.TimeoutExpired:
            results[spec] = {"space": spec, "error": f"not compiled after {args.timeout:.0f} s"}
            continue
        if done.returncode != 0:
            lines = [
                ln
                for ln in done.stderr.strip().splitlines()
                if ln and not ln.startswith((" ", "For simplicity"))
            ]
            results[spec] = {"space": spec, "error": (lines or [f"exit status {done.returncode}"])[-1][:300]}
        else:
            results[spec] = {
                **json.loads(done.stdout.strip().splitlines()[-1]),
                "wall_s": time.perf_counter() - t0,
            }
        print(f"    {json.dumps(results[spec])}", flush=True)
    load_end = os.getloadavg()
    header = f"{'space':<14} {'params':>11} {'build s':>8} {'lower s':>8} {'compile s':>9} {'step s':>7} {'temp MB':>8}"
    print(header)
    print("-" * len(header))
    for res in results.values():
        if "error" in res:
            print(f"{res['space']:<14} {res['error']}")
            continue
        print(
            f"{res['space']:<14} {res['params']:>11,} {res['build_s']:>8.1f} {res['lower_s']:>8.1f} "
            f"{res['compile_s']:>9.1f} {res['step_s']:>7.2f} {res['memory_bytes']['temp_size_in_bytes'] / 2**20:>8.0f}"
        )
    print(f"load at end {load_end[0]:.2f}")
    report = {
        "jax_version": jax.__version__,
        "cpu_count": os.cpu_count(),
        "loadavg_start": list(load_start),
        "loadavg_end": list(load_end),
        "data": DATA,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"-> {args.out}")
    return report


if __name__ == "__main__":
    main()
