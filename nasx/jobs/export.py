"""`export_front`: from a search's run folder to models that run (standalone, sorted or stitched).

It needs the trained supernet the run was scored with (``--evaluator supernet:CKPT``), whose
weights the exported models are sliced from::

    from nasx.jobs.export import ExportRequest, export_front

    family = export_front(ExportRequest("runs/search", kind="sorted", finetune=50))
    family.out, [m["test_accuracy"] for m in family.members]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import search_spaces
from nasx import outputs
from nasx.errors import NasxError, UnsupportedSpaceError
from nasx.report import Run, load_run
from nasx.space import Arch

__all__ = [
    "KINDS",
    "ExportError",
    "ExportRequest",
    "ExportedFamily",
    "export_front",
]

KINDS = ("standalone", "sorted", "stitched")
"""What `export_front` ships: standalone models, a sorted family (one checkpoint), a stitched family."""


class ExportError(NasxError, ValueError):
    """A run that cannot be exported (no supernet checkpoint, nothing scored)."""


@dataclass(frozen=True)
class ExportRequest:
    """A supernet-scored run's front to ship, and how.

    Attributes:
      run_dir: an ``--out`` folder of ``nasx search --evaluator supernet:CKPT``.
      kind: one of `KINDS`.
      top: standalone: front members to export, best first.
      finetune: steps of fine-tuning: each standalone model on its own, or the sorted chain together.
      anchors: stitched: anchors from the front (2-4).
      stitch_steps: stitched: training steps of the stitching layers.
      reverse: stitched: also stitch each larger anchor's front into the smaller one's back.
      out: the output folder (``None``: ``RUN_DIR/export``).
    """

    run_dir: str | Path
    kind: str = "standalone"
    top: int = 3
    finetune: int = 0
    anchors: int = 2
    stitch_steps: int = 100
    reverse: bool = False
    out: str | Path | None = None


@dataclass(frozen=True)
class ExportedFamily:
    """What `export_front` wrote.

    Attributes:
      out: the output folder (holding ``family.json``).
      kind: one of `KINDS`.
      members: one dict per exported model (``folder``, ``fingerprint``, ``test_accuracy``, ...).
      manifest: ``family.json`` as written.
    """

    out: Path
    kind: str
    members: list[dict[str, Any]]
    manifest: Mapping[str, Any]


@dataclass(frozen=True)
class _Source:
    """A run's front and the trained supernet its scores came from."""

    run: Run
    network: Any
    supernet: Any
    params: Any
    meta: dict
    data: Any
    front: list[dict]
    out: Path

    @property
    def batch_size(self) -> int:
        return self.meta.get("config", {}).get("batch_size", 64)

    @property
    def seed(self) -> int:
        return self.meta.get("config", {}).get("seed", 0)

    def arch(self, entry: Mapping[str, Any]) -> Arch:
        """A front entry's architecture as an architecture of the supernet's network."""
        from nasx.evaluators import project

        return project(Arch(entry["arch"]), self.network)

    def archs(self) -> list[Arch]:
        """The front's architectures as architectures of the supernet's network."""
        return [self.arch(entry) for entry in self.front]


def export_front(
    request: ExportRequest,
    *,
    on_member: Callable[[int, int, Arch, Path], None] | None = None,
    on_chain: Callable[[int, int], None] | None = None,
) -> ExportedFamily:
    """Ship the Pareto front of a supernet-scored search (`request.kind` of `KINDS`).

    Args:
      request: the run and what to ship.
      on_member: standalone: called before each model is exported, with (rank, count, arch, folder).
      on_chain: sorted: called once the chain is chosen, with (chain length, distinct front archs).

    Raises:
      ExportError: the run was not scored with a trained supernet, or its front is empty.
      RunFolderError: the output folder cannot be written or holds something else (checked before
        the supernet is loaded); OutputBusyError: another process is writing it.
      SortedFamilyError, StitchAnchorsError, UnsupportedSpaceError: the front or space cannot make
        the family asked for.
    """
    if request.kind not in KINDS:
        raise ExportError(f'export family "{request.kind}": expected one of {", ".join(KINDS)}')
    from nasx.jobs.fit import is_training_run
    from nasx.jobs.trained import load_supernet

    if is_training_run(request.run_dir):
        if request.kind != "standalone":
            raise ExportError(
                f'"{request.run_dir}" is one network trained from scratch; it ships as --family standalone, '
                f"not {request.kind}"
            )
        out = Path(request.out or Path(request.run_dir) / "export")
        with outputs.claim(out, "export") as out:
            return _trained(request, out, on_member)

    run = load_run(request.run_dir)
    spec = run.config.get("evaluator", "")
    if not spec.startswith("supernet:"):
        raise ExportError(
            f'run "{run.path}" was scored with "{spec}", not a trained supernet, so it has no weights to export; '
            "train one (nasx train-supernet) and search with --evaluator supernet:DIR"
        )
    front = _front(run.path / "front.json")
    if not front:
        raise ExportError(f'run "{run.path}" has an empty Pareto front (front.json); nothing to export')
    with outputs.claim(request.out or run.path / "export", "export") as out:
        network, supernet, params, meta, data = load_supernet(spec.partition(":")[2], run.config.get("space"))
        source = _Source(run, network, supernet, params, meta, data, front, out)
        if request.kind == "sorted":
            return _sorted(source, request, on_chain)
        if request.kind == "stitched":
            return _stitched(source, request)
        return _standalone(source, request, on_member)


