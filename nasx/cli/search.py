"""`nasx search` and `nasx solve`: the CLI wiring of spaces, strategies and evaluators.

Part of the composition root (with `nasx.cli`): the only place where `search_spaces`, `solvers`
and the engine meet. The explicit dicts below are the plug-in tables (no registries elsewhere).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

import search_spaces
from nasx.budget import Budget, format_amount
from nasx.cli._args import (
    add_latency_argument,
    budget_arg,
    emit_json,
    load_latency_table,
    parse_bits,
    with_latency,
)
from nasx.errors import NasxError, RunFolderError, UnknownEvaluatorError, UnknownObjectiveError
from nasx.jobs.trained import checkpoint_space, load_supernet
from nasx.runlog import Evaluation
from nasx.search import COST_OBJECTIVES, Objective, SearchResult, search
from nasx.space import Arch, SearchSpace
from search_spaces import make_space, training_space

__all__ = ["add_parsers", "cmd_search", "cmd_solve"]

STRATEGIES = ("evolution", "nsga2", "random", "mp")
PROXIES = ("synflow", "naswot", "jacob_cov", "snip", "grad_norm", "zen")
ANALYTIC = ("entropy", "params", "macs")
DEFAULT_EVALUATOR = {"nasnet": "params", "mobilenet": "entropy", "resnet": "entropy", "nb201": "synflow"}
"""Per family, what the bare command scores with in a few minutes on 2 CPU cores: DeepMAD's entropy
where it is defined (stage-structured spaces); for NASNet cells the analytic parameter count (on
NB201 it ranks cells as well as the best zero-cost proxies: Spearman 0.76 with test accuracy),
because the NASNet supernet with all 13 candidate ops takes minutes to build and compile on a CPU;
synflow on the small NB201 supernet."""
DEFAULT_RHO = {"resnet": 0.3, "mobilenet": 0.5}
"""DeepMAD's effectiveness bound rho0: 0.3 for its ResNet configs, 0.5 for its larger/MBConv ones."""
MACRO_CHOICES = {"nasnet": ("N", "F")}
"""Choices scaled to fill the budget after the cell is chosen (NASNet's recipe), per family."""


# --- evaluators -------------------------------------------------------------------------------
@dataclasses.dataclass
class _Evaluator:
    evaluate: Any
    names: tuple[str, ...]
    description: str


def _proxy_network(family: str, num_classes: int, width_mult: float | None) -> SearchSpace:
    """The small network proxies run on: CIFAR-size, float, narrow (see nasx.evaluators)."""
    if family == "nb201":
        return training_space("nb201:cifar10", bits=(32,), num_classes=num_classes, width_mult=None)
    if family == "mobilenet":
        return training_space(
            "mobilenet:cifar", bits=(32,), num_classes=num_classes, width_mult=width_mult or 0.25
        )
    space = training_space(f"{family}:cifar", bits=(32,), num_classes=num_classes, width_mult=None)
    if family == "nasnet":  # cells are scored in a 1-cell-per-stack, 16-filter network
        space = dataclasses.replace(space, depths=(1,), filters=(16,))
    return space


def build_evaluator(spec: str, space: SearchSpace, args: argparse.Namespace) -> _Evaluator:
    """`--evaluator`: proxies and analytic scores (comma-separated), or ``supernet:CKPT``."""
    family = space.name
    if spec.startswith("supernet:"):
        return _supernet_evaluator(spec.partition(":")[2], space, args)
    if spec.startswith("train:"):
        return _training_evaluator(spec, space, args)
    names = tuple(n.strip() for n in spec.split(",") if n.strip())
    unknown = [n for n in names if n not in PROXIES + ANALYTIC]
    if unknown or not names:
        raise UnknownEvaluatorError(
            f'unknown evaluator "{",".join(unknown) or spec}"; expected a proxy ({", ".join(PROXIES)}), '
            f"an analytic score ({', '.join(ANALYTIC)}) or supernet:CKPT_DIR (from nasx train-supernet)"
        )
    if "entropy" in names and family not in ("resnet", "mobilenet"):
        raise UnknownEvaluatorError(
            f'evaluator "entropy" (DeepMAD) needs a stage-structured space (resnet, mobilenet), not "{family}"; '
            f"use a proxy such as synflow"
        )
    analytic = {n: _analytic(n, space, args) for n in names if n in ANALYTIC}
    if "entropy" in analytic:
        from solvers.mp import effectiveness

        analytic["rho"] = lambda a: effectiveness(space, a)
    proxies = [n for n in names if n in PROXIES]
    if not proxies:
        from nasx.evaluators import analytic as analytic_evaluator

        return _Evaluator(analytic_evaluator(analytic), names, f"analytic {', '.join(names)}")
    evaluator = _proxy_evaluator(proxies, space, args)
    if analytic:
        from nasx.evaluators import analytic as analytic_evaluator

        closed = analytic_evaluator(analytic)

        def both(archs: Sequence[Arch]) -> list[dict[str, float]]:
            return [{**a, **b} for a, b in zip(closed(archs), evaluator.evaluate(archs), strict=True)]

        evaluator = dataclasses.replace(evaluator, evaluate=both)
    return dataclasses.replace(evaluator, names=names)


