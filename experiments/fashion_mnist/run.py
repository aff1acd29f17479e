"""Fashion-MNIST: do nasx's searched networks beat hand-designed ones on real data?

Command (from the repository root; it took 2 h 15 min on this machine's 2 cores, shared with other
jobs most of the time; see results/timings.json)::

    python experiments/fashion_mnist/run.py [--out DIR] [--quick]

``--quick`` runs the same path on the embedded digits (upscaled to 28 px) with every schedule cut
to a few steps; ``tests/experiments/test_fashion_mnist.py`` runs it. Each stage writes its result into
``OUT`` (default ``experiments/fashion_mnist/results``: small JSON, the table and the plot, meant
to be committed) and its heavy files (Orbax checkpoints, run logs, exported models) under
``OUT/work``, which ignores itself (``OUT/work/.gitignore``). A rerun skips every stage whose
result file exists; a killed stage continues where it stopped: trainings resume from their last
checkpoint, searches replay their run log, finished networks are read back (``study.py``).

Stages (result file in ``OUT``; the searched space is ``resnet:small``, the CIFAR ResNet layout
at 28 px with elastic widths and depths):

1. ``supernet`` (supernet.json): the weight-sharing supernet on the 54k training images
   (sandwich sampling, in-place distillation; `nasx.jobs.train.train_supernet`).
2. ``search`` (search.json): one search under each of three MAC budgets, every architecture
   scored by the accuracy it gets with the supernet's weights on the 6k *validation* images (batch
   norm re-calibrated): aging evolution for tiny and small; NSGA-II over (accuracy, MACs) for
   medium, whose Pareto front stage 6 exports (an evolution's front is its one best network).
3. ``found`` (found.json): each search's best architecture trained from scratch for ``E`` epochs.
4. ``baselines`` (baselines.json), same recipe and ``E``: at each budget a MobileNetV2-style
   network (the uniform kernel-3, expansion-6, no-SE point of ``mobilenet:small``, one depth in
   every stage, the largest in the budget; expansion lowered only where no expansion-6 network
   fits, and said so) and He et al.'s CIFAR ResNet-20 scaled in width to the budget
   (`baselines.py`); once, the benchmark table's "2 Conv <100K parameters" network.
5. ``random`` (random.json): architectures drawn with ``space.sample`` (those above the largest
   budget rejected: counted in the file) and the three found ones, trained ``E_r`` epochs; Kendall
   tau between supernet-inherited validation accuracy and from-scratch test accuracy over all.
6. ``families`` (families.json): the sorted and the stitched family of the medium front
   (`nasx.jobs.export.export_front`), each member's test accuracy next to the same architecture
   trained alone for ``E`` epochs (a stitch of two architectures has no such twin).
7. ``report``: ``table.md``, ``plot.png`` (test accuracy vs MACs) and ``summary.json``: each
   target measured, met or missed and by how much, with these numbers and their reasons.

Every network trains with the dataset's recipe (`nasx.jobs.recipes`: SGD + Nesterov, peak 0.1 at
batch 128, cosine, 3 % warm-up, L2 5e-4, label smoothing 0.1, random crop + flip) and is measured
on the validation split and on the official 10k test split. Selection (searches, stitches) reads
only the validation split.

Numbers (`FULL`) and what they rest on: time per training step at batch 128, 28 px, measured
on this machine (2 cores, nearly idle) before choosing them: resnet:small networks of 0.49M,
2.6M, 9.1M, 11.3M and 23M MACs take 0.038, 0.076, 0.30, 0.27 and 0.46 s (16 s to 3.2 min per
epoch of 421 steps); mobilenet:small networks 0.09 s at 1.5M MACs to 1.2 s at 19M (depthwise
and elementwise layers are memory-bound on XLA:CPU, so MobileNets cost 3-5x a ResNet of equal
MACs here); the 2-conv network (10.7M MACs) 0.25 s; the masked supernet runs each sampled subnet
at full size (23M MACs). Hence (estimated minutes with the machine to itself):

* budgets 1.3M MACs and 100K parameters (tiny), 4M (small), 12M (medium): a 9.2x span. The
  space's top (23M) would make the medium networks twice as dear to train; no MobileNetV2-style
  point of mobilenet:small is below 2.7M MACs, so tiny has the ResNet-20 and the found network;
* supernet: 1 epoch, 3 subnets a step (sandwich: largest, smallest, one random) [12];
* searches: 24 evaluations each, population 8 [12];
* ``E`` = 3 epochs for the 3 found, 5 baseline and up to 3 family networks (the smallest, middle
  and largest member not trained already) [50 + 10];
* ``E_r`` = 0.5 epoch for 20 random and the 3 found networks, after scoring them with the
  supernet [15]: enough to rank architectures, not to converge them;
* families: 100 steps of sorted fine-tuning and of stitch training, 2 anchors [5].

After 3 epochs accuracies are below converged ones (the benchmark table's networks trained for
tens of epochs), so the targets on absolute accuracy (92.5 %, 94 %) may be missed: the
comparison between networks trained alike is what the study can show in 3 hours on 2 cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from study import STAGES, Settings, result_file, run  # noqa: E402

__all__ = ["FULL", "QUICK", "STAGES", "main", "result_file", "run"]

_NUMBERS = __doc__[__doc__.index("Numbers (`FULL`)") :].strip()

FULL = Settings(
    data="fashion-mnist",
    image_size=28,
    space="resnet:small",
    budgets=("1.3M-flops,100K-params", "4M-flops", "12M-flops"),
    baseline_space="mobilenet:small",
    supernet_epochs=1.0,
    archs_per_step=3,
    supernet_batch=None,  # the recipe's 128
    evaluations=24,
    population=8,
    search_batch=8,  # the supernet evaluator scores 8 architectures per call
    epochs=3.0,
    random_epochs=0.5,
    random_count=20,
    finetune=100,
    stitch_steps=100,
    anchors=2,
    twins=3,
    workers=2,
    notes={"numbers": _NUMBERS},
)
QUICK = dataclasses.replace(
    FULL,
    data="digits",
    archs_per_step=2,
    supernet_batch=64,
    evaluations=8,
    population=4,
    epochs=1.0,
    random_epochs=0.5,
    random_count=2,
    finetune=2,
    stitch_steps=2,
    twins=2,
    notes={"numbers": "--quick: the same path on the embedded digits, every schedule cut to a few steps"},
)
"""The same path on the embedded digits (1,294 training images, upscaled to 28 px), for the tests."""


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=HERE / "results", help="result folder (default: %(default)s)"
    )
    parser.add_argument("--quick", action="store_true", help="the same path on digits with tiny schedules")
    args = parser.parse_args(argv)
    return run(QUICK if args.quick else FULL, args.out.expanduser().resolve())


if __name__ == "__main__":
    import jax

    # networks of equal shapes compile once, also across reruns (the entry point may configure JAX)
    jax.config.update("jax_compilation_cache_dir", str(Path.home() / ".cache" / "nasx-fashion-mnist-jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    main()
