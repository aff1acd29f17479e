"""Analytic cost model speed: architectures costed per second, per space, and `nasx cost` end to end.

Run: ``python benchmarks/costs.py`` (about half a minute). Target on a 2-core machine:
>= 20,000 archs/s for nb201 and mobilenet. Architectures are distinct random samples, so no
whole-network result is served from a cache (per-layer caches warm up as in a real search).
Prints a table and writes ``benchmarks/results/costs.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import search_spaces  # noqa: E402
from nasx.space_family import SpaceFamily  # noqa: E402

TARGET_ARCHS_PER_S = 20_000
"""The speed the cost model is held to on a 2-core machine, for the spaces in `TARGET_SPACES`."""
TARGET_SPACES = ("nb201", "mobilenet")
"""The spaces a search costs the most architectures of (cell and block spaces)."""


def archs_per_second(family: SpaceFamily, n: int, seed: int = 0) -> dict[str, float]:
    space = family.make()
    rng = np.random.default_rng(seed)
    archs = list(dict.fromkeys(space.sample(rng) for _ in range(n)))
    start = time.perf_counter()
    for arch in archs:
        space.costs(arch)
    seconds = time.perf_counter() - start
    return {"archs": len(archs), "seconds": seconds, "archs_per_s": len(archs) / seconds}


def cli_seconds(argv: list[str], repeats: int) -> float:
    """Median wall time of a fresh `nasx ...` process (imports included)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nasx.cli", *argv], check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5000, help="architectures sampled per space")
    parser.add_argument("--repeats", type=int, default=5, help="runs of the CLI to take the median of")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "costs.json")
    args = parser.parse_args()

    results = {"spaces": {}, "cli": {}}
    print(f"{'space':<10} {'archs':>7} {'archs/s':>10}  target")
    for name, family in search_spaces.FAMILIES.items():
        r = archs_per_second(family, args.n)
        results["spaces"][name] = r
        target = f">= {TARGET_ARCHS_PER_S:,}" if name in TARGET_SPACES else ""
        print(f"{name:<10} {r['archs']:>7} {r['archs_per_s']:>10,.0f}  {target}")

    commands = {
        "nasx cost --arch nasnet-a-mobile --json": ["cost", "--arch", "nasnet-a-mobile", "--json"],
        "nasx cost --arch resnet-50 --json": ["cost", "--arch", "resnet-50", "--json"],
        "python -c 'import numpy' (floor)": None,
    }
    print(f"\n{'command':<45} {'median s':>9}")
    for label, argv in commands.items():
        if argv is None:
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                subprocess.run([sys.executable, "-c", "import numpy"], check=True)
                times.append(time.perf_counter() - start)
            seconds = statistics.median(times)
        else:
            seconds = cli_seconds(argv, args.repeats)
        results["cli"][label] = seconds
        print(f"{label:<45} {seconds:>9.3f}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
