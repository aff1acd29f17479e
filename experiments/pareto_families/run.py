"""Search -> export, end to end on the embedded digits: a supernet, its Pareto front, and the
front shipped as a sorted family and as a stitched family.

Command (from the repository root, 30-45 min on 2 busy CPU cores)::

    python experiments/pareto_families/run.py --out /tmp/pareto_families

Steps, each a library job (`nasx.jobs`), the same as a `nasx` command (printed before it runs,
so any step can be re-run by hand):

1. ``nasx train-supernet``: the mobilenet (MBConv, OFA-style) supernet at width 0.25, 16 px digits,
   sandwich sampling;
2. ``nasx search --evaluator supernet:...``: NSGA-II over accuracy (inherited weights, batch norm
   re-calibrated) and MACs;
3. ``nasx export --family sorted --finetune``: the front's longest chain of nested architectures
   of most hypervolume, fine-tuned together, one checkpoint;
4. ``nasx export --family stitched``: anchors of different sizes from the front joined by
   least-squares-initialised stitching layers, the Pareto-optimal stitch configurations;
5. ``nasx report``: the front plot with the exported family highlighted.

Expected result: every step succeeds; each family's members load back (`nasx.load_family`) and
reproduce the accuracy recorded at export (checked at the end); the README's "Shipping a family"
section shows the output of one run and its plot.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from nasx import load_family  # noqa: E402
from nasx.data import load  # noqa: E402
from nasx.jobs.export import ExportRequest, export_front  # noqa: E402
from nasx.jobs.report import ReportRequest, report_run  # noqa: E402
from nasx.jobs.search import SearchRequest, run_search  # noqa: E402
from nasx.jobs.train import TrainRequest, train_supernet  # noqa: E402


def announce(command: str) -> None:
    """Print the `nasx` command a step is equivalent to."""
    print(f"$ nasx {command}", flush=True)


def check(folder: Path, image_size: int) -> list[tuple[str, float, float]]:
    """(member, accuracy recorded at export, accuracy of the loaded member) for every member."""
    family = load_family(folder)
    data = load("digits", size=image_size, seed=0)
    rows = []
    for i, member in enumerate(family.members):
        logits = np.asarray(family.run(i, data.x_test))
        rows.append(
            (
                member.folder.name,
                member.metrics["test_accuracy"],
                float(np.mean(logits.argmax(-1) == data.y_test)),
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for every step's output")
    parser.add_argument("--steps", type=int, default=200, help="supernet training steps")
    parser.add_argument("--evaluations", type=int, default=128, help="architectures the search scores")
    parser.add_argument(
        "--budget", default="16M-flops", help="search budget (the width-0.25 cifar network: 7-22M MACs)"
    )
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--width-mult", type=float, default=0.25, help="supernet width multiplier")
    parser.add_argument("--batch-size", type=int, default=32, help="supernet training batch")
    parser.add_argument("--finetune", type=int, default=50, help="sorted fine-tuning steps")
    parser.add_argument("--stitch-steps", type=int, default=50, help="stitching-layer training steps")
    args = parser.parse_args()
    out = args.out.expanduser().resolve()
    supernet, search = out / "supernet", out / "search"

    announce(
        f"train-supernet --space mobilenet --width-mult {args.width_mult} --bits 32 --batch-size {args.batch_size} "
        f"--image-size {args.image_size} --steps {args.steps} --out {supernet}"
    )
    trained = train_supernet(
        TrainRequest(
            space="mobilenet",
            out=supernet,
            steps=args.steps,
            batch_size=args.batch_size,
            bits=(32,),
            width_mult=args.width_mult,
            image_size=args.image_size,
        )
    )
    print(f"  supernet test accuracy: {dict(trained.test_accuracy)}", flush=True)
    announce(
        f"search --space mobilenet --budget {args.budget} --objectives acc,macs --evaluator supernet:{supernet} "
        f"--strategy nsga2 --population 16 --evaluations {args.evaluations} --out {search}"
    )
    found = run_search(
        SearchRequest(
            "mobilenet",
            args.budget,
            strategy="nsga2",
            evaluator=f"supernet:{supernet}",
            objectives=("acc", "macs"),
            population=16,
            evaluations=args.evaluations,
            out=search,
        )
    )
    print(f"  front: {len(found.summary.get('front', []))} architectures", flush=True)
    announce(f"export {search} --family sorted --finetune {args.finetune} --out {out / 'sorted'}")
    sorted_family = export_front(
        ExportRequest(search, kind="sorted", finetune=args.finetune, out=out / "sorted")
    )
    announce(
        f"export {search} --family stitched --anchors 2 --stitch-steps {args.stitch_steps} --out {out / 'stitched'}"
    )
    stitched = export_front(
        ExportRequest(
            search, kind="stitched", anchors=2, stitch_steps=args.stitch_steps, out=out / "stitched"
        )
    )
    families = (sorted_family.out, stitched.out)
    announce(f"report {search} --out {out / 'report'} --family {families[0]} --family {families[1]}")
    report_run(ReportRequest(search, out=out / "report", families=families))
    for name, result in (("sorted", sorted_family), ("stitched", stitched)):
        print(f"\n{name} family ({out / name}):")
        for member, recorded, loaded in check(result.out, args.image_size):
            print(f"  {member:<40} recorded {recorded:.4f}  loaded {loaded:.4f}")


if __name__ == "__main__":
    main()
