"""`nasx train-supernet` and `nasx train`: parse, call `nasx.jobs.train.train_supernet` or
`nasx.jobs.fit.train_network`, draw their progress and summaries."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from nasx.budget import format_amount
from nasx.cli._args import (
    DATA_HELP,
    emit_json,
    fraction,
    nonnegative_float,
    open_fraction,
    parse_bits,
    positive_float,
    positive_int,
    resolution_px,
    seed_int,
)
from nasx.jobs.fit import FitRequest, FitStart, train_network
from nasx.jobs.recipes import RECIPES
from nasx.jobs.train import TrainingStart, TrainRequest, train_supernet
from nasx.sampling import RULES

__all__ = ["add_parsers", "cmd_train_supernet", "cmd_train"]

RECIPE_HELP = "; ".join(
    f"{name}: {r.epochs:g} epochs, batch {r.batch_size}" for name, r in RECIPES.items() if name != "synthetic"
)


def _progress(err: Console, disable: bool):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]step {task.completed}/{task.total}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=disable,
    )


def cmd_train_supernet(args: argparse.Namespace) -> int:
    request = TrainRequest(
        space=args.space,
        out=args.out,
        data=args.data,
        steps=args.steps,
        epochs=args.epochs,
        sampling=args.sampling,
        archs_per_step=args.archs_per_step,
        batch_size=args.batch_size,
        devices=args.devices,
        learning_rate=args.lr,
        label_smoothing=args.label_smoothing,
        val_fraction=args.val_fraction,
        seed=args.seed,
        bits=args.bits,
        width_mult=args.width_mult,
        image_size=args.image_size,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
    )
    err = Console(stderr=True)
    bar = _progress(err, args.json)
    task = None

    def on_start(start: TrainingStart) -> None:
        nonlocal task
        err.print(
            f"training the {start.space.name}:{start.space.variant} supernet ({start.params:,} params) on "
            f"{start.data_name} ({start.images} images, {start.image_size} px), {start.sampling} sampling, "
            f"{start.devices} {start.platform} device(s) -> {start.folder}"
        )
        bar.start()
        task = bar.add_task("train", total=start.steps, status="compiling the step ...")

    def on_step(step: int, m: dict[str, float]) -> None:
        status = f"loss {m['loss']:.3f}  acc {m['acc_first']:.2f}  {m['images_per_s']:.0f} img/s"
        bar.update(task, completed=step, status=status)

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
    table.add_column("val accuracy", justify="right")
    table.add_column("test accuracy", justify="right")
    table.add_column("MACs", justify="right")
    for name, arch in run.archs.items():
        table.add_row(
            name,
            f"{run.val_accuracy[name]:.1%}",
            f"{run.test_accuracy[name]:.1%}",
            format_amount(space.costs(arch).macs),
        )
    Console().print(table)
    Console().print(f"checkpoint and metrics.jsonl in {run.folder}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    request = FitRequest(
        arch=args.arch,
        out=args.out,
        space=args.space,
        data=args.data,
        epochs=args.epochs,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing,
        image_size=args.image_size,
        val_fraction=args.val_fraction,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
    )
    err = Console(stderr=True)
    bar = _progress(err, args.json)
    task = None

    def on_start(start: FitStart) -> None:
        nonlocal task
        err.print(
            f"training {start.space.name}:{start.space.variant} {start.arch.fingerprint} ({start.params:,} params, "
            f"{format_amount(start.macs)} MACs) from scratch on {start.data_name} ({start.images} training images, "
            f"{start.image_size} px), {start.epochs:.3g} epochs = {start.steps} steps of {start.batch_size} -> {start.folder}"
        )
        bar.start()
        task = bar.add_task("train", total=start.steps, status="compiling the step ...")

    def on_step(step: int, m: dict[str, float]) -> None:
        status = f"loss {m['loss']:.3f}  acc {m['train_accuracy']:.2f}  {m['images_per_s']:.0f} img/s"
        bar.update(task, completed=step, status=status)

    try:
        run = train_network(request, on_start=on_start, on_step=on_step)
    finally:
        if task is not None:
            bar.stop()
    summary = run.summary
    if args.json:
        emit_json(summary)
        return 0
    table = Table(
        title=f"{run.space.name}:{run.space.variant} {run.arch.fingerprint} after {summary['epochs']:g} epochs"
    )
    for column in ("params", "MACs", "val accuracy", "test accuracy", "train time"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{summary['params']:,}",
        format_amount(summary["costs"]["macs"]),
        f"{summary['accuracy']['val']:.2%}",
        f"{summary['accuracy']['test']:.2%}",
        f"{summary['train_seconds']:.0f} s",
    )
    Console().print(table)
    Console().print(
        f"checkpoints, metrics.jsonl, summary.json in {run.folder}; ship it: nasx export {run.folder}"
    )
    return 0


def add_parsers(sub, spaces_help: str) -> None:
    p = sub.add_parser(
        "train-supernet",
        help="train a weight-sharing supernet (one compile for every subnet) and checkpoint it",
        description="Trains the space's supernet on its CPU-sized variant (see --space). Defaults (epochs, batch, "
        "learning rate, image size) fit the dataset. Output: DIR/checkpoints "
        "(Orbax), DIR/metrics.jsonl, DIR/summary.json.",
    )
    p.add_argument(
        "--space",
        required=True,
        help=spaces_help
        + "; default variant: small (sized for a CPU) in mobilenet and resnet, cifar in nasnet, "
        "cifar10 in nb201; name one for another (e.g. mobilenet:cifar, the full-width CIFAR layout)",
    )
    p.add_argument("--data", default="digits", help=DATA_HELP)
    length = p.add_mutually_exclusive_group()
    length.add_argument(
        "--epochs",
        type=positive_float,
        help="passes over the training split (default per dataset: "
        + ", ".join(f"{n} {r.supernet_epochs:g}" for n, r in RECIPES.items() if n != "synthetic")
        + ")",
    )
    length.add_argument("--steps", type=positive_int, help="training steps (instead of --epochs)")
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
    p.add_argument(
        "--batch-size", type=positive_int, help="images per step (default: 64, 128 for the larger datasets)"
    )
    p.add_argument(
        "--devices",
        type=positive_int,
        help="split each batch over this many local devices (default: all; the batch size must be a multiple)",
    )
    p.add_argument("--lr", type=positive_float, help="peak learning rate, warm-up + cosine (default 0.1)")
    p.add_argument("--label-smoothing", type=fraction, help="of the largest subnet's labels (default 0.1)")
    p.add_argument(
        "--val-fraction",
        type=open_fraction,
        default=0.1,
        help="share of the training images held out for validation, which searches score on (default 0.1)",
    )
    p.add_argument("--seed", type=seed_int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--bits",
        type=parse_bits,
        help="weight bit-widths to choose from, e.g. 32 (float only) or 4,8,16,32 (default: the space's)",
    )
    p.add_argument(
        "--width-mult", type=positive_float, help="scale the fixed widths of the skeleton (mobilenet)"
    )
    p.add_argument(
        "--image-size", type=resolution_px, help="train and test at this many px (default: the data's own)"
    )
    p.add_argument(
        "--checkpoint-every", type=positive_int, default=100, help="steps between checkpoints (default 100)"
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=cmd_train_supernet)

    p = sub.add_parser(
        "train",
        help="train one architecture from scratch (a search's find, a preset, an arch file) and test it",
        description="Trains the architecture alone, with the dataset's recipe (SGD + Nesterov, warm-up + cosine, "
        "label smoothing, random crops and flips where valid, batch norm re-calibrated), and measures it on the "
        "validation split (held out from the training images) and the test split. Defaults per dataset: "
        + RECIPE_HELP
        + ". Output: DIR/checkpoints (Orbax), DIR/metrics.jsonl, DIR/summary.json; nasx export DIR ships it.",
    )
    p.add_argument(
        "--arch",
        required=True,
        help="a preset, an architecture JSON file or inline JSON (with --space), a search's --out folder "
        "(its best) or RUN_DIR#K (the K-th member of its front, from 1)",
    )
    p.add_argument("--space", help=spaces_help + "; needed for architecture files")
    p.add_argument("--data", default="digits", help=DATA_HELP)
    p.add_argument("--out", required=True, help="run folder (checkpoints, metrics, summary)")
    length = p.add_mutually_exclusive_group()
    length.add_argument(
        "--epochs", type=positive_float, help="passes over the training split (default per dataset)"
    )
    length.add_argument("--steps", type=positive_int, help="optimizer steps (instead of --epochs)")
    p.add_argument("--batch-size", type=positive_int, help="images per step (default 128; digits 64)")
    p.add_argument("--lr", type=positive_float, help="peak learning rate, warm-up + cosine (default 0.1)")
    p.add_argument("--weight-decay", type=nonnegative_float, help="L2 weight decay (default 5e-4)")
    p.add_argument("--label-smoothing", type=fraction, help="label smoothing (default 0.1)")
    p.add_argument(
        "--image-size", type=resolution_px, help="train and test at this many px (default: the data's own)"
    )
    p.add_argument(
        "--val-fraction",
        type=open_fraction,
        default=0.1,
        help="share of the training images held out for validation (default 0.1)",
    )
    p.add_argument("--seed", type=seed_int, default=0, help="weights, split, data order (default 0)")
    p.add_argument(
        "--checkpoint-every", type=positive_int, help="steps between checkpoints (default: 4 per epoch)"
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=cmd_train)