def _front(path: Path) -> list[dict]:
    """The entries of a run's ``front.json`` ([] if there is none)."""
    if not path.exists():
        return []
    try:
        front = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ExportError(
            f'"{path}" does not read as JSON ({type(e).__name__}: {e}); rerun the search'
        ) from None
    if not isinstance(front, list) or not all(
        isinstance(e, dict) and isinstance(e.get("arch"), dict) for e in front
    ):
        raise ExportError(f'"{path}" is not a list of front entries (with "arch"); rerun the search')
    return front


def _trained(
    request: ExportRequest, out: Path, on_member: Callable[[int, int, Arch, Path], None] | None
) -> ExportedFamily:
    """A network trained from scratch (`nasx train`) as a standalone model folder."""
    from nasx.export.standalone import save_model
    from nasx.jobs.fit import load_trained_network

    network, data = load_trained_network(request.run_dir)
    (out / "family.json").unlink(missing_ok=True)  # written last: a killed export leaves none
    folder = out / f"01-{network.arch.fingerprint}"
    if on_member is not None:
        on_member(1, 1, network.arch, folder)
    meta = {
        "source": str(network.folder),
        "trained": "from scratch (nasx train)",
        "val_accuracy_at_training": network.summary["accuracy"]["val"],
    }
    metrics = save_model(
        network.model,
        network.space,
        network.arch,
        data,
        folder,
        meta=meta,
        finetune_steps=request.finetune,
        seed=network.summary["config"]["seed"],
    )
    member = {"folder": str(folder), "fingerprint": network.arch.fingerprint, **metrics}
    manifest = {"family": "standalone", "members": [member]}
    outputs.write_json(out / "family.json", manifest)
    return ExportedFamily(out, "standalone", [member], manifest)


def _standalone(
    source: _Source, request: ExportRequest, on_member: Callable[[int, int, Arch, Path], None] | None
) -> ExportedFamily:
    """Each of the front's first `request.top` architectures as a model of its own."""
    from nasx.export.standalone import export_standalone

    rows = []
    (source.out / "family.json").unlink(missing_ok=True)  # written last: a killed export leaves none
    count = min(request.top, len(source.front))
    for rank, entry in enumerate(source.front[: request.top], 1):
        arch = source.arch(entry)
        folder = source.out / f"{rank:02d}-{arch.fingerprint}"
        if on_member is not None:
            on_member(rank, count, arch, folder)
        metrics = export_standalone(
            source.supernet,
            source.params,
            source.network,
            arch,
            source.data,
            folder,
            meta={"run_dir": str(source.run.path), "supernet": source.meta["folder"]},
            finetune_steps=request.finetune,
            batch_size=source.batch_size,
            seed=source.seed,
        )
        rows.append(
            {"folder": str(folder), "fingerprint": arch.fingerprint, **metrics, "search_entry": entry}
        )
    manifest = {"family": "standalone", "members": rows}
    outputs.write_json(source.out / "family.json", manifest)
    return ExportedFamily(source.out, "standalone", rows, manifest)


def _sorted(
    source: _Source, request: ExportRequest, on_chain: Callable[[int, int], None] | None
) -> ExportedFamily:
    """The front's chain of nested archs of most hypervolume, fine-tuned together, one checkpoint."""
    from nasx.export.sorted import choose_chain, export_sorted, finetune_sorted
    from nasx.search import COST_OBJECTIVES

    points = [entry["objectives"] for entry in source.front]
    names = source.run.config.get("objectives") or [f"objective {k}" for k in range(len(points[0]))]
    maximize = [name not in COST_OBJECTIVES for name in names]
    chain = choose_chain(source.archs(), points, names, maximize, source.network)
    if on_chain is not None:
        on_chain(len(chain.archs), chain.distinct)
    params, history = finetune_sorted(
        source.supernet,
        source.params,
        source.network,
        chain.archs,
        source.data,
        request.finetune,
        batch_size=source.batch_size,
        seed=source.seed,
    )
    manifest = export_sorted(
        source.supernet,
        params,
        source.network,
        chain.archs,
        source.data,
        source.out,
        meta={
            "run_dir": str(source.run.path),
            "supernet": source.meta["folder"],
            "finetune_steps": request.finetune,
            "chain": chain.to_dict(),
            "finetune": history,
        },
    )
    rows = [{**m, "folder": str(source.out / m["folder"])} for m in manifest["members"]]
    return ExportedFamily(source.out, "sorted", rows, manifest)


def _stitched(source: _Source, request: ExportRequest) -> ExportedFamily:
    """Anchors of different sizes from the front, least-squares stitches, the Pareto stitches."""
    from nasx.export.stitched import build_stitched, export_stitched, select_anchors, train_stitches

    network = source.network
    stages = search_spaces.family(network.name).stages
    if stages is None:
        staged = [f.name for f in search_spaces.FAMILIES.values() if f.stages is not None]
        raise UnsupportedSpaceError(
            f'space "{network.name}" cannot be stitched (no stage boundaries); use one of {", ".join(staged)}'
        )
    anchors = select_anchors(source.archs(), network, request.anchors)
    batch, seed = source.batch_size, source.seed
    net = build_stitched(
        source.supernet,
        source.params,
        network,
        stages()(network),
        anchors,
        source.data,
        batch_size=batch,
        seed=seed,
        reverse=request.reverse,
    )
    history = train_stitches(net, source.data, request.stitch_steps, batch_size=batch, seed=seed)
    manifest = export_stitched(
        net,
        network,
        source.data,
        source.out,
        batch_size=batch,
        meta={
            "run_dir": str(source.run.path),
            "supernet": source.meta["folder"],
            "stitch_steps": request.stitch_steps,
            "reverse": request.reverse,
            "stitch_loss": history,
        },
    )
    rows = [{**m, "folder": str(source.out / m["folder"])} for m in manifest["members"]]
    return ExportedFamily(source.out, "stitched", rows, manifest)
