"""The study's report: one table (``table.md``), one plot (``plot.png``) and ``summary.json``.

Read from the stage files a `study.Study` wrote (``found.json``, ``baselines.json``, ``random.json``,
``families.json``, ...); nothing is trained here. The targets ``summary.json`` checks:

* at each budget, the found network's test accuracy >= the best baseline's within that budget
  (its MobileNetV2-style point, its ResNet, and the 2-conv network if the budget admits it);
* Kendall's tau between supernet-inherited validation accuracy and from-scratch test accuracy
  >= 0.5 (random and found architectures, ``E_r`` epochs);
* the best found network under 100K parameters > 92.5 % (the benchmark table's 2-conv network);
* the best found network >= 94 %.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

__all__ = ["published_figures", "rows_of", "targets", "write_table", "write_plot", "write_report"]

TAU_TARGET = 0.5
SMALL_PARAMS = 100_000
SMALL_TARGET = 0.925
OVERALL_TARGET = 0.94
BUDGETS = ("tiny", "small", "medium")
PUBLISHED = Path("/usr/share/doc/dataset-fashion-mnist/README.md.gz")
"""Fashion-MNIST's README as Debian ships it, with the benchmark table of submitted results."""
PUBLISHED_ROWS = ("2 Conv <100K parameters", "MobileNet", "ResNet18", "Google AutoML")
"""The table's rows shown for orientation (first column, as written there)."""


def published_figures(path: Path = PUBLISHED, rows: tuple[str, ...] = PUBLISHED_ROWS) -> list[dict]:
    """The benchmark table rows `rows` of Fashion-MNIST's README: classifier, test accuracy, the
    file and line they come from (empty if the file is not installed)."""
    if not path.is_file():
        return []
    found = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) >= 3 and cells[0] in rows and re.fullmatch(r"0\.\d+", cells[2]):
                found.append(
                    {
                        "classifier": cells[0],
                        "preprocessing": cells[1],
                        "test": float(cells[2]),
                        "source": f"{path}, line {line_no}",
                    }
                )
    return found


def _load(out: Path, stage: str) -> Any:
    return json.loads((out / f"{stage}.json").read_text())


def rows_of(out: Path) -> list[dict]:
    """Every measured network of the study as a table row (trained and family members)."""
    rows = [dict(r) for r in _load(out, "found")["rows"]]
    rows += [dict(r) for r in _load(out, "baselines")["rows"]]
    rows += [dict(r) for r in _load(out, "random")["rows"]]
    families = _load(out, "families")
    for kind, family in families.items():
        for m in family["members"]:
            rows.append(
                {
                    "name": f"{kind}/{m['member']}",
                    "kind": f"{kind} family member",
                    "macs": m["macs"],
                    "params": m["params"],
                    "val": None,
                    "test": m["test"],
                    "epochs": None,
                    "train_seconds": None,
                    "alone": m["alone"],
                }
            )
    return rows


def targets(out: Path, budgets: dict[str, Any]) -> dict[str, Any]:
    """Each target: what was measured, the threshold, met or missed and by how much."""
    found = {r["budget"]: r for r in _load(out, "found")["rows"]}
    baselines = _load(out, "baselines")["rows"]
    result: dict[str, Any] = {}
    per_budget = {}
    for name in BUDGETS:
        budget = budgets[name]
        rivals = [r for r in baselines if r["budget"] == name]
        rivals += [r for r in baselines if r["budget"] is None and _admits(budget, r)]
        best = max(rivals, key=lambda r: r["test"]) if rivals else None
        f = found[name]
        margin = None if best is None else f["test"] - best["test"]
        per_budget[name] = {
            "budget": str(budget),
            "found": {"name": f["name"], "test": f["test"], "macs": f["macs"], "params": f["params"]},
            "best_baseline": None if best is None else {k: best[k] for k in ("name", "kind", "test", "macs")},
            "margin": margin,
            "met": margin is not None and margin >= 0,
        }
    result["found_beats_baselines"] = per_budget
    random = _load(out, "random")
    tau = random["kendall_tau"]
    result["kendall_tau"] = {
        "measured": tau,
        "target": f">= {TAU_TARGET}",
        "n": random["n"],
        "p_value": random["p_value"],
        "met": tau is not None and tau >= TAU_TARGET,
        "margin": None if tau is None else tau - TAU_TARGET,
    }
    small = [r for r in found.values() if r["params"] < SMALL_PARAMS]
    best_small = max(small, key=lambda r: r["test"]) if small else None
    result["best_found_under_100k_params"] = {
        "measured": None if best_small is None else best_small["test"],
        "network": None if best_small is None else {k: best_small[k] for k in ("name", "params", "macs")},
        "target": f"> {SMALL_TARGET} (2 Conv <100K parameters, the benchmark table)",
        "met": best_small is not None and best_small["test"] > SMALL_TARGET,
        "margin": None if best_small is None else best_small["test"] - SMALL_TARGET,
        "note": None if small else "no found network has fewer than 100K parameters",
    }
    best = max(found.values(), key=lambda r: r["test"])
    result["best_found_overall"] = {
        "measured": best["test"],
        "network": {k: best[k] for k in ("name", "params", "macs")},
        "target": f">= {OVERALL_TARGET}",
        "met": best["test"] >= OVERALL_TARGET,
        "margin": best["test"] - OVERALL_TARGET,
    }
    return result


def _admits(budget, row: dict) -> bool:
    """Whether `budget` (a `nasx.budget.Budget`) admits a table row's MACs and parameters."""
    from nasx.costs import Costs

    return budget.admits(Costs(macs=row["macs"], params=row["params"]))


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.2f}"