def _analytic(name: str, space: SearchSpace, args: argparse.Namespace):
    if name == "params":
        return lambda a: space.costs(a, args.resolution).params
    if name == "macs":
        return lambda a: space.costs(a, args.resolution).macs
    from solvers.mp import deepmad_score, effectiveness

    def entropy(arch: Arch) -> float:
        """DeepMAD's score where rho <= rho0; below every feasible score otherwise, ranked by how
        far rho exceeds the bound (feasibility first, so evolution climbs into the feasible set)."""
        rho = effectiveness(space, arch)
        if rho > args.rho:
            return -(rho - args.rho)
        return deepmad_score(space, arch, resolution=args.resolution)

    return entropy


def _proxy_evaluator(names: Sequence[str], space: SearchSpace, args: argparse.Namespace) -> _Evaluator:
    import jax

    from nasx import data as datasets
    from nasx import proxies
    from nasx.devices import ARCHS, local_mesh, replicate
    from nasx.evaluators import ProxyEvaluator
    from nasx.supernet import build, functional

    family = space.name
    probe = _proxy_network(family, 10, args.width_mult)
    data = datasets.load(args.data, size=probe.resolution, seed=args.seed)
    network = _proxy_network(family, data.num_classes, args.width_mult)
    supernet = build(search_spaces.family(family).supernet(), network, seed=args.seed)
    _, params, plain = functional(supernet)
    # forward-mode proxies (synflow) cannot pass the XLA:CPU convolutions with canonical gradients
    applies = {False: functional(supernet, canonical_conv_grads=True)[2], True: plain}
    mesh = local_mesh(ARCHS)  # every chunk of architectures is split over all local devices
    params = replicate(params, mesh)
    chosen = {n: proxies.PROXIES[n] for n in names}
    images = {n: args.proxy_batch or p.batch_size for n, p in chosen.items()}
    order = np.random.default_rng([args.seed, 11]).permutation(len(data.x_train))[: max(images.values())]
    evaluate = ProxyEvaluator(
        network,
        params,
        {
            n: proxies.make_proxy(
                applies[p.forward_mode], p, one_at_a_time=getattr(supernet, "switches_ops", False), mesh=mesh
            )
            for n, p in chosen.items()
        },
        data.x_train[order],
        data.y_train[order],
        jax.random.key(args.seed),
        chunk=args.batch_size,
        images=images,
    )
    where = f"{network.name}:{network.variant} proxy network"
    if family == "nasnet":
        where += " (cells in a N=1, F=16 network)"
    return _Evaluator(
        evaluate,
        tuple(names),
        f"{', '.join(names)} on the {where}, {max(images.values())} {data.name} images",
    )


def _training_evaluator(spec: str, space: SearchSpace, args: argparse.Namespace) -> _Evaluator:
    from nasx import data as datasets
    from nasx.evaluators import TrainingEvaluator
    from nasx.supernet import build, functional

    steps = spec.partition(":")[2]
    if not steps.isdigit() or int(steps) < 1:
        raise UnknownEvaluatorError(
            f'evaluator "{spec}": give the training steps per architecture, e.g. train:200'
        )
    probe = _proxy_network(space.name, 10, args.width_mult)
    data = datasets.load(args.data, size=probe.resolution, seed=args.seed)
    network = _proxy_network(space.name, data.num_classes, args.width_mult)
    _, params, apply = functional(build(search_spaces.family(space.name).supernet(), network, seed=args.seed))
    evaluate = TrainingEvaluator(network, apply, params, data, steps=int(steps), seed=args.seed)
    return _Evaluator(
        evaluate,
        ("acc",),
        f"held-out accuracy after {steps} steps of training on {data.name}, each arch alone on the "
        f"{network.name}:{network.variant} proxy network",
    )


