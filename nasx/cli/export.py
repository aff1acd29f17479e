"""`nasx report`, `nasx export` and `nasx predict`: from a search's run folder to models that run.

`report` needs only the run log; `export` also the trained supernet the run was scored with
(``--evaluator supernet:CKPT``), whose weights the exported models are sliced from.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from nasx.cli._args import emit_json
from nasx.errors import NasxError
from nasx.space import Arch

__all__ = ["add_parsers", "cmd_report", "cmd_export", "cmd_predict"]


def cmd_report(args: argparse.Namespace) -> int:
    from nasx.budget import format_amount
    from nasx.report import front_vs_macs, load_run, markdown, plot

    run = load_run(args.run_dir)
    front, volume = front_vs_macs(run)
    out = Path(args.out).expanduser() if args.out else run.path
    out.mkdir(parents=True, exist_ok=True)
    families = []
    for folder in args.family or []:
        from nasx.export.load import load_family

        family = load_family(folder)
        points = [(m.costs["macs"], m.metrics["test_accuracy"]) for m in family.members]
        families.append((f"{family.kind} family", points, str(family.folder)))
    png = plot(run, front, out / "report.png", [(label, points) for label, points, _ in families])
    md = out / "report.md"
    md.write_text(
        f"# {run.config.get('space', '?')}:{run.config.get('variant', '?')} under {run.config.get('budget', '?')}\n\n"
        f"{len(run.evaluations)} evaluated ({len(run.scored)} scored), {len(front)} on the "
        f"{run.score_name}-vs-MACs front (hypervolume {volume:.4g}).\n\n![front](report.png)\n\n"
        + markdown(run, front)
    )
    summary = {
        "run_dir": str(run.path),
        "evaluated": len(run.evaluations),
        "scored": len(run.scored),
        "hypervolume": volume,
        "front": [{"fingerprint": e.arch.fingerprint, "score": e.objectives[0], **e.costs} for e in front],
        "families": [{"label": label, "folder": f, "points": points} for label, points, f in families],
        "plot": str(png),
        "markdown": str(md),
    }
    if args.json:
        emit_json(summary)
        return 0
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
    console.print(f"hypervolume {volume:.4g}; plot: {png}  table: {md}")
    return 0


class ExportError(NasxError, ValueError):
    """A run that cannot be exported (no supernet checkpoint, nothing scored)."""


class PredictInputError(NasxError, FileNotFoundError):
    """Images for `nasx predict` that are missing or not an NHWC float array."""


def cmd_export(args: argparse.Namespace) -> int:
    from nasx.evaluators import project
    from nasx.export.standalone import export_standalone
    from nasx.jobs.trained import load_supernet
    from nasx.report import load_run

    run = load_run(args.run_dir)
    spec = run.config.get("evaluator", "")
    if not spec.startswith("supernet:"):
        raise ExportError(
            f'run "{run.path}" was scored with "{spec}", not a trained supernet, so it has no weights to export; '
            "train one (nasx train-supernet) and search with --evaluator supernet:DIR"
        )
    network, supernet, params, meta, data = load_supernet(spec.partition(":")[2], run.config.get("space"))
    front_path = run.path / "front.json"
    front = json.loads(front_path.read_text()) if front_path.exists() else []
    if not front:
        raise ExportError(f'run "{run.path}" has an empty Pareto front (front.json); nothing to export')
    out = Path(args.out or run.path / "export").expanduser().resolve()
    err = Console(stderr=True)
    if args.family == "sorted":
        return _export_sorted(args, run, network, supernet, params, meta, data, front, out)
    if args.family == "stitched":
        return _export_stitched(args, run, network, supernet, params, meta, data, front, out)
    rows = []
    for rank, entry in enumerate(front[: args.top], 1):
        arch = project(Arch(entry["arch"]), network)
        folder = out / f"{rank:02d}-{arch.fingerprint}"
        if not args.json:
            err.print(f"exporting {rank}/{min(args.top, len(front))}: {arch.fingerprint} -> {folder}")
        metrics = export_standalone(
            supernet,
            params,
            network,
            arch,
            data,
            folder,
            meta={"run_dir": str(run.path), "supernet": meta["folder"]},
            finetune_steps=args.finetune,
            batch_size=meta.get("config", {}).get("batch_size", 64),
            seed=meta.get("config", {}).get("seed", 0),
        )
        rows.append(
            {"folder": str(folder), "fingerprint": arch.fingerprint, **metrics, "search_entry": entry}
        )
    (out / "family.json").write_text(json.dumps({"family": "standalone", "members": rows}, indent=2) + "\n")
    if args.json:
        emit_json({"out": str(out), "members": rows})
        return 0
    table = Table(title=f"standalone models in {out}")
    for col in ("#", "arch", "test acc", "folder"):
        table.add_column(col)
    for rank, r in enumerate(rows, 1):
        table.add_row(str(rank), r["fingerprint"], f"{r['test_accuracy']:.4f}", Path(r["folder"]).name)
    Console().print(table)
    return 0


def _export_sorted(args, run, network, supernet, params, meta, data, front: list[dict], out: Path) -> int:
    """`--family sorted`: the front's chain of nested archs of most hypervolume, fine-tuned, one checkpoint."""
    import numpy as np

    from nasx.evaluators import project
    from nasx.export.sorted import best_chain, export_sorted, finetune_sorted, nesting_matrix, reference_point
    from nasx.pareto import hypervolume
    from nasx.search import COST_OBJECTIVES

    archs, points = [], []
    for entry in front:
        arch = project(Arch(entry["arch"]), network)
        if arch not in archs:  # archs differing only in what the supernet lacks (bits) are one
            archs.append(arch)
            points.append([float(v) for v in entry["objectives"]])
    names = run.config.get("objectives") or [f"objective {k}" for k in range(len(points[0]))]
    maximize = [name not in COST_OBJECTIVES for name in names]
    reference = reference_point(np.asarray(points), maximize)
    picked = best_chain(np.asarray(points), nesting_matrix(archs, network), maximize, reference)
    chain = [archs[i] for i in picked]
    err = Console(stderr=True)
    if not args.json:
        err.print(f"sorted family: a chain of {len(chain)} nested archs from the front's {len(archs)}")
    config = meta.get("config", {})
    params, history = finetune_sorted(
        supernet,
        params,
        network,
        chain,
        data,
        args.finetune,
        batch_size=config.get("batch_size", 64),
        seed=config.get("seed", 0),
    )
    chosen = {
        "objectives": names,
        "maximize": maximize,
        "reference": reference,
        "hypervolume": hypervolume(np.asarray(points)[picked], reference, maximize),
        "front_hypervolume": hypervolume(np.asarray(points), reference, maximize),
        "front_indices": picked,
    }
    manifest = export_sorted(
        supernet,
        params,
        network,
        chain,
        data,
        out,
        meta={
            "run_dir": str(run.path),
            "supernet": meta["folder"],
            "finetune_steps": args.finetune,
            "chain": chosen,
            "finetune": history,
        },
    )
    rows = [{**m, "folder": str(out / m["folder"])} for m in manifest["members"]]
    if args.json:
        emit_json({"out": str(out), "family": "sorted", "members": rows, "storage": manifest["storage"]})
        return 0
    table = Table(
        title=f"sorted family in {out} (one checkpoint, {manifest['storage']['ratio']:.3f}x the largest)"
    )
    for col in ("#", "arch", "MACs", "test acc", "folder"):
        table.add_column(col)
    for i, r in enumerate(rows):
        table.add_row(
            str(i),
            r["fingerprint"],
            f"{r['costs']['macs']:,}",
            f"{r['test_accuracy']:.4f}",
            Path(r["folder"]).name,
        )
    Console().print(table)
    return 0


