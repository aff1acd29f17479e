"""`nasx report`, `nasx export` and `nasx predict`: parse, call `nasx.jobs.export`, print.

`report` needs only the run log; `export` also the trained supernet the run was scored with
(``--evaluator supernet:CKPT``), whose weights the exported models are sliced from.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from nasx.budget import format_amount
from nasx.cli._args import ANCHORS, anchor_count, emit_json, nonnegative_int, positive_int
from nasx.jobs.export import KINDS, ExportedFamily, ExportRequest, export_front
from nasx.jobs.predict import PredictRequest, predict
from nasx.jobs.report import ReportRequest, report_run
from nasx.space import Arch

__all__ = ["add_parsers", "cmd_report", "cmd_export", "cmd_predict"]


def cmd_report(args: argparse.Namespace) -> int:
    result = report_run(ReportRequest(args.run_dir, out=args.out, families=tuple(args.family or ())))
    if args.json:
        emit_json(result.summary)
        return 0
    run, front = result.run, result.front
    table = Table(
        title=f"{run.path}: {run.score_name} vs MACs, Pareto front ({len(front)} of {len(run.scored)})"
    )
    for col in ("#", "arch", run.score_name, "MACs", "params", "weights"):
        table.add_column(col, justify="left" if col == "arch" else "right")
    for rank, e in enumerate(front, 1):
        c = e.costs
        table.add_row(
            str(rank),
            e.arch.fingerprint,
            f"{e.objectives[0]:.4g}",
            format_amount(c["macs"]),
            format_amount(c["params"]),
            f"{format_amount(c['weight_bytes'])}B",
        )
    console = Console()
    console.print(table)
    console.print(f"hypervolume {result.hypervolume:.4g}; plot: {result.plot}  table: {result.markdown}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    request = ExportRequest(
        args.run_dir,
        kind=args.family,
        top=args.top,
        finetune=args.finetune,
        anchors=args.anchors,
        stitch_steps=args.stitch_steps,
        reverse=args.reverse,
        out=args.out,
    )
    err = Console(stderr=True)

    def on_member(rank: int, count: int, arch: Arch, folder: Path) -> None:
        if not args.json:
            err.print(f"exporting {rank}/{count}: {arch.fingerprint} -> {folder}")

    def on_chain(length: int, distinct: int) -> None:
        if not args.json:
            err.print(f"sorted family: a chain of {length} nested archs from the front's {distinct}")

    family = export_front(request, on_member=on_member, on_chain=on_chain)
    {"standalone": _print_standalone, "sorted": _print_sorted, "stitched": _print_stitched}[family.kind](
        family, args.json
    )
    return 0


def _print_standalone(family: ExportedFamily, as_json: bool) -> None:
    if as_json:
        emit_json({"out": str(family.out), "members": family.members})
        return
    table = Table(title=f"standalone models in {family.out}")
    for col in ("#", "arch", "test acc", "folder"):
        table.add_column(col)
    for rank, r in enumerate(family.members, 1):
        table.add_row(str(rank), r["fingerprint"], f"{r['test_accuracy']:.4f}", Path(r["folder"]).name)
    Console().print(table)


def _print_sorted(family: ExportedFamily, as_json: bool) -> None:
    storage = family.manifest["storage"]
    if as_json:
        emit_json({"out": str(family.out), "family": "sorted", "members": family.members, "storage": storage})
        return
    table = Table(
        title=f"sorted family in {family.out} (one checkpoint, {storage['ratio']:.3f}x the largest)"
    )
    for col in ("#", "arch", "MACs", "test acc", "folder"):
        table.add_column(col)
    for i, r in enumerate(family.members):
        table.add_row(
            str(i),
            r["fingerprint"],
            f"{r['costs']['macs']:,}",
            f"{r['test_accuracy']:.4f}",
            Path(r["folder"]).name,
        )
    Console().print(table)


def _print_stitched(family: ExportedFamily, as_json: bool) -> None:
    evaluated = family.manifest["evaluated"]
    if as_json:
        emit_json(
            {"out": str(family.out), "family": "stitched", "members": family.members, "evaluated": evaluated}
        )
        return
    rows = family.members
    table = Table(title=f"stitched family in {family.out}: {len(rows)} of {len(evaluated)} configurations")
    for col in ("#", "configuration", "MACs", "params", "test acc"):
        table.add_column(col)
    for i, r in enumerate(rows):
        c = r["costs"]
        table.add_row(str(i), r["name"], f"{c['macs']:,}", f"{c['params']:,}", f"{r['test_accuracy']:.4f}")
    Console().print(table)


def cmd_predict(args: argparse.Namespace) -> int:
    result = predict(PredictRequest(args.model_dir, args.input, member=args.member))
    if args.json:
        emit_json({"classes": result.classes.tolist(), "logits": result.logits.tolist()})
    else:
        for i, c in enumerate(result.classes):
            print(f"{i}\t{int(c)}")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "report",
        help="plot and table of a search's Pareto front (score vs MACs), from its run log",
        description="Reads RUN_DIR/runlog.jsonl; writes report.png (every evaluated architecture, the "
        "front highlighted) and report.md (the front as a Markdown table), and prints the table.",
    )
    p.add_argument("run_dir", help="an --out folder of nasx search")
    p.add_argument("--out", help="write report.png and report.md here (default: RUN_DIR)")
    p.add_argument(
        "--family",
        action="append",
        metavar="DIR",
        help="mark an exported family (an --out folder of nasx export) on the plot; repeatable",
    )
    p.add_argument("--json", action="store_true", help="print the front as JSON")
    p.set_defaults(run=cmd_report)

    p = sub.add_parser(
        "export",
        help="the Pareto front of a supernet-scored search as standalone models (Orbax + StableHLO)",
        description="Slices each front architecture out of the run's trained supernet (batch norm re-calibrated), "
        "measures its held-out accuracy and writes OUT/NN-FINGERPRINT/ with arch.json, costs.json, metrics.json, "
        "checkpoint/ (Orbax), model.stablehlo + weights.npz (runs with plain JAX), and OUT/family.json.",
    )
    p.add_argument("run_dir", help="an --out folder of nasx search --evaluator supernet:CKPT")
    p.add_argument(
        "--family",
        choices=KINDS,
        default="standalone",
        help="standalone models, or a sorted family: the nested chain of most hypervolume, one checkpoint, "
        "or a stitched family (SN-Net): front anchors joined by stitching layers",
    )
    p.add_argument(
        "--anchors",
        type=anchor_count,
        default=ANCHORS[0],
        help=f"stitched: anchors from the front, {ANCHORS[0]}-{ANCHORS[1]} (default {ANCHORS[0]})",
    )
    p.add_argument(
        "--stitch-steps",
        type=positive_int,
        default=100,
        help="stitched: training steps of the stitches (default 100)",
    )
    p.add_argument(
        "--reverse",
        action="store_true",
        help="stitched: also stitch each larger anchor's front into the smaller one's back (SN-Net's both "
        "directions: twice the configurations to train and evaluate)",
    )
    p.add_argument(
        "--top", type=positive_int, default=3, help="front members to export, best first (default 3)"
    )
    p.add_argument(
        "--finetune",
        type=nonnegative_int,
        default=0,
        help="steps of fine-tuning: each standalone model on its own, or the sorted chain together (default 0)",
    )
    p.add_argument("--out", help="output folder (default RUN_DIR/export)")
    p.add_argument("--json", action="store_true", help="print the exported members as JSON")
    p.set_defaults(run=cmd_export)

    p = sub.add_parser(
        "predict",
        help="run an exported model on images",
        description="Loads MODEL_DIR/model.stablehlo + weights.npz and prints the predicted class of each image.",
    )
    p.add_argument(
        "model_dir", help="a model folder written by nasx export, or a family folder (family.json)"
    )
    p.add_argument(
        "--member",
        type=nonnegative_int,
        default=0,
        help="with a family folder: the member to run (default 0)",
    )
    p.add_argument(
        "--input", required=True, help=".npy array of NHWC float32 images, normalized as in training"
    )
    p.add_argument("--json", action="store_true", help="print classes and logits as JSON")
    p.set_defaults(run=cmd_predict)
