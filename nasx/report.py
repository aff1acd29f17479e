"""Reports of a search from its run log alone: the score-vs-MACs Pareto front, plotted and tabled.

`load_run` reads a run folder (``runlog.jsonl`` and ``config.json``); `front_vs_macs` picks the
architectures no other beats in both the primary score (maximized) and MACs (minimized), with
the hypervolume they dominate; `plot` renders every evaluated architecture, the front and any exported
families as a PNG (matplotlib, no display needed); `markdown` writes the front as a Markdown table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasx.errors import RunFolderError
from nasx.pareto import hypervolume, pareto_front
from nasx.runlog import RUNLOG_NAME, Evaluation, read_run_config, read_runlog
from nasx.search import COST_OBJECTIVES

__all__ = ["Run", "load_run", "front_vs_macs", "plot", "markdown"]


@dataclass(frozen=True)
class Run:
    path: Path
    config: dict
    evaluations: list[Evaluation]

    @property
    def score_name(self) -> str:
        """The primary objective; "score (NAME)" where NAME is also a cost column (params, MACs)."""
        name = (self.config.get("objectives") or ["score"])[0]
        return f"score ({name})" if name in ("macs", "params", "weight_bytes") else name

    @property
    def scored(self) -> list[Evaluation]:
        return [e for e in self.evaluations if e.ok and e.objectives and e.objectives[0] is not None]


def load_run(path: str | Path) -> Run:
    """The run in folder `path` (written by `nasx search`)."""
    folder = Path(path).expanduser()
    log_path = folder / RUNLOG_NAME
    if not log_path.exists():
        raise RunFolderError(
            f'"{folder}" holds no search run ({RUNLOG_NAME} is missing); give an --out folder of nasx search'
        )
    config_path = folder / "config.json"
    config = read_run_config(config_path) if config_path.exists() else {}
    run = Run(folder, config, read_runlog(log_path))
    if not run.scored:
        raise RunFolderError(
            f'"{folder}": none of its {len(run.evaluations)} evaluated architectures has a score'
        )
    return run


def front_vs_macs(run: Run) -> tuple[list[Evaluation], float]:
    """The (primary score max, MACs min) front, by MACs, and its hypervolume against the worst
    score and the largest MACs of the run (in score x MACs units)."""
    scored = run.scored
    points = np.array([[e.objectives[0], e.costs["macs"]] for e in scored], dtype=float)
    if run.config.get("objectives", [None])[0] in COST_OBJECTIVES:
        points[:, 0] = -points[:, 0]  # a cost as primary objective: smaller is better
    front = [scored[i] for i in pareto_front(points, (True, False))]
    front.sort(key=lambda e: e.costs["macs"])
    reference = (float(points[:, 0].min()), float(points[:, 1].max()))
    return front, hypervolume(points, reference, (True, False))


def plot(
    run: Run,
    front: list[Evaluation],
    out: str | Path,
    families: Sequence[tuple[str, Sequence[tuple[float, float]]]] = (),
) -> Path:
    """PNG of score vs MACs: every scored architecture, the front highlighted and joined, and each
    exported family in `families` (a label and its members' (MACs, accuracy at export)) marked."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    scored = run.scored
    ax.scatter(
        [e.costs["macs"] / 1e6 for e in scored],
        [e.objectives[0] for e in scored],
        s=10,
        color="0.7",
        label=f"evaluated ({len(scored)})",
    )
    ax.plot(
        [e.costs["macs"] / 1e6 for e in front],
        [e.objectives[0] for e in front],
        "o-",
        color="tab:red",
        markersize=5,
        label=f"Pareto front ({len(front)})",
    )
    for (label, members), marker in zip(families, "s^Dv", strict=False):
        members = sorted(members)
        ax.plot(
            [macs / 1e6 for macs, _ in members],
            [accuracy for _, accuracy in members],
            marker + "--",
            markersize=8,
            markerfacecolor="none",
            linewidth=1,
            label=f"{label} ({len(members)}, accuracy at export)",
        )
    ax.set_xlabel("MACs (M)")
    ax.set_ylabel(run.score_name)
    space = f"{run.config.get('space', '?')}:{run.config.get('variant', '?')}"
    ax.set_title(f"{space} under {run.config.get('budget', '?')} ({run.config.get('strategy', '?')})")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out)
    plt.close(fig)
    return out


def markdown(run: Run, front: list[Evaluation]) -> str:
    """The front as a Markdown table (fingerprint, score, MACs, params, weight bytes)."""
    from nasx.budget import format_amount

    lines = [
        f"| # | arch | {run.score_name} | MACs | params | weights |",
        "|---|---|---|---|---|---|",
    ]
    for rank, e in enumerate(front, 1):
        c = e.costs
        lines.append(
            f"| {rank} | `{e.arch.fingerprint}` | {e.objectives[0]:.4g} | {format_amount(c['macs'])} | "
            f"{format_amount(c['params'])} | {format_amount(c['weight_bytes'])}B |"
        )
    return "\n".join(lines) + "\n"