def _supernet_evaluator(path: str, space: SearchSpace, args: argparse.Namespace) -> _Evaluator:
    from nasx.devices import ARCHS, local_mesh
    from nasx.evaluators import AccuracyEvaluator
    from nasx.supernet import functional

    network, supernet, params, meta, data = load_supernet(path, space.name)
    _, _, apply = functional(supernet)
    return _Evaluator(
        AccuracyEvaluator(network, apply, params, data, chunk=args.batch_size, mesh=local_mesh(ARCHS)),
        ("acc",),
        f"held-out accuracy on {data.name} with weights inherited from {meta['folder']} (step {meta['step']}), "
        "BN re-calibrated",
    )


# --- strategies -------------------------------------------------------------------------------
def build_strategy(name: str, space: SearchSpace, budget: Budget, maximize: Sequence[bool], args):
    from solvers.evolution import NSGA2, AgingEvolution
    from solvers.random import RandomSearch

    if name == "random":
        return RandomSearch(space, budget, resolution=args.resolution)
    if name == "evolution":
        return AgingEvolution(
            space,
            budget,
            population_size=args.population,
            sample_size=max(2, args.population // 4),
            maximize=maximize[0],
            resolution=args.resolution,
        )
    return NSGA2(space, tuple(maximize), budget, population_size=args.population, resolution=args.resolution)


@dataclasses.dataclass(frozen=True)
class Filled:
    """A strategy whose asked architectures get their macro choices scaled to fill the budget."""

    inner: Any
    space: SearchSpace
    budget: Budget
    names: tuple[str, ...]
    resolution: int | None = None

    def init(self, seed: int):
        return (self.inner.init(seed), ())

    def ask(self, state, n: int = 1):
        from nasx.evaluators import fill_budget

        inner, seen = state
        archs, inner = self.inner.ask(inner, n)
        out, taken = [], set(seen)
        for a in archs:
            filled = fill_budget(self.space, a, self.budget, self.names, self.resolution)
            if filled.fingerprint not in taken:
                taken.add(filled.fingerprint)
                out.append(filled)
        return out, (inner, tuple(taken))

    def tell(self, state, archs, objectives):
        inner, seen = state
        return (self.inner.tell(inner, archs, objectives), seen)


# --- nasx search ------------------------------------------------------------------------------
def _run_dir(args: argparse.Namespace, budget: Budget) -> Path:
    if args.out:
        return Path(args.out).expanduser().resolve()
    stem = re.sub(r"[^A-Za-z0-9.+-]+", "_", f"{args.space}-{budget}-{args.strategy}-s{args.seed}")
    base = Path("runs").resolve()
    candidate, k = base / stem, 2
    while candidate.exists():
        candidate, k = base / f"{stem}-{k}", k + 1
    return candidate


def cmd_search(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from nasx.budget import sample_admitted

    table = load_latency_table(args)
    if args.evaluator and args.evaluator.startswith("supernet:"):
        space = checkpoint_space(args.evaluator.partition(":")[2], args.space, args.bits)
    else:  # proxies and analytic scores cannot see quantization: search float nets unless asked
        space = make_space(args.space, args.bits or (32,))
    space = with_latency(space, table, args.resolution)
    args.rho = args.rho if args.rho is not None else DEFAULT_RHO.get(space.name, 0.3)
    budget: Budget = args.budget
    if args.resume and not args.out:
        raise RunFolderError("--resume needs --out RUN_DIR, the folder of the run to continue")
    run_dir = _run_dir(args, budget)
    if (run_dir / "runlog.jsonl").exists() and not args.resume:
        raise RunFolderError(
            f'run folder "{run_dir}" already holds a run; add --resume to continue it or choose another --out'
        )
    # fail fast on a budget nothing meets (and on costs the space cannot measure)
    sample_admitted(space, budget, np.random.default_rng(args.seed), 1, resolution=args.resolution)
    err = Console(stderr=True)
    t0 = time.perf_counter()
    if args.strategy == "mp":
        return _search_mp(space, budget, args, run_dir, err, t0)
    spec = args.evaluator or DEFAULT_EVALUATOR[space.name]
    if not args.json:
        err.print(f"preparing the evaluator ({spec}) ...")
    evaluator = build_evaluator(spec, space, args)
    objectives = _objectives(args, evaluator)
    maximize = [o.maximize for o in objectives]
    strategy = build_strategy(args.strategy, space, budget, maximize, args)
    fill = MACRO_CHOICES.get(space.name, ()) if len(objectives) == 1 else ()
    if fill:  # one objective: every cell is scaled to use the budget (a Pareto search keeps N, F free)
        strategy = Filled(strategy, space, budget, fill, args.resolution)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "space": space.name,
        "variant": space.variant,
        "bits": list(space.bits) if hasattr(space, "bits") else None,
        "budget": str(budget),
        "strategy": args.strategy,
        "evaluator": spec,
        "evaluator_description": evaluator.description,
        "filled_choices": list(fill),
        "objectives": [o.name for o in objectives],
        "population": args.population,
        "evaluations": args.evaluations,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "resolution": args.resolution,
        "data": args.data,
        "latency_table": args.latency_table,
    }
    _check_config(run_dir, config, args.resume)
    (run_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    if not args.json:
        err.print(
            f"searching {space.name}:{space.variant} under {budget} with {args.strategy} "
            f"({args.evaluations} evaluations, {evaluator.description}) -> {run_dir}"
        )
    columns = (
        TextColumn("[bold]{task.completed}/{task.total} archs"),
        BarColumn(),
        TextColumn("best {task.fields[best]}  {task.fields[rate]:.1f} archs/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    best: list[float] = []
    with Progress(*columns, console=err, disable=args.json) as bar:
        task = bar.add_task("search", total=args.evaluations, best="-", rate=0.0)

        def on_batch(done: int, batch: list[Evaluation]) -> None:
            values = [e.objectives[0] for e in batch if e.ok and e.objectives[0] is not None]
            if values:
                best.append(max(values) if maximize[0] else min(values))
            shown = (max(best) if maximize[0] else min(best)) if best else None
            bar.update(
                task,
                completed=done,
                best="-" if shown is None else f"{shown:.4g}",
                rate=done / max(time.perf_counter() - t0, 1e-9),
            )

        if args.ray:
            from nasx.cli.sweep import search_on_ray

            result = search_on_ray(space, strategy, spec, objectives, args, run_dir, on_batch)
        else:
            result = search(
                space,
                strategy,
                evaluator.evaluate,
                objectives,
                evaluations=args.evaluations,
                batch_size=args.batch_size,
                seed=args.seed,
                budget=budget,
                resolution=args.resolution,
                run_dir=run_dir,
                resume=args.resume,
                on_batch=on_batch,
            )
    return _report(space, budget, result, config, args, time.perf_counter() - t0)


def _check_config(run_dir: Path, config: dict, resume: bool) -> None:
    path = run_dir / "config.json"
    if not (resume and path.exists()):
        return
    saved = json.loads(path.read_text())
    differing = sorted(
        k for k in set(saved) | set(config) if k != "evaluations" and saved.get(k) != config.get(k)
    )
    if differing:
        raise RunFolderError(
            f'cannot resume "{run_dir}": {", ".join(f"{k}={saved.get(k)!r} there, {config.get(k)!r} now" for k in differing)}'
        )


def _objectives(args: argparse.Namespace, evaluator: _Evaluator) -> tuple[Objective, ...]:
    """`--objectives`: scores of the evaluator (maximized) first, then analytic costs (minimized)."""
    names = [n.strip() for n in (args.objectives or "score").split(",") if n.strip()]
    if not args.objectives and args.strategy == "nsga2":
        names.append("macs")
    out = []
    for name in names:
        if name in ("acc", "score"):
            name = evaluator.names[0]
        if name in evaluator.names:
            out.append(Objective(name))
        elif name in COST_OBJECTIVES:
            out.append(Objective.cost(name))
        else:
            raise UnknownObjectiveError(
                f'objective "{name}": expected a score of the evaluator ({", ".join(evaluator.names)}, or '
                f"acc/score for the first) or a cost ({', '.join(COST_OBJECTIVES)})"
            )
    if args.strategy in ("evolution", "random") and len(out) > 1:
        raise UnknownObjectiveError(
            f'strategy "{args.strategy}" optimizes one objective, got {",".join(o.name for o in out)}; '
            "use --strategy nsga2"
        )
    return tuple(out)


def _search_mp(space, budget, args, run_dir: Path, err: Console, t0: float) -> int:
    from nasx.evaluators import analytic
    from solvers.mp import solve

    if not args.json:
        err.print(f"solving DeepMAD's program for {space.name}:{space.variant} under {budget} (CBC) ...")
    solved = solve(space, budget, rho_max=args.rho, resolution=args.resolution, time_limit_s=args.time_limit)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "space": space.name,
        "variant": space.variant,
        "budget": str(budget),
        "strategy": "mp",
        "evaluator": "entropy",
        "objectives": ["entropy"],
        "rho": args.rho,
        "seed": args.seed,
    }
    (run_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    class _One:
        def init(self, seed):
            return False

        def ask(self, state, n=1):
            return ([] if state else [solved.arch]), True

        def tell(self, state, archs, objectives):
            return state

    scores = analytic({"entropy": lambda a: solved.score})
    result = search(
        space, _One(), scores, ("entropy",), evaluations=1, run_dir=run_dir, resolution=args.resolution
    )
    config["solver"] = {
        "status": solved.status,
        "optimal": solved.optimal,
        "gap": solved.gap,
        "solve_s": solved.solve_s,
    }
    (run_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return _report(space, budget, result, config, args, time.perf_counter() - t0)


def _report(space, budget, result: SearchResult, config: dict, args, seconds: float) -> int:
    best = result.best
    if best is None:
        raise SearchFailedError(
            f"no architecture was scored successfully ({len(result.evaluations)} evaluated); see {result.run_dir}/runlog.jsonl"
        )
    front = result.front
    run_dir = result.run_dir
    assert run_dir is not None
    (run_dir / "front").mkdir(exist_ok=True)
    for e in front:
        (run_dir / "front" / f"{e.arch.fingerprint}.json").write_text(
            json.dumps(_entry(space, e), indent=2) + "\n"
        )
    (run_dir / "front.json").write_text(json.dumps([_entry(space, e) for e in front], indent=2) + "\n")
    (run_dir / "best.json").write_text(json.dumps(_entry(space, best), indent=2) + "\n")
    summary = {
        "best": best.arch.to_dict(),
        "fingerprint": best.arch.fingerprint,
        "costs": dict(best.costs),
        "score": best.objectives[0],
        "scores": dict(best.scores),
        "objectives": [o.name for o in result.objectives],
        "front": [_entry(space, e) for e in front],
        "evaluated": len(result.evaluations),
        "failed": sum(not e.ok for e in result.evaluations),
        "resumed": result.resumed,
        "seconds": round(seconds, 2),
        "run_dir": str(run_dir),
        **{k: config[k] for k in ("space", "variant", "budget", "strategy", "evaluator")},
    }
    if "solver" in config:
        summary["solver"] = config["solver"]
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if args.json:
        emit_json(summary)
        return 0
    console = Console()
    names = [o.name for o in result.objectives]
    score_names = [n for n in best.scores if n not in names] if len(best.scores) > 1 else []
    table = Table(
        title=f"{space.name}:{space.variant} under {budget}: "
        + ("best architecture" if len(names) == 1 else f"Pareto front ({len(front)})")
        + f" of {len(result.evaluations)} evaluated ({args.strategy}, {seconds:.0f} s)"
    )
    table.add_column("#", justify="right")
    table.add_column("arch", no_wrap=True)
    for n in names + score_names:
        table.add_column(n, justify="right")
    costs_shown = {o.name for o in result.objectives if o.is_cost} | set(names)
    for col, key in (("MACs", "macs"), ("params", "params"), ("weights", "weight_bytes")):
        if key not in costs_shown:
            table.add_column(col, justify="right")
    shown = front if len(names) > 1 else _top(result, args.top)
    for rank, e in enumerate(shown, 1):
        cells = [str(rank), _describe(e.arch)]
        for o in [*result.objectives, *(Objective(n) for n in score_names)]:
            v = (e.costs if o.is_cost else e.scores).get(o.name)
            cells.append("-" if v is None else format_amount(v) if o.is_cost else f"{v:.4g}")
        if "macs" not in costs_shown:
            cells.append(format_amount(e.costs["macs"]))
        if "params" not in costs_shown:
            cells.append(format_amount(e.costs["params"]))
        if "weight_bytes" not in costs_shown:
            cells.append(f"{format_amount(e.costs['weight_bytes'])}B")
        table.add_row(*cells)
    console.print(table)
    if "solver" in config:
        s = config["solver"]
        console.print(
            f"solver: {s['status']} (optimal: {s['optimal']}, gap {s['gap']}, {s['solve_s']:.1f} s)"
        )
    console.print(f"best architecture: {run_dir / 'best.json'}   run log: {run_dir / 'runlog.jsonl'}")
    return 0


def _describe(arch: Arch) -> str:
    """Fingerprint, plus the macro choices a reader looks for first."""
    macro = " ".join(f"{k}={arch[k]}" for k in ("N", "F") if k in arch)
    return f"{arch.fingerprint} {macro}".strip()


def _top(result: SearchResult, k: int) -> list[Evaluation]:
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


def _entry(space: SearchSpace, e: Evaluation) -> dict[str, Any]:
    return {
        "space": space.name,
        "variant": space.variant,
        "fingerprint": e.arch.fingerprint,
        "arch": e.arch.to_dict(),
        "costs": dict(e.costs),
        "scores": dict(e.scores),
        "objectives": list(e.objectives),
    }


class SearchFailedError(NasxError, RuntimeError):
    """Every evaluation of a search failed."""


# --- nasx solve -------------------------------------------------------------------------------
def cmd_solve(args: argparse.Namespace) -> int:
    from solvers.mp import deepmad_score, effectiveness, solve

    table = load_latency_table(args)
    space = with_latency(make_space(args.space, args.bits), table, args.resolution)
    args.rho = args.rho if args.rho is not None else DEFAULT_RHO.get(space.name, 0.3)
    result = solve(
        space, args.budget, rho_max=args.rho, resolution=args.resolution, time_limit_s=args.time_limit
    )
    arch = result.arch
    out = {
        "space": space.name,
        "variant": space.variant,
        "budget": str(args.budget),
        "arch": arch.to_dict(),
        "fingerprint": arch.fingerprint,
        "score": result.score,
        "effectiveness": effectiveness(space, arch),
        "costs": result.costs.to_dict(),
        "status": result.status,
        "optimal": result.optimal,
        "gap": result.gap,
        "solve_s": result.solve_s,
    }
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    if args.json:
        emit_json(out)
        return 0
    console = Console()
    table = Table(title=f"DeepMAD MP on {space.name}:{space.variant} under {args.budget} (rho <= {args.rho})")
    table.add_column("stage")
    stages = sorted({k.split(".")[0] for k in arch if "." in k and not k.startswith("bits")})
    fields = sorted({k.split(".", 1)[1] for k in arch if "." in k and not k.startswith("bits")})
    for f in fields:
        table.add_column(f, justify="right")
    for s in stages:
        table.add_row(s, *(str(arch.get(f"{s}.{f}", "")) for f in fields))
    console.print(table)
    c = result.costs
    console.print(
        f"DeepMAD score {result.score:,.2f} (check: {deepmad_score(space, arch, resolution=args.resolution):,.2f}), "
        f"effectiveness {out['effectiveness']:.4f}; MACs {format_amount(c.macs)}, params {format_amount(c.params)}, "
        f"layers {c.layers}; {result.status}, gap {result.gap}, {result.solve_s:.1f} s"
    )
    return 0


# --- argument parsing -------------------------------------------------------------------------
def add_parsers(sub, spaces_help: str) -> None:

    p = sub.add_parser(
        "search",
        help="search a space for the best architectures under a budget",
        description="Ask/tell search (aging evolution, NSGA-II, random) or DeepMAD's MILP (mp). Scores come "
        "from zero-cost proxies on a small proxy network, DeepMAD entropy, or a trained supernet. Writes "
        "OUT/runlog.jsonl (every evaluated arch), front.json, best.json, summary.json.",
    )
    p.add_argument("--space", required=True, help=spaces_help)
    p.add_argument(
        "--budget", required=True, type=budget_arg, help="e.g. 600M-flops (MACs) or 600M-flops,5M-params"
    )
    p.add_argument("--strategy", choices=STRATEGIES, default="evolution", help="default: evolution (aging)")
    p.add_argument(
        "--evaluator",
        help=f"proxies/scores, comma-separated ({', '.join(PROXIES + ANALYTIC)}), supernet:CKPT_DIR, or "
        "train:STEPS (each arch trained alone; with --ray, ASHA stops poor ones early); "
        "default: entropy for resnet/mobilenet, params for nasnet, synflow for nb201",
    )
    p.add_argument(
        "--objectives", help="e.g. acc,macs (acc/score = the evaluator's first score); default: score"
    )
    p.add_argument("--population", type=int, default=32, help="population size (default 32)")
    p.add_argument("--evaluations", type=int, default=256, help="architectures to evaluate (default 256)")
    p.add_argument("--batch-size", type=int, default=16, help="architectures scored per call (default 16)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", help="run folder (default: runs/SPACE-BUDGET-STRATEGY-sSEED)")
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out (nothing is evaluated twice)"
    )
    p.add_argument(
        "--bits",
        type=parse_bits,
        help="weight bit-widths to search, e.g. 4,8,16,32 (default 32: proxies cannot judge quantization; "
        "with supernet:CKPT, the checkpoint's)",
    )
    p.add_argument("--resolution", type=int, help="px at which costs apply (default: the space's)")
    p.add_argument(
        "--data", default="digits", help="images for proxies (default digits; cifar10:PATH, npz:PATH)"
    )
    p.add_argument(
        "--proxy-batch", type=int, help="images per proxy evaluation (default: each proxy's reference batch)"
    )
    p.add_argument("--width-mult", type=float, help="width of the mobilenet proxy network (default 0.25)")
    p.add_argument(
        "--rho", type=float, help="DeepMAD effectiveness bound (default 0.3 for resnet, 0.5 for mobilenet)"
    )
    p.add_argument("--time-limit", type=float, default=60.0, help="MP solver time limit in s (default 60)")
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="score on a Ray cluster: auto (`ray start --head` here), ray://HOST:PORT, or local; needs nasx[ray]",
    )
    p.add_argument(
        "--ray-chunk", type=int, default=4, help="architectures per Ray trial (default 4; with --ray)"
    )
    p.add_argument(
        "--ray-rounds",
        type=int,
        default=4,
        help="with --ray and train:STEPS, accuracy reports per arch for ASHA early stopping (default 4)",
    )
    p.add_argument("--top", type=int, default=5, help="rows of the result table (default 5)")
    p.add_argument(
        "--json", action="store_true", help="print one JSON object (best, costs, score, run_dir, ...)"
    )
    add_latency_argument(p)
    p.set_defaults(run=cmd_search)

    p = sub.add_parser(
        "solve",
        help="DeepMAD's mathematical program (MILP, CBC) for resnet/mobilenet",
        description="Maximize DeepMAD's stage-weighted entropy under the budget and rho <= RHO.",
    )
    p.add_argument("--space", required=True, help="resnet or mobilenet (optionally :VARIANT)")
    p.add_argument("--budget", required=True, type=budget_arg, help="e.g. 4.13G-flops,25.55M-params")
    p.add_argument(
        "--rho", type=float, help="effectiveness bound rho0 (default 0.3 for resnet, 0.5 for mobilenet)"
    )
    p.add_argument("--bits", type=parse_bits, help="weight bit-widths to choose from (default: 32 only)")
    p.add_argument("--resolution", type=int, help="input side in px (default: the space's)")
    p.add_argument("--time-limit", type=float, default=60.0, help="solver time limit in s (default 60)")
    p.add_argument("--out", help="also write the result JSON to this file")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_latency_argument(p)
    p.set_defaults(run=cmd_solve)
