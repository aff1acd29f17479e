"""`report_run`: a search's Pareto front (score vs MACs) from its run log alone, as a plot and a table.

Example::

    from nasx.jobs.report import ReportRequest, report_run

    done = report_run(ReportRequest("runs/search"))
    done.plot, done.hypervolume
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasx.report import Run, front_vs_macs, load_run, markdown, plot
from nasx.runlog import Evaluation

__all__ = ["ReportRequest", "RunReport", "report_run"]


@dataclass(frozen=True)
class ReportRequest:
    """A run folder to report on.

    Attributes:
      run_dir: an ``--out`` folder of ``nasx search``.
      out: where to write ``report.png`` and ``report.md`` (``None``: `run_dir`).
      families: exported family folders (``nasx export --out``) to mark on the plot.
    """

    run_dir: str | Path
    out: str | Path | None = None
    families: Sequence[str | Path] = ()


@dataclass(frozen=True)
class RunReport:
    """What `report` returns: the run, its score-vs-MACs front, the files written and the summary."""

    run: Run
    front: list[Evaluation]
    hypervolume: float
    plot: Path
    markdown: Path
    summary: Mapping[str, Any]


def report_run(request: ReportRequest) -> RunReport:
    """Plot (``report.png``) and tabulate (``report.md``) the score-vs-MACs front of a run.

    Raises:
      RunFolderError: `request.run_dir` holds no run, or no scored architecture.
      FamilyFolderError: a folder of `request.families` is not an exported family.
    """
    run = load_run(request.run_dir)
    front, volume = front_vs_macs(run)
    out = Path(request.out).expanduser() if request.out else run.path
    out.mkdir(parents=True, exist_ok=True)
    families = []
    for folder in request.families:
        from nasx.export.load import load_family  # imports JAX: only with families to mark

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
    return RunReport(run, front, volume, png, md, summary)


# --- nasx export ----------------------------------------------------------------------------------