def _export_stitched(args, run, network, supernet, params, meta, data, front: list[dict], out: Path) -> int:
    """`--family stitched`: anchors of different sizes from the front, least-squares stitches, Pareto stitches."""
    import search_spaces
    from nasx.errors import UnsupportedSpaceError
    from nasx.evaluators import project
    from nasx.export.stitched import build_stitched, export_stitched, select_anchors, train_stitches

    stages = search_spaces.family(network.name).stages
    if stages is None:
        staged_names = [f.name for f in search_spaces.FAMILIES.values() if f.stages is not None]
        raise UnsupportedSpaceError(
            f'space "{network.name}" cannot be stitched (no stage boundaries); use one of {", ".join(staged_names)}'
        )
    anchors = select_anchors([project(Arch(e["arch"]), network) for e in front], network, args.anchors)
    config = meta.get("config", {})
    batch, seed = config.get("batch_size", 64), config.get("seed", 0)
    staged = stages()(network)
    net = build_stitched(
        supernet, params, network, staged, anchors, data, batch_size=batch, seed=seed, reverse=args.reverse
    )
    history = train_stitches(net, data, args.stitch_steps, batch_size=batch, seed=seed)
    manifest = export_stitched(
        net,
        network,
        data,
        out,
        batch_size=batch,
        meta={
            "run_dir": str(run.path),
            "supernet": meta["folder"],
            "stitch_steps": args.stitch_steps,
            "reverse": args.reverse,
            "stitch_loss": history,
        },
    )
    rows = [{**m, "folder": str(out / m["folder"])} for m in manifest["members"]]
    if args.json:
        emit_json(
            {"out": str(out), "family": "stitched", "members": rows, "evaluated": manifest["evaluated"]}
        )
        return 0
    table = Table(
        title=f"stitched family in {out}: {len(rows)} of {len(manifest['evaluated'])} configurations"
    )
    for col in ("#", "configuration", "MACs", "params", "test acc"):
        table.add_column(col)
    for i, r in enumerate(rows):
        c = r["costs"]
        table.add_row(str(i), r["name"], f"{c['macs']:,}", f"{c['params']:,}", f"{r['test_accuracy']:.4f}")
    Console().print(table)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from nasx.export.standalone import load_model

    if (Path(args.model_dir).expanduser() / "family.json").exists():
        from nasx.export.load import load_family

        model = load_family(args.model_dir).model(args.member)
    else:
        model = load_model(args.model_dir)
    path = Path(args.input).expanduser()
    if not path.exists():
        raise PredictInputError(f'input "{path}" does not exist; give a .npy array of NHWC float32 images')
    images = np.load(path)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise PredictInputError(
            f'input "{path}" has shape {images.shape}; expected NHWC images (or one HWC image)'
        )
    try:
        logits = model(images.astype(np.float32))
    except Exception as e:
        raise PredictInputError(f'input "{path}" of shape {images.shape} does not fit the model: {e}') from e
    classes = logits.argmax(-1)
    if args.json:
        emit_json({"classes": classes.tolist(), "logits": logits.tolist()})
    else:
        for i, c in enumerate(classes):
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
        choices=("standalone", "sorted", "stitched"),
        default="standalone",
        help="standalone models, or a sorted family: the nested chain of most hypervolume, one checkpoint, "
        "or a stitched family (SN-Net): front anchors joined by stitching layers",
    )
    p.add_argument("--anchors", type=int, default=2, help="stitched: anchors from the front, 2-4 (default 2)")
    p.add_argument(
        "--stitch-steps", type=int, default=100, help="stitched: training steps of the stitches (default 100)"
    )
    p.add_argument(
        "--reverse",
        action="store_true",
        help="stitched: also stitch each larger anchor's front into the smaller one's back (SN-Net's both "
        "directions: twice the configurations to train and evaluate)",
    )
    p.add_argument("--top", type=int, default=3, help="front members to export, best first (default 3)")
    p.add_argument(
        "--finetune",
        type=int,
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
        "--member", type=int, default=0, help="with a family folder: the member to run (default 0)"
    )
    p.add_argument(
        "--input", required=True, help=".npy array of NHWC float32 images, normalized as in training"
    )
    p.add_argument("--json", action="store_true", help="print classes and logits as JSON")
    p.set_defaults(run=cmd_predict)
