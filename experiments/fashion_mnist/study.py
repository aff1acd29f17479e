"""The Fashion-MNIST study's stages (`Study`), its settings (`Settings`) and the stage runner (`run`).

`run.py` holds the numbers and the command; this module what each stage does (see `run.py`'s
docstring for the design). A stage is a method of `Study` returning what ``OUT/<stage>.json``
holds. Networks trained from scratch are `Task`s: each trains once into ``OUT/work/train/NAME``
(Orbax checkpoints, resumed after a kill) and leaves its table row in ``row.json`` there, so a
stage redone after a kill retrains nothing that finished. Independent trainings run in
`Settings.workers` processes: one keeps ~1.7 cores busy on an idle machine but ~1 on a shared one,
and compiles on one core, so two processes get through the networks' fixed costs (data, compile)
twice as fast and hold their share of a busy machine.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from baselines import CifarResNet, ResNetShape, TwoConvNet, resnet_costs, resnet_for_budget, two_conv_costs
from report import write_report

from nasx.budget import Budget, parse_budget
from nasx.costs import Costs
from nasx.errors import NasxError
from nasx.outputs import write_json  # whole or not at all: a kill never leaves half a result
from nasx.space import Arch, SearchSpace

__all__ = [
    "STAGES",
    "BUDGET_NAMES",
    "Settings",
    "Task",
    "Study",
    "run",
    "result_file",
    "mobilenet_v2_point",
    "sample_within",
    "spread",
]

STAGES = ("supernet", "search", "found", "baselines", "random", "families", "report")
"""In order; each writes ``OUT/<stage>.json`` (the report: ``summary.json``)."""
BUDGET_NAMES = ("tiny", "small", "medium")
SEARCHES = {"tiny": "evolution", "small": "evolution", "medium": "nsga2"}
"""The strategy of each budget's search. The medium one is NSGA-II over (accuracy, MACs): its
Pareto front is what the families are made of (a one-objective search's front is its best
architecture alone); its best architecture by accuracy is the budget's found network."""


@dataclass(frozen=True)
class Settings:
    """Everything a study run depends on (`run.FULL`, `run.QUICK`).

    Attributes:
      data, image_size: the dataset spec and the px everything trains, runs and is costed at.
      space: the searched space, ``FAMILY:VARIANT``.
      budgets: the tiny, small and medium budgets (`nasx.budget.parse_budget` strings).
      baseline_space: the space whose uniform kernel-3, expansion-6 point is the MobileNetV2-style
        baseline of each budget (`mobilenet_v2_point`).
      supernet_epochs, archs_per_step, supernet_batch: supernet training (batch None: the recipe's).
      evaluations, population, search_batch: each search.
      epochs: ``E``, from-scratch training of found, baseline and family networks.
      random_epochs, random_count: ``E_r`` and the number of random architectures.
      finetune, stitch_steps, anchors: the families' export.
      twins: at most this many family members (spread over MACs) are also trained alone.
      workers: processes training networks at once.
      seed: of everything.
    """

    data: str
    image_size: int
    space: str
    budgets: tuple[str, str, str]
    baseline_space: str
    supernet_epochs: float
    archs_per_step: int
    supernet_batch: int | None
    evaluations: int
    population: int
    search_batch: int
    epochs: float
    random_epochs: float
    random_count: int
    finetune: int
    stitch_steps: int
    anchors: int
    twins: int = 6
    workers: int = 2
    seed: int = 0
    notes: dict[str, str] = field(default_factory=dict, compare=False)
    """Why the numbers are what they are (copied into ``summary.json``)."""


class Task(NamedTuple):
    """A network to train from scratch: an architecture of the space or a baseline.

    `arch` is an architecture of `space` (None: the study's); `baseline` is ``("resnet", width,
    blocks)`` or ``("2conv",)``; `extra` goes into the row.
    """

    name: str
    kind: str
    epochs: float
    arch: dict | None = None
    space: str | None = None
    baseline: tuple | None = None
    extra: dict | None = None


