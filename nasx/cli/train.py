"""`nasx train-supernet`: parse, call `nasx.jobs.train.train_supernet`, draw its progress and summary."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from nasx.budget import format_amount
from nasx.cli._args import emit_json, parse_bits, positive_float, positive_int, seed_int
from nasx.jobs.train import TrainingStart, TrainRequest, train_supernet
from nasx.sampling import RULES

__all__ = ["add_parsers", "cmd_train_supernet"]


def cmd_train_supernet(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    request = TrainRequest(
        space=args.space,
        out=args.out,
        data=args.data,
        steps=args.steps,
        sampling=args.sampling,
        archs_per_step=args.archs_per_step,
        batch_size=args.batch_size,
        devices=args.devices,
        learning_rate=args.lr,
        seed=args.seed,
        bits=args.bits,
        width_mult=args.width_mult,
        image_size=args.image_size,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
    )
    err = Console(stderr=True)
    bar = Progress(
        TextColumn("[bold]step {task.completed}/{task.total}"),
        BarColumn(),
        TextColumn("loss {task.fields[loss]:.3f}  acc {task.fields[acc]:.2f}  {task.fields[ips]:.0f} img/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=args.json,
    )
    task = None

    def on_start(start: TrainingStart) -> None:
        nonlocal task
        err.print(
            f"training the {start.space.name}:{start.space.variant} supernet ({start.params:,} params) on "
            f"{start.data_name} ({start.images} images, {start.image_size} px), {start.sampling} sampling, "
            f"{start.devices} {start.platform} device(s) -> {start.folder}"
        )
        bar.start()
        task = bar.add_task("train", total=start.steps, loss=float("nan"), acc=0.0, ips=0.0)

    def on_step(step: int, m: dict[str, float]) -> None:
        bar.update(task, completed=step, loss=m["loss"], acc=m["acc_first"], ips=m["images_per_s"])

    try:
        run = train_supernet(request, on_start=on_start, on_step=on_step)
    finally:
        if task is not None:  # started: stop it (an error before the first step leaves no bar)
            bar.stop()
    if args.json:
        emit_json(run.summary)
        return 0
    space = run.space
    table = Table(
        title=f"{space.name}:{space.variant} supernet after {run.steps} steps (BN re-calibrated per subnet)"
    )
    table.add_column("subnet")
    table.add_column("test accuracy", justify="right")
    table.add_column("MACs", justify="right")
    for name, arch in run.archs.items():
        table.add_row(name, f"{run.test_accuracy[name]:.1%}", format_amount(space.costs(arch).macs))
    Console().print(table)
    Console().print(f"checkpoint and metrics.jsonl in {run.folder}")
    return 0


def add_parsers(sub, spaces_help: str) -> None:
    p = sub.add_parser(
        "train-supernet",
        help="train a weight-sharing supernet (one compile for every subnet) and checkpoint it",
        description="Trains the space's supernet on its CIFAR-size (32 px) variant. Output: DIR/checkpoints "
        "(Orbax), DIR/metrics.jsonl, DIR/summary.json.",
    )
    p.add_argument("--space", required=True, help=spaces_help + "; default variant: cifar")
    p.add_argument(
        "--data",
        default="digits",
        help="digits (default, embedded), cifar10:PATH, cifar100:PATH, npz:PATH, synthetic",
    )
    p.add_argument("--steps", type=positive_int, default=300, help="training steps (default 300)")
    p.add_argument("--out", required=True, help="run folder (checkpoints, metrics)")
    p.add_argument(
        "--sampling",
        choices=RULES,
        default="sandwich",
        help="which subnets each step trains (default sandwich)",
    )
    p.add_argument(
        "--archs-per-step", type=positive_int, default=4, help="subnets trained per step (default 4)"
    )
    p.add_argument("--batch-size", type=positive_int, default=64, help="images per step (default 64)")
    p.add_argument(
        "--devices",
        type=positive_int,
        help="split each batch over this many local devices (default: all; the batch size must be a multiple)",
    )
    p.add_argument(
        "--lr", type=positive_float, default=0.1, help="peak learning rate, cosine schedule (default 0.1)"
    )
    p.add_argument("--seed", type=seed_int, default=0, help="random seed (default 0)")
    p.add_argument("--bits", type=parse_bits, help="weight bit-widths to choose from, e.g. 32 or 4,8,16,32")
    p.add_argument(
        "--width-mult", type=positive_float, help="scale the fixed widths of the skeleton (mobilenet)"
    )
    p.add_argument(
        "--image-size", type=positive_int, help="train and test at this many px (default: the space's, 32)"
    )
    p.add_argument(
        "--checkpoint-every", type=positive_int, default=100, help="steps between checkpoints (default 100)"
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=cmd_train_supernet)
