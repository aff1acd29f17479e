"""Latency tables, measured: predicted against measured latency of random whole mobilenet subnets.

Run: ``python benchmarks/latency.py`` (20-40 minutes on 2 CPU cores, most of it compiling whole
224 px networks: ~25 s each). What ``nasx profile --out`` and ``nasx profile --validate`` do, for
both clocks side by side:

1. profile every distinct block of the default mobilenet space (imagenet skeleton, 224 px,
   batch 1, float32) on this CPU into two tables, one on the wall clock and one on the process's
   CPU clock (``--tables``; a killed run resumes them);
2. sample ``--calibrate`` + ``-n`` distinct random architectures, extract each as a standalone
   network from the supernet (`Supernet.extract`), compile it, and time all of them in
   ``--rounds`` interleaved rounds (median of ``--repeats`` calls, both clocks at once: the more
   rounds, the more evenly the load of other processes spreads over the networks);
3. per clock, fit the table's per-network overhead on the ``--calibrate`` networks by least
   squares and compare predicted with measured latency on the other ``-n`` (held out): Spearman
   rank correlation and mean absolute percentage error (MAPE). Shown alongside: MACs alone as a
   predictor, and the agreement of the networks' own measurements between the first and second
   half of the rounds (the noise ceiling of any predictor on this machine at this moment).

On a machine shared with other jobs the wall clock measures the neighbours too (the load average is
recorded); the CPU clock does not count the time the process waits for a core. Prints a table and
writes ``benchmarks/results/latency.json``.

``python benchmarks/latency.py --search 35`` then searches under ``35ms-latency`` with the CPU-clock
table (what ``nasx search`` runs, `nasx.jobs.search.run_search`: aging evolution on DeepMAD's
entropy; ``nasx solve``, `nasx.jobs.solve.solve`: the MP solver; ``nasx sample``: three random
admitted architectures), measures the architectures they return as whole networks, and writes
``benchmarks/results/latency_search.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nasx.budget import parse_budget  # noqa: E402
from nasx.hardware.latency import ProfileSettings  # noqa: E402
from nasx.hardware.profile import profile_blocks  # noqa: E402
from nasx.hardware.subnets import fit_overhead, measure_programs, subnet_program  # noqa: E402
from nasx.stats import mape_percent, spearman  # noqa: E402
from nasx.supernet import build  # noqa: E402
from search_spaces import mobilenet  # noqa: E402
from search_spaces.mobilenet.supernet import MobileNetSupernet  # noqa: E402

CLOCKS = ("cpu", "wall")


def distinct_archs(space, n: int, rng: np.random.Generator) -> list:
    found: dict = {}
    while len(found) < n:
        arch = space.sample(rng)
        found.setdefault(arch.fingerprint, arch)
    return list(found.values())


def search_check(args: argparse.Namespace) -> None:
    """Search under a latency budget with the CPU-clock table, then measure what comes back."""
    import tempfile

    from nasx.budget import sample_admitted
    from nasx.hardware.latency import attach, load_table
    from nasx.jobs.search import SearchRequest, run_search
    from nasx.jobs.solve import SolveRequest, solve
    from nasx.space import Arch
    from search_spaces import make_space

    table_path = args.tables / f"mobilenet-{args.resolution}px-b{args.batch}-cpu-blocks.json"
    table = load_table(table_path)
    budget = f"{args.search:g}ms-latency"
    with tempfile.TemporaryDirectory() as tmp:
        request = SearchRequest(
            "mobilenet", budget, evaluations=300, out=f"{tmp}/run", latency_table=str(table_path)
        )
        searched = run_search(request)
    solved = solve(SolveRequest("mobilenet", budget, latency_table=str(table_path)))
    found = {"search (evolution)": searched.summary["best"], "solve (MP)": solved.summary["arch"]}
    settings = table.settings  # `nasx sample --latency-table`: the table's resolution and bits
    priced = attach(make_space("mobilenet", settings.bits), table, settings.resolution)
    sampled = sample_admitted(
        priced, parse_budget(budget), np.random.default_rng(1), 3, resolution=settings.resolution
    )
    for i, arch in enumerate(sampled):
        found[f"sample {i + 1}"] = arch.to_dict()
    space = mobilenet.space("imagenet", bits=(32,))
    archs = {name: space.validate(Arch(a)) for name, a in found.items()}
    supernet = build(MobileNetSupernet, space, seed=args.seed)
    programs = [
        subnet_program(supernet, a, args.batch, args.resolution, seed=args.seed) for a in archs.values()
    ]
    times = measure_programs(programs, warmup=3, repeats=args.repeats, rounds=args.rounds)
    rows = []
    print(f"\nunder {budget} (table {table_path.name}, overhead {table.overhead_ms:+.2f} ms)")
    print(f"{'found by':<20} {'arch':<18} {'predicted ms':>13} {'measured cpu ms':>16} {'within':>7}")
    for (name, arch), t in zip(archs.items(), times, strict=True):
        predicted = table.predict(space.blocks(arch, args.resolution))
        measured = statistics.median(t["cpu"])
        rows.append(
            {
                "found_by": name,
                "fingerprint": arch.fingerprint,
                "predicted_ms": predicted,
                "measured_cpu_ms": measured,
            }
        )
        within = "yes" if measured <= args.search else f"{100 * (measured / args.search - 1):+.0f} %"
        print(f"{name:<20} {arch.fingerprint:<18} {predicted:>13.2f} {measured:>16.2f} {within:>7}")
    out = args.out.with_name("latency_search.json")
    out.write_text(json.dumps({"budget": budget, "table": str(table_path), "rows": rows}, indent=2) + "\n")
    print(f"\nwrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50, help="held-out subnets to validate on (default 50)")
    parser.add_argument("--calibrate", type=int, default=8, help="subnets to fit the overhead on (default 8)")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=80, help="timed calls per network (default 80)")
    parser.add_argument(
        "--rounds", type=int, default=40, help="interleaved rounds of the networks (default 40)"
    )
    parser.add_argument("--table-repeats", type=int, default=40, help="timed calls per block (default 40)")
    parser.add_argument(
        "--table-rounds", type=int, default=10, help="interleaved rounds of the blocks (default 10)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tables", type=Path, default=ROOT / "runs" / "latency", help="folder of the tables")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "latency.json")
    parser.add_argument(
        "--search", type=float, metavar="MS", help="search under MS ms with the tables and measure"
    )
    args = parser.parse_args()
    if args.search:
        search_check(args)
        return

    start, load_start = time.perf_counter(), os.getloadavg()
    space = mobilenet.space("imagenet", bits=(32,))
    tables = {}
    for clock in CLOCKS:
        settings = ProfileSettings(
            "mobilenet:imagenet", args.resolution, batch=args.batch, repeats=args.table_repeats, clock=clock
        )
        path = args.tables / f"mobilenet-{args.resolution}px-b{args.batch}-{clock}-blocks.json"

        def report(done: int, total: int, block, ms: float | None, clock: str = clock) -> None:
            if ms is None or done % 200 == 0 or done == total:
                print(
                    f"  {clock} table: {done}/{total} block shares ({time.perf_counter() - start:.0f} s)",
                    flush=True,
                )

        tables[clock] = profile_blocks(
            space, settings, path, rounds=args.table_rounds, seed=args.seed, on_entry=report
        )

    supernet = build(MobileNetSupernet, space, seed=args.seed)
    archs = distinct_archs(space, args.calibrate + args.n, np.random.default_rng([args.seed, 3]))
    programs = []
    for i, arch in enumerate(archs, 1):
        programs.append(subnet_program(supernet, arch, args.batch, args.resolution, seed=args.seed))
        if i % 5 == 0 or i == len(archs):
            print(f"  compiled {i}/{len(archs)} subnets ({time.perf_counter() - start:.0f} s)", flush=True)
    times = measure_programs(programs, warmup=3, repeats=args.repeats, rounds=args.rounds)
    measured = {c: [statistics.median(t[c]) for t in times] for c in CLOCKS}
    half = args.repeats // 2  # the first rounds against the last ones

    cal, val = slice(0, args.calibrate), slice(args.calibrate, None)
    macs = [space.costs(a, args.resolution).macs for a in archs]
    results = {
        "device": tables["cpu"].device,
        "jax_version": jax.__version__,
        "space": "mobilenet:imagenet",
        "resolution": args.resolution,
        "batch": args.batch,
        "calibration_networks": args.calibrate,
        "validation_networks": args.n,
        "repeats": args.repeats,
        "rounds": args.rounds,
        "load_average": {"start": load_start[0], "end": os.getloadavg()[0]},
        "clocks": {},
        "rows": [],
    }
    predicted = {}
    for clock, table in tables.items():
        sums = [table.blocks_ms(space.blocks(a, args.resolution)) for a in archs]
        overhead = fit_overhead(sums[cal], measured[clock][cal])
        table.replace(overhead_ms=overhead, calibration={"networks": args.calibrate}).save()
        predicted[clock] = [s + overhead for s in sums]
        first = [statistics.median(t[clock][:half]) for t in times[val]]
        second = [statistics.median(t[clock][half:]) for t in times[val]]
        results["clocks"][clock] = {
            "spearman": spearman(predicted[clock][val], measured[clock][val]),
            "mape_percent": mape_percent(predicted[clock][val], measured[clock][val]),
            "overhead_ms": overhead,
            "macs_spearman": spearman(macs[val], measured[clock][val]),
            "split_half_spearman": spearman(first, second),
            "split_half_mape_percent": mape_percent(first, second),
            "table": str(table.path),
        }
    for i, arch in enumerate(archs[val], args.calibrate):
        results["rows"].append(
            {
                "fingerprint": arch.fingerprint,
                "macs": macs[i],
                **{f"predicted_{c}_ms": predicted[c][i] for c in CLOCKS},
                **{f"measured_{c}_ms": measured[c][i] for c in CLOCKS},
            }
        )
    results["seconds"] = time.perf_counter() - start

    print(f"\n{'arch':<18} {'MMACs':>7} {'cpu pred':>9} {'cpu meas':>9} {'wall pred':>10} {'wall meas':>10}")
    for r in results["rows"]:
        print(
            f"{r['fingerprint']:<18} {r['macs'] / 1e6:>7.0f} {r['predicted_cpu_ms']:>9.2f} "
            f"{r['measured_cpu_ms']:>9.2f} {r['predicted_wall_ms']:>10.2f} {r['measured_wall_ms']:>10.2f}"
        )
    print(
        f"\n{args.n} held-out subnets, overhead fitted on {args.calibrate}; load average "
        f"{results['load_average']['start']:.1f} at the start, {results['load_average']['end']:.1f} at the end"
    )
    print(
        f"{'clock':<6} {'Spearman':>9} {'MAPE %':>7} {'overhead ms':>12} {'MACs Spearman':>14} {'split-half':>16}"
    )
    for clock, r in results["clocks"].items():
        print(
            f"{clock:<6} {r['spearman']:>9.3f} {r['mape_percent']:>7.1f} {r['overhead_ms']:>+12.3f} "
            f"{r['macs_spearman']:>14.3f} {r['split_half_spearman']:>7.3f} {r['split_half_mape_percent']:>5.1f} %"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