# --- small helpers --------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def _fresh_or_resumable(folder: Path) -> bool:
    """Whether `folder` holds a run to resume; a folder a kill left without a checkpoint is cleared
    (the library refuses to start in a non-empty folder)."""
    ckpt = folder / "checkpoints"
    if ckpt.is_dir() and any(ckpt.iterdir()):
        return True
    if folder.exists():
        shutil.rmtree(folder)
    return False


def _millions(n: float) -> str:
    return f"{n / 1e6:.2f}M"


def _print(line: str) -> None:
    print(line, flush=True)


# --- the study ------------------------------------------------------------------------------------


class Study:
    """One study run: the settings, the output folders, the searched network, the stages."""

    def __init__(self, settings: Settings, out: Path, log: Callable[[str], None] = _print) -> None:
        self.settings, self.out, self.log = settings, out, log
        self.work = out / "work"
        self.work.mkdir(parents=True, exist_ok=True)
        (self.work / ".gitignore").write_text("*\n")  # checkpoints, run logs, models: not committed
        self._spaces: dict[str, SearchSpace] = {}
        self.network: SearchSpace = self.space(settings.space)
        self._data = None
        self.parent: int | None = None  # in a worker process: the pid that started it

    # -- shared pieces --------------------------------------------------------------------------

    @property
    def data(self):
        if self._data is None:
            from nasx.data import load

            self._data = load(self.settings.data, size=self.settings.image_size, seed=self.settings.seed)
        return self._data

    def space(self, spec: str | None = None) -> SearchSpace:
        """The float32 training space of `spec` (``FAMILY:VARIANT``; None: the searched one)."""
        from search_spaces import training_space

        spec = spec or self.settings.space
        if spec not in self._spaces:
            self._spaces[spec] = training_space(spec, bits=(32,), num_classes=10, width_mult=None)
        return self._spaces[spec]

    def costs(self, arch: Arch, space: str | None = None) -> Costs:
        """Analytic costs of a network of `space` (None: the searched one) at the study's px."""
        return self.space(space).costs(arch, resolution=self.settings.image_size)

    def budgets(self) -> dict[str, Budget]:
        """``{"tiny": Budget, "small": ..., "medium": ...}`` (`Settings.budgets`)."""
        return {
            name: parse_budget(text) for name, text in zip(BUDGET_NAMES, self.settings.budgets, strict=True)
        }

    def fit_config(self, epochs: float):
        """The dataset's recipe for `epochs`, as `nasx.jobs.fit.train_network` builds it."""
        from nasx.fit import FitConfig, steps_for_epochs
        from nasx.jobs.recipes import recipe_for

        recipe = recipe_for(self.settings.data)
        n_train = len(self.data.x_train)
        steps = steps_for_epochs(epochs, n_train, recipe.batch_size)
        per_epoch = max(1, n_train // recipe.batch_size)
        return FitConfig(
            steps=steps,
            batch_size=recipe.batch_size,
            learning_rate=recipe.learning_rate,
            weight_decay=recipe.weight_decay,
            label_smoothing=recipe.label_smoothing,
            warmup_steps=max(1, round(recipe.warmup_fraction * steps)),
            seed=self.settings.seed,
            checkpoint_every=max(1, per_epoch // 4),
            log_every=max(1, min(50, per_epoch // 4)),
        )

    # -- training networks ----------------------------------------------------------------------

    def train_all(self, tasks: Sequence[Task]) -> list[dict]:
        """Each task's row, in order: read back if trained before, else trained (in parallel)."""
        rows: dict[str, dict] = {}
        todo = []
        for task in tasks:
            row_file = self.work / "train" / task.name / "row.json"
            if row_file.exists():
                rows[task.name] = _read_json(row_file)
            else:
                todo.append(task)
        todo.sort(key=lambda t: -self._task_macs(t) * t.epochs)  # longest first: the workers end together
        if len(todo) > 1 and self.settings.workers > 1:
            import jax

            context = multiprocessing.get_context("spawn")  # a fresh JAX per worker, never a forked one
            cache = (
                jax.config.jax_compilation_cache_dir,
                jax.config.jax_persistent_cache_min_compile_time_secs,
            )
            with ProcessPoolExecutor(
                min(self.settings.workers, len(todo)),
                mp_context=context,
                initializer=_start_worker,
                initargs=(self.settings, self.out, os.getpid(), cache),
            ) as pool:
                for task, row in zip(todo, pool.map(_train_in_worker, todo), strict=True):
                    rows[task.name] = row
        else:
            for task in todo:
                rows[task.name] = self.train(task)
        return [{**rows[t.name], **(t.extra or {})} for t in tasks]

    def _task_macs(self, task: Task) -> int:
        return (
            self.costs(Arch(task.arch), task.space).macs
            if task.arch is not None
            else self._baseline_costs(task).macs
        )

    def _baseline_costs(self, task: Task) -> Costs:
        px = self.settings.image_size
        if task.baseline[0] == "resnet":
            return resnet_costs(ResNetShape(*task.baseline[1:]), px)
        return two_conv_costs(px)

    def _baseline_model(self, task: Task):
        from flax import nnx

        rngs = nnx.Rngs(self.settings.seed)
        if task.baseline[0] == "resnet":
            return CifarResNet(ResNetShape(*task.baseline[1:]), rngs=rngs)
        return TwoConvNet(image_size=self.settings.image_size, rngs=rngs)

    def train(self, task: Task) -> dict:
        """Train `task` from scratch into ``work/train/NAME`` (resuming a killed run) -> its row.

        An architecture of the space goes through `nasx.jobs.fit.train_network`, a baseline
        through `nasx.fit.fit` with the same recipe (`fit_config`).
        """
        folder = self.work / "train" / task.name
        resume = _fresh_or_resumable(folder)
        if task.arch is not None:
            space = self.space(task.space)
            arch = space.validate(Arch(task.arch))
            row = self._train_arch(folder, space, arch, task.epochs, resume)
            costs = self.costs(arch, task.space)
            row |= {"arch": arch.to_dict(), "fingerprint": arch.fingerprint}
        else:
            costs = self._baseline_costs(task)
            row = self._train_module(folder, self._baseline_model(task), task.epochs, resume)
        row = {"name": task.name, "kind": task.kind, "macs": costs.macs, **row, "epochs": task.epochs}
        write_json(folder / "row.json", row)
        self.log(
            f"  {task.name:<24} {_millions(row['macs']):>7} MACs {row['params']:>9,} params  "
            f"val {row['val']:.4f}  test {row['test']:.4f}  ({row['train_seconds']:.0f} s)"
        )
        return row

    def _check_parent(self, step: int, record: dict) -> None:
        """In a worker: stop when the process that started it is gone (a killed study must not
        leave trainings running that its rerun would start again in the same folders)."""
        if self.parent is not None and os.getppid() != self.parent:
            raise SystemExit(f"the study process {self.parent} is gone; stopping at step {step}")

    def _train_arch(self, folder: Path, space: SearchSpace, arch: Arch, epochs: float, resume: bool) -> dict:
        from nasx.jobs.fit import FitRequest, train_network

        # a file, not inline JSON: resolve_arch first stats its text as a path, and a JSON string
        # is a file name too long for the OS (OSError, reported)
        arch_file = folder.with_name(folder.name + ".arch.json")
        arch_file.parent.mkdir(parents=True, exist_ok=True)
        spec = {"space": space.name, "variant": space.variant, "arch": arch.to_dict()}
        arch_file.write_text(json.dumps(spec, indent=2) + "\n")
        done = train_network(
            FitRequest(
                arch=str(arch_file),
                out=folder,
                space=f"{space.name}:{space.variant}",
                data=self.settings.data,
                epochs=epochs,
                image_size=self.settings.image_size,
                seed=self.settings.seed,
                resume=resume,
            ),
            on_step=self._check_parent,
        )
        s = done.summary
        return {
            "params": s["params"],
            "val": s["accuracy"]["val"],
            "test": s["accuracy"]["test"],
            "train_seconds": s["train_seconds"],
            "images_per_s": s["images_per_s"],
            "steps": s["steps"],
        }

    def _train_module(self, folder: Path, module, epochs: float, resume: bool) -> dict:
        from nasx.fit import fit, model_accuracy
        from nasx.supernet import count_params

        config = self.fit_config(epochs)
        meta = {"model": type(module).__name__, "data": self.settings.data, "px": self.settings.image_size}
        result = fit(
            module, self.data, config, out_dir=folder, resume=resume, meta=meta, on_step=self._check_parent
        )
        rates = sorted(h["images_per_s"] for h in result.history[1:])
        return {
            "params": count_params(result.model),
            "val": model_accuracy(result.model, *self.data.split("val")),
            "test": model_accuracy(result.model, *self.data.split("test")),
            "train_seconds": round(result.seconds, 1),
            "images_per_s": round(rates[len(rates) // 2], 1) if rates else None,
            "steps": result.step,
        }

    # -- stages ---------------------------------------------------------------------------------

    def supernet(self) -> dict:
        from nasx.jobs.train import TrainRequest, train_supernet

        s = self.settings
        folder = self.work / "supernet"
        done = train_supernet(
            TrainRequest(
                space=s.space,
                out=folder,
                data=s.data,
                epochs=s.supernet_epochs,
                archs_per_step=s.archs_per_step,
                batch_size=s.supernet_batch,
                bits=(32,),
                image_size=s.image_size,
                seed=s.seed,
                resume=_fresh_or_resumable(folder),
            )
        )
        self.log(f"  largest/smallest subnet val accuracy {dict(done.val_accuracy)}")
        return {
            "folder": str(folder),
            "space": f"{done.space.name}:{done.space.variant}",
            "steps": done.steps,
            "epochs": s.supernet_epochs,
            "archs_per_step": s.archs_per_step,
            "val_accuracy": dict(done.val_accuracy),
            "test_accuracy": dict(done.test_accuracy),
            "params": done.summary["params"],
        }

    def search(self) -> dict:
        from nasx.jobs.search import SearchRequest, run_search

        s = self.settings
        out: dict[str, Any] = {}
        for name, budget in self.budgets().items():
            strategy = SEARCHES[name]
            folder = self.work / f"search-{name}"
            t0 = time.perf_counter()
            done = run_search(
                SearchRequest(
                    s.space,
                    budget,
                    strategy=strategy,
                    evaluator=f"supernet:{self.work / 'supernet'}",
                    objectives=("acc", "macs") if strategy == "nsga2" else None,
                    population=s.population,
                    evaluations=s.evaluations,
                    batch_size=s.search_batch,
                    seed=s.seed,
                    out=folder,
                    resume=(folder / "runlog.jsonl").exists(),
                    resolution=s.image_size,
                    data=s.data,
                )
            )
            best = done.result.best
            costs = self.costs(best.arch)
            out[name] = {
                "folder": str(folder),
                "budget": str(budget),
                "strategy": strategy,
                "evaluations": len(done.result.evaluations),
                "best": best.arch.to_dict(),
                "fingerprint": best.arch.fingerprint,
                "inherited_val": float(best.objectives[0]),
                "macs": costs.macs,
                "params": costs.params,
                "front_size": len(done.result.front),
                "seconds": round(time.perf_counter() - t0, 1),
            }
            self.log(
                f"  {name:<7} {budget!s:<24} {strategy:<9} best inherited val {best.objectives[0]:.4f} "
                f"at {_millions(costs.macs)} MACs ({len(done.result.evaluations)} evaluated, "
                f"{out[name]['seconds']:.0f} s)"
            )
        return out

    def _found_archs(self) -> dict[str, dict]:
        searches = _read_json(self.out / "search.json")
        return {name: searches[name]["best"] for name in BUDGET_NAMES}

    def found(self) -> dict:
        searches = _read_json(self.out / "search.json")
        tasks = [
            Task(
                f"found-{name}",
                "found",
                self.settings.epochs,
                arch=arch,
                extra={"budget": name, "inherited_val": searches[name]["inherited_val"]},
            )
            for name, arch in self._found_archs().items()
        ]
        return {"rows": self.train_all(tasks)}

    def baselines(self) -> dict:
        px, epochs = self.settings.image_size, self.settings.epochs
        tasks, missing = [], []
        mbv2 = self.space(self.settings.baseline_space)
        for name, budget in self.budgets().items():
            # MobileNetV2's expansion 6 where one fits; below that, the largest expansion that does
            expands = sorted(mbv2.skeleton.expands, reverse=True)
            points = ((e, mobilenet_v2_point(mbv2, budget, px, e)) for e in expands if e <= 6)
            expand, arch = next(((e, a) for e, a in points if a is not None), (None, None))
            if arch is None:
                missing.append(
                    f"no MobileNetV2-style point of {self.settings.baseline_space} fits {budget} ({name})"
                )
                self.log(f"  {missing[-1]}")
            else:
                if expand != 6:
                    missing.append(
                        f"{name}: expansion 6 does not fit {budget}; the MobileNetV2-style point has {expand}"
                    )
                    self.log(f"  {missing[-1]}")
                extra = {"budget": name, "expand": expand, "space": self.settings.baseline_space}
                tasks.append(
                    Task(
                        f"mbv2-{name}",
                        "MobileNetV2-style",
                        epochs,
                        arch=arch.to_dict(),
                        space=self.settings.baseline_space,
                        extra=extra,
                    )
                )
            shape = resnet_for_budget(budget, px)
            tasks.append(
                Task(
                    f"{shape.name}-{name}",
                    "ResNet-style",
                    epochs,
                    baseline=("resnet", *shape),
                    extra={"budget": name, "shape": shape._asdict()},
                )
            )
        tasks.append(Task("2conv", "2-conv CNN", epochs, baseline=("2conv",), extra={"budget": None}))
        return {"rows": self.train_all(tasks), "notes": missing}

    def random(self) -> dict:
        from scipy.stats import kendalltau

        from nasx.stats import kendall_tau_b

        s = self.settings
        largest = self.budgets()[BUDGET_NAMES[-1]]
        archs, rejected = sample_within(self.network, largest, s.random_count, s.seed, self.costs)
        self.log(f"  {len(archs)} random architectures drawn, {rejected} rejected above {largest}")
        named = [(f"random-{i:02d}", "random", a) for i, a in enumerate(archs)]
        named += [
            (f"found-{n}-short", "found (E_r)", self.network.validate(Arch(a)))
            for n, a in self._found_archs().items()
        ]
        inherited = self.inherited_val([a for _, _, a in named])
        tasks = [
            Task(name, kind, s.random_epochs, arch=a.to_dict(), extra={"inherited_val": acc})
            for (name, kind, a), acc in zip(named, inherited, strict=True)
        ]
        rows = self.train_all(tasks)
        x, y = [r["inherited_val"] for r in rows], [r["test"] for r in rows]
        tau = kendall_tau_b(x, y)
        p_value = float(kendalltau(x, y).pvalue)
        self.log(
            f"  Kendall tau (inherited val vs from-scratch test, n={len(rows)}): {tau:.3f} (p = {p_value:.3g})"
        )
        return {
            "rows": rows,
            "rejected": rejected,
            "rejected_above": str(largest),
            "sampling": "space.sample (uniform over each choice in turn), rejecting archs above the largest budget",
            "kendall_tau": tau,
            "p_value": p_value,
            "n": len(rows),
        }

    def inherited_val(self, archs: list[Arch]) -> list[float]:
        """Each architecture's validation accuracy with the supernet's weights (BN re-calibrated),
        as the searches score it (`nasx.evaluators.accuracy.AccuracyEvaluator`)."""
        from nasx.evaluators.accuracy import AccuracyEvaluator
        from nasx.jobs.trained import load_supernet
        from nasx.supernet import functional

        trained = load_supernet(str(self.work / "supernet"))
        _, _, apply = functional(trained.supernet)
        score = AccuracyEvaluator(trained.network, apply, trained.params, trained.data)
        return [r["acc"] for r in score(archs)]

    def families(self) -> dict:
        from nasx.jobs.export import ExportRequest, export_front

        s = self.settings
        trained = {
            r["fingerprint"]: r
            for stage in ("found", "baselines")
            for r in _read_json(self.out / f"{stage}.json")["rows"]
            if "fingerprint" in r
        }
        out: dict[str, Any] = {}
        alone: list[Task] = []
        for kind in ("sorted", "stitched"):
            folder = self.work / f"family-{kind}"
            if not (folder / "family.json").exists():
                if folder.exists():
                    shutil.rmtree(folder)  # an export a kill cut short: redo it
                try:
                    export_front(
                        ExportRequest(
                            self.work / "search-medium",
                            kind=kind,
                            finetune=s.finetune,
                            anchors=s.anchors,
                            stitch_steps=s.stitch_steps,
                            out=folder,
                        )
                    )
                except NasxError as e:  # e.g. a front too small for two anchors: reported, not fatal
                    self.log(f"  no {kind} family: {e}")
                    out[kind] = {"folder": None, "members": [], "error": f"{type(e).__name__}: {e}"}
                    continue
            members = []
            for m in _read_json(folder / "family.json")["members"]:
                row: dict[str, Any] = {"member": m["folder"], "test": m["test_accuracy"], "alone": None}
                arch_file = folder / m["folder"] / "arch.json"
                if arch_file.exists():
                    arch = self.network.validate(Arch.from_json(arch_file.read_text()))
                    costs = self.costs(arch)
                    row |= {"macs": costs.macs, "params": costs.params, "fingerprint": arch.fingerprint}
                    if arch.fingerprint not in trained:
                        name = f"alone-{arch.fingerprint[:12]}"
                        alone.append(Task(name, "family member alone", s.epochs, arch=arch.to_dict()))
                else:  # a stitch of two architectures: no network of the space to train alone
                    row |= {"macs": m["costs"]["macs"], "params": m["costs"]["params"]}
                members.append(row)
            out[kind] = {"folder": str(folder), "members": members}
        unique = spread(list({t.name: t for t in alone}.values()), s.twins, self._task_macs)
        if len(unique) < len({t.name for t in alone}):
            self.log(
                f"  {len(unique)} of {len({t.name for t in alone})} members also trained alone (spread over MACs)"
            )
        trained |= {r["fingerprint"]: r for r in self.train_all(unique)}
        for kind, family in out.items():
            for row in family["members"]:
                if row.get("fingerprint") in trained:
                    twin = trained[row["fingerprint"]]
                    row["alone"] = {k: twin[k] for k in ("name", "val", "test", "epochs")}
                if row["alone"]:
                    twin_text = f"alone {row['alone']['test']:.4f}"
                else:
                    twin_text = "(not trained alone)" if "fingerprint" in row else "(a stitch)"
                self.log(
                    f"  {kind:<8} {row['member']:<34} {_millions(row['macs'])} MACs "
                    f"test {row['test']:.4f} {twin_text}"
                )
        return out

    def report(self) -> dict:
        return write_report(self)


# --- worker processes -----------------------------------------------------------------------------

_WORKER: Study | None = None


def _start_worker(settings: Settings, out: Path, parent: int, cache: tuple[str | None, float]) -> None:
    """A worker process: its `Study`, and the parent's persistent compilation cache (if any)."""
    global _WORKER
    if cache[0]:
        import jax

        jax.config.update("jax_compilation_cache_dir", cache[0])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", cache[1])
    _WORKER = Study(settings, out)
    _WORKER.parent = parent


def _train_in_worker(task: Task) -> dict:
    assert _WORKER is not None
    return _WORKER.train(task)


# --- pure pieces (tested without training) --------------------------------------------------------


def mobilenet_v2_point(space: SearchSpace, budget: Budget, px: int, expand: int = 6) -> Arch | None:
    """The MobileNetV2-style architecture of `space` within `budget`: kernel 3, expansion `expand`,
    no SE, the same depth in every stage, the largest such (by MACs at `px`); None if none fits."""
    best, best_macs = None, -1
    stages = space.skeleton.stages
    for depth in sorted(set.intersection(*(set(stage.depths) for stage in stages))):
        values: dict[str, Any] = {}
        for s in range(1, len(stages) + 1):
            values[f"s{s}.depth"], values[f"s{s}.se"] = depth, False
            for j in range(1, depth + 1):
                values[f"s{s}.b{j}.kernel"], values[f"s{s}.b{j}.expand"] = 3, expand
        arch = space.validate(Arch(values))
        costs = space.costs(arch, resolution=px)
        if budget.admits(costs) and costs.macs > best_macs:
            best, best_macs = arch, costs.macs
    return best


def spread(items: list, k: int, key: Callable[[Any], float]) -> list:
    """At most `k` of `items`, spread evenly over their `key` (both ends kept), in `key` order."""
    ordered = sorted(items, key=key)
    if len(ordered) <= k:
        return ordered
    picks = sorted({round(i * (len(ordered) - 1) / (k - 1)) for i in range(k)}) if k > 1 else [0]
    return [ordered[i] for i in picks]


def sample_within(
    space: SearchSpace, budget: Budget, n: int, seed: int, costs: Callable[[Arch], Costs]
) -> tuple[list[Arch], int]:
    """`n` distinct architectures drawn with ``space.sample``, rejecting those `budget` does not
    admit -> (architectures, how many were rejected). At most 1000 draws per architecture."""
    rng = np.random.default_rng([seed, 0x72616E64])  # "rand": apart from the other streams
    archs: dict[str, Arch] = {}
    rejected = 0
    for _ in range(1000 * n):
        if len(archs) == n:
            break
        arch = space.sample(rng)
        if not budget.admits(costs(arch)):
            rejected += 1
        else:
            archs.setdefault(arch.fingerprint, arch)
    if len(archs) < n:
        raise RuntimeError(f"only {len(archs)} of {n} random architectures fit {budget} in {1000 * n} draws")
    return list(archs.values()), rejected


# --- running the stages ---------------------------------------------------------------------------


def result_file(out: Path, stage: str) -> Path:
    return out / ("summary.json" if stage == "report" else f"{stage}.json")


def run(settings: Settings, out: Path, log: Callable[[str], None] = _print) -> dict[str, float]:
    """Run every unfinished stage of the study into `out` -> this run's seconds per stage."""
    out.mkdir(parents=True, exist_ok=True)
    study = Study(settings, out, log)
    timings_file = out / "timings.json"
    timings = _read_json(timings_file) if timings_file.exists() else {}
    ran: dict[str, float] = {}
    for stage in STAGES:
        target = result_file(out, stage)
        if target.exists():
            log(f"[{stage}] done before ({target.name}); skipped")
            continue
        log(f"[{stage}] ...")
        t0 = time.perf_counter()
        result = getattr(study, stage)()
        seconds = time.perf_counter() - t0
        if stage != "report":
            write_json(target, result)
        timings[stage] = {"seconds": round(seconds, 1), "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
        write_json(timings_file, timings)
        ran[stage] = seconds
        log(f"[{stage}] {seconds / 60:.1f} min")
    total = sum(t["seconds"] for t in timings.values())
    log(f"all stages: {total / 60:.1f} min of wall time (timings.json)")
    return ran
