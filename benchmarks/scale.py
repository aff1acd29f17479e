"""Scale, measured: population evaluation on 1, 2 and 4 devices; Ray's overhead per trial.

Run: ``python benchmarks/scale.py`` (a few minutes on 2 CPU cores). Side by side, in one run:

(a) architectures per second of a zero-cost proxy (``--proxy``, default synflow) on the masked
    mobilenet proxy supernet (cifar skeleton, width 0.25, the network `nasx search` scores on),
    a population of ``--population`` archs split over 1, 2 and 4 local devices
    (`nasx.devices.over_devices`), compile time apart. This machine has no accelerator: the
    devices are CPU devices emulated with ``--xla_force_host_platform_device_count`` that share
    the same cores, so the ratio shows the sharding works and what it costs, not the speed-up
    real devices give;
(b) Ray Tune's overhead per trial: the same search (aging evolution, analytic DeepMAD entropy,
    ``--evaluations`` archs in chunks of ``--chunk``) in-process and on a local Ray instance
    (``num_cpus=2``), and the difference per trial.

Prints a table and writes ``benchmarks/results/scale.json``.
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")  # before JAX starts

import argparse
import functools
import json
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nasx.budget import parse_budget  # noqa: E402
from nasx.data import load  # noqa: E402
from nasx.devices import ARCHS, local_mesh, replicate  # noqa: E402
from nasx.proxies import PROXIES, make_proxy  # noqa: E402
from nasx.search import SearchRun, search  # noqa: E402
from nasx.supernet import build, functional  # noqa: E402
from search_spaces import mobilenet  # noqa: E402
from search_spaces.mobilenet.supernet import MobileNetSupernet  # noqa: E402
from solvers.evolution import AgingEvolution  # noqa: E402


def devices(proxy: str, population: int, repeats: int) -> list[dict]:
    """(a): archs/s of `proxy` over `population` archs on 1, 2 and 4 devices."""
    space = mobilenet.space("cifar", bits=(32,), width_mult=0.25)
    _, params, apply = functional(build(MobileNetSupernet, space, seed=0))
    data = load("digits", size=32, seed=0)
    p = PROXIES[proxy]
    x, y = jnp.asarray(data.x_train[: p.batch_size]), jnp.asarray(data.y_train[: p.batch_size])
    rng = np.random.default_rng(0)
    archs = jnp.asarray(np.stack([space.encode(space.sample(rng)) for _ in range(population)]), jnp.int32)
    rows, reference = [], None
    for n in (1, 2, 4):
        mesh = local_mesh(ARCHS, n)
        fn = make_proxy(apply, p, mesh=mesh)
        replicated = replicate(params, mesh)
        start = time.perf_counter()
        scores = np.asarray(fn(replicated, archs, x, y, jax.random.key(0)))
        compile_s = time.perf_counter() - start
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready(fn(replicated, archs, x, y, jax.random.key(0)))
            times.append(time.perf_counter() - start)
        reference = scores if reference is None else reference
        rows.append(
            {
                "devices": n,
                "archs_per_s": population / float(np.median(times)),
                "first_call_s": compile_s,
                "max_abs_diff_vs_1": float(np.max(np.abs(scores - reference))),
            }
        )
        print(f"    {n} device(s): {rows[-1]['archs_per_s']:.1f} archs/s", flush=True)
    return rows


def ray_overhead(evaluations: int, chunk: int) -> dict:
    """(b): the same search in-process and on local Ray; seconds per trial of difference."""
    import ray

    from nasx import ray_tune
    from nasx.jobs.evaluators import EvaluatorSettings, worker_evaluator

    space = mobilenet.space("cifar", bits=(32,))
    budget = parse_budget("300M-flops")
    settings = EvaluatorSettings(rho=mobilenet.FAMILY.default_rho)  # what `nasx search` uses
    make = functools.partial(worker_evaluator, "entropy", space, settings)

    def strategy():
        return AgingEvolution(space, budget=budget, population_size=16, sample_size=4)

    start = time.perf_counter()
    here = search(
        space, strategy(), make(), ("entropy",), evaluations=evaluations, batch_size=16, budget=budget
    )
    in_process_s = time.perf_counter() - start
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            run = SearchRun(
                space,
                strategy(),
                ("entropy",),
                evaluations=evaluations,
                batch_size=16,
                budget=budget,
                run_dir=tmp,
            )
            start = time.perf_counter()
            with run:
                ray_tune.run_search(run, make, chunk=chunk, storage=Path(tmp) / "tune")
            ray_s = time.perf_counter() - start
            same = [e.arch for e in run.result().evaluations] == [e.arch for e in here.evaluations]
    finally:
        ray.shutdown()
    trials = -(-evaluations // chunk)
    return {
        "evaluations": evaluations,
        "chunk": chunk,
        "trials": trials,
        "in_process_s": in_process_s,
        "ray_s": ray_s,
        "overhead_per_trial_s": (ray_s - in_process_s) / trials,
        "same_archs": same,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxy", default="synflow", choices=sorted(PROXIES))
    parser.add_argument("--population", type=int, default=64, help="archs per evaluation call in (a)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--evaluations", type=int, default=64, help="archs of the search in (b)")
    parser.add_argument("--chunk", type=int, default=4, help="archs per Ray trial in (b)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scale.json")
    args = parser.parse_args()
    print(f"{jax.local_device_count()} local {jax.devices()[0].platform} devices, {os.cpu_count()} cores")
    rows = devices(args.proxy, args.population, args.repeats)
    base = rows[0]["archs_per_s"]
    print(f"(a) {args.proxy}, {args.population} archs per call (emulated CPU devices share the cores):")
    for r in rows:
        print(
            f"    {r['devices']} device(s): {r['archs_per_s']:7.1f} archs/s ({r['archs_per_s'] / base:.2f}x), "
            f"first call {r['first_call_s']:.1f} s, max |score - 1-device score| {r['max_abs_diff_vs_1']:.2g}"
        )
    ray_row = ray_overhead(args.evaluations, args.chunk)
    print(
        f"(b) {ray_row['evaluations']} archs in {ray_row['trials']} Ray trials of {ray_row['chunk']}: "
        f"in-process {ray_row['in_process_s']:.2f} s, Ray {ray_row['ray_s']:.2f} s -> "
        f"{ray_row['overhead_per_trial_s'] * 1e3:.0f} ms overhead per trial; same archs: {ray_row['same_archs']}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"devices": rows, "ray": ray_row, **{k: str(v) for k, v in vars(args).items()}}, indent=2)
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