def write_table(
    path: Path,
    rows: list[dict],
    published: list[dict],
    budgets: dict[str, Any],
    px: int,
    splits: dict,
    space_px: int,
) -> None:
    """The table of every network (and the published figures) as Markdown."""
    sizes = splits["sizes"]
    test = "the official test split" if splits["test"] == "official" else "a seeded test split"
    stitched = "" if space_px == px else f" (stitches: at {space_px} px, the space's own)"
    lines = [
        f"Accuracy on {test} ({sizes['test']:,} images) and on the validation split ({sizes['val']:,} "
        f"images held out of the training set, seed {splits['validation']['seed']}; {sizes['train']:,} "
        f"train). MACs at {px} px{stitched}: conv and linear layers, batch 1. Budgets: "
        + ", ".join(f"{n} = {b}" for n, b in budgets.items())
        + ". Family members: supernet weights (sorted: fine-tuned together; stitched: trained "
        'stitching layers); "alone": the same architecture trained from scratch.',
        "",
        "| network | kind | MACs | params | val acc % | test acc % | epochs | train time |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        time_text = "" if r.get("train_seconds") is None else f"{r['train_seconds'] / 60:.1f} min"
        epochs = "" if r.get("epochs") is None else f"{r['epochs']:g}"
        kind = r["kind"] + (f" ({r['budget']})" if r.get("budget") else "")
        if r.get("alone"):
            kind += f"; alone: {_pct(r['alone']['test'])} %"
        lines.append(
            f"| {r['name']} | {kind} | {r['macs'] / 1e6:.2f}M | {r['params']:,} | {_pct(r.get('val'))} | "
            f"{_pct(r['test'])} | {epochs} | {time_text} |"
        )
    for p in published:
        lines.append(f"| {p['classifier']} | published [{p['source']}] |  |  |  | {_pct(p['test'])} |  |  |")
    lines.append("")
    path.write_text("\n".join(lines) + "\n")


def write_plot(path: Path, rows: list[dict], budgets: dict[str, Any], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {
        "found": ("*", "tab:red", 160),
        "found (E_r)": ("*", "none", 110),
        "MobileNetV2-style": ("s", "tab:blue", 60),
        "ResNet-style": ("^", "tab:green", 70),
        "2-conv CNN": ("D", "tab:purple", 60),
        "random": ("o", "tab:gray", 25),
        "sorted family member": ("o", "tab:orange", 55),
        "stitched family member": ("X", "tab:brown", 60),
    }
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for r in rows:  # a family member and the same architecture trained alone, joined
        if r.get("alone"):
            ax.plot([r["macs"]] * 2, [100 * r["test"], 100 * r["alone"]["test"]], color="0.7", linewidth=0.8)
            ax.scatter([r["macs"]], [100 * r["alone"]["test"]], marker="P", s=50, color="tab:olive")
    for kind, (marker, color, size) in styles.items():
        pts = [(r["macs"], 100 * r["test"]) for r in rows if r["kind"] == kind]
        if not pts:
            continue
        xs, ys = zip(*pts, strict=True)
        if color == "none":
            ax.scatter(xs, ys, marker=marker, s=size, facecolors="none", edgecolors="tab:red", label=kind)
        else:
            ax.scatter(xs, ys, marker=marker, s=size, color=color, label=kind, alpha=0.85)
    if any(r.get("alone") for r in rows):
        ax.scatter([], [], marker="P", s=50, color="tab:olive", label="family member trained alone")
    low = ax.get_ylim()[0]
    for name, budget in budgets.items():
        macs = budget.limits()["macs"]
        ax.axvline(macs, color="0.6", linestyle=":", linewidth=1)
        ax.text(macs, low, f" {name}", rotation=90, va="bottom", ha="right", fontsize=8, color="0.4")
    ax.set_xscale("log")
    ax.set_xlabel("MACs")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(study) -> dict:
    """Write ``table.md``, ``plot.png`` and ``summary.json`` into ``study.out``; return the summary."""
    import dataclasses

    out, s = study.out, study.settings
    budgets = study.budgets()
    rows = rows_of(out)
    published = published_figures() if s.data == "fashion-mnist" else []
    write_table(
        out / "table.md", rows, published, budgets, s.image_size, study.data.splits, study.network.resolution
    )
    title = (
        f"{s.data}: searched (supernet-scored) vs hand-designed networks, trained from scratch\n"
        f"{s.epochs:g} epochs; random architectures and hollow stars {s.random_epochs:g} epochs"
    )
    write_plot(out / "plot.png", rows, budgets, title)
    timings_file = out / "timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.exists() else {}
    summary = {
        "data": s.data,
        "space": f"{study.network.name}:{study.network.variant}",
        "budgets": {name: str(b) for name, b in budgets.items()},
        "targets": targets(out, budgets),
        "settings": {k: v for k, v in dataclasses.asdict(s).items() if k != "notes"},
        "why_these_numbers": s.notes.get("numbers"),
        "supernet": _load(out, "supernet"),
        "searches": {
            name: {k: v for k, v in run.items() if k not in ("best", "folder")}
            for name, run in _load(out, "search").items()
        },
        "baseline_notes": _load(out, "baselines").get("notes", []),
        "family_errors": {k: f["error"] for k, f in _load(out, "families").items() if f.get("error")},
        "random": {k: v for k, v in _load(out, "random").items() if k != "rows"},
        "published": published,
        "timings_s": {k: v["seconds"] for k, v in timings.items()},
        "files": {"table": "table.md", "plot": "plot.png"},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
