"""A search's run folder: where it goes, whether it may be written, and the files that sum it up.

A run folder holds ``config.json`` (what the search was asked), ``runlog.jsonl`` (every evaluated
architecture, written by `nasx.search`), and, once the search is over, ``front/`` (one JSON file
per architecture of the front), ``front.json``, ``best.json`` and ``summary.json``. Resuming a run
(``--resume``) requires the same configuration, except the number of evaluations.

Whether a folder may be used at all (writable, a search run or new, resumed or not) is checked,
and the folder locked, by `nasx.outputs.claim`; every file here is written atomically.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from nasx.budget import Budget
from nasx.errors import RunFolderError
from nasx.outputs import write_json
from nasx.runlog import Evaluation
from nasx.search import SearchResult
from nasx.space import SearchSpace

__all__ = [
    "run_dir",
    "check_config",
    "write_config",
    "entry",
    "top",
    "write_results",
]

RESUMABLE = frozenset({"evaluations"})
"""Configuration keys a resumed run may change."""


def run_dir(out: str | Path | None, space_spec: str, budget: Budget, strategy: str, seed: int) -> Path:
    """`out` resolved, or a fresh ``runs/SPACE-BUDGET-STRATEGY-sSEED[-K]`` (K = 2, 3, ... when taken)."""
    if out:
        return Path(out).expanduser().resolve()
    stem = re.sub(r"[^A-Za-z0-9.+-]+", "_", f"{space_spec}-{budget}-{strategy}-s{seed}")
    base = Path("runs").resolve()
    candidate, k = base / stem, 2
    while candidate.exists():
        candidate, k = base / f"{stem}-{k}", k + 1
    return candidate


def check_config(folder: Path, config: dict[str, Any], resume: bool) -> None:
    """On resume, the saved ``config.json`` must equal `config` (but for `RESUMABLE` keys)."""
    path = folder / "config.json"
    if not (resume and path.exists()):
        return
    try:
        saved = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunFolderError(
            f'cannot resume "{folder}": its config.json does not read ({type(e).__name__}: {e}); '
            "restore it or start a new run with another --out"
        ) from None
    if not isinstance(saved, dict):
        raise RunFolderError(f'cannot resume "{folder}": its config.json is not a JSON object')
    differing = sorted(
        k for k in set(saved) | set(config) if k not in RESUMABLE and saved.get(k) != config.get(k)
    )
    if differing:
        raise RunFolderError(
            f'cannot resume "{folder}": {", ".join(f"{k}={saved.get(k)!r} there, {config.get(k)!r} now" for k in differing)}'
        )


def write_config(folder: Path, config: dict[str, Any]) -> None:
    """Write ``config.json``."""
    _write(folder / "config.json", config)


def entry(space: SearchSpace, e: Evaluation) -> dict[str, Any]:
    """One evaluated architecture as ``front/*.json`` and ``best.json`` hold it."""
    return {
        "space": space.name,
        "variant": space.variant,
        "fingerprint": e.arch.fingerprint,
        "arch": e.arch.to_dict(),
        "costs": dict(e.costs),
        "scores": dict(e.scores),
        "objectives": list(e.objectives),
    }


def top(result: SearchResult, k: int) -> list[Evaluation]:
    """The `k` best distinct architectures by the first objective (ties: fewer MACs)."""
    ok = sorted(
        result.ok,
        key=lambda e: (
            -(e.objectives[0] if result.objectives[0].maximize else -e.objectives[0]),
            e.costs["macs"],
        ),
    )
    seen, out = set(), []
    for e in ok:
        if e.arch.fingerprint not in seen:
            seen.add(e.arch.fingerprint)
            out.append(e)
        if len(out) == k:
            break
    return out


def write_results(
    space: SearchSpace, result: SearchResult, config: dict[str, Any], seconds: float
) -> dict[str, Any]:
    """Write ``front/``, ``front.json``, ``best.json`` and ``summary.json``; return the summary.

    `result` must have a best evaluation and a run folder; `config` is the run's configuration
    (its ``solver`` entry, if any, is copied into the summary).
    """
    best, folder = result.best, result.run_dir
    if best is None or folder is None:
        raise ValueError("write_results needs a search with a best evaluation and a run folder")
    front = result.front
    (folder / "front").mkdir(exist_ok=True)
    for e in front:
        _write(folder / "front" / f"{e.arch.fingerprint}.json", entry(space, e))
    _write(folder / "front.json", [entry(space, e) for e in front])
    _write(folder / "best.json", entry(space, best))
    summary = {
        "best": best.arch.to_dict(),
        "fingerprint": best.arch.fingerprint,
        "costs": dict(best.costs),
        "score": best.objectives[0],
        "scores": dict(best.scores),
        "objectives": [o.name for o in result.objectives],
        "front": [entry(space, e) for e in front],
        "evaluated": len(result.evaluations),
        "failed": sum(not e.ok for e in result.evaluations),
        "resumed": result.resumed,
        "seconds": round(seconds, 2),
        "run_dir": str(folder),
        **{k: config[k] for k in ("space", "variant", "budget", "strategy", "evaluator")},
    }
    if "solver" in config:
        summary["solver"] = config["solver"]
    _write(folder / "summary.json", summary)
    return summary


def _write(path: Path, obj: Any) -> None:
    write_json(path, obj)
