"""Evaluators built from a spec string (``--evaluator``) and plain settings, for any family.

`build_evaluator` turns ``"synflow"``, ``"entropy,params"``, ``"supernet:CKPT"`` or
``"train:200"`` into a `BuiltEvaluator` on a space; what it needs to know about the space's family
(its proxy network, its default rho, whether DeepMAD's entropy is defined on it) comes from the
family's plug-in value (`search_spaces.family`). `EvaluatorSettings` is a frozen dataclass, so it
travels to Ray workers as it is (`worker_evaluator`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

import search_spaces
from nasx.errors import UnknownEvaluatorError
from nasx.evaluators import ANALYTIC_NAMES, PROXY_NAMES, analytic, analytic_scores
from nasx.search import Evaluator
from nasx.space import Arch, SearchSpace
from nasx.space_family import BlockPricedSpace, SpaceFamily, StagePricedSpace

__all__ = [
    "EvaluatorSettings",
    "BuiltEvaluator",
    "build_evaluator",
    "default_rho",
    "proxy_network",
    "worker_evaluator",
]

FALLBACK_RHO = 0.3
"""DeepMAD's bound rho0 for a family without a default of its own (that of its ResNet configs)."""


@dataclass(frozen=True)
class EvaluatorSettings:
    """What an evaluator depends on besides its spec and the space.

    Attributes:
      data: images proxies and training read (a `nasx.data.load` spec: digits, fashion-mnist, folder:PATH, ...).
      seed: seeds the proxy network's weights, the images chosen and the proxies' keys.
      batch_size: architectures scored per compiled call (the last chunk is padded).
      proxy_batch: images per proxy evaluation (default: each proxy's reference batch).
      width_mult: width of the proxy network, for families that have one (default: the family's).
      rho: DeepMAD's effectiveness bound for ``entropy`` (default: the family's, `default_rho`).
      resolution: px at which analytic costs apply (default: the space's).
    """

    data: str = "digits"
    seed: int = 0
    batch_size: int = 16
    proxy_batch: int | None = None
    width_mult: float | None = None
    rho: float | None = None
    resolution: int | None = None


@dataclass(frozen=True)
class BuiltEvaluator:
    """An evaluator ready to score, the names of its scores (the first is primary), and a line
    describing what it measures (for messages and ``config.json``)."""

    evaluate: Evaluator
    names: tuple[str, ...]
    description: str


def default_rho(space_name: str, rho: float | None = None) -> float:
    """`rho` if given, else the family's DeepMAD bound (`FALLBACK_RHO` for families without one)."""
    if rho is not None:
        return rho
    bound = search_spaces.family(space_name).default_rho
    return FALLBACK_RHO if bound is None else bound


def proxy_network(family: SpaceFamily, num_classes: int, width_mult: float | None) -> SearchSpace:
    """The small network proxies (and ``train:STEPS``) run on: the family's training variant,
    float, with `num_classes` outputs, at its proxy width, shrunk by its ``proxy_network``."""
    width = (width_mult or family.proxy_width_mult) if family.proxy_width_mult is not None else None
    space = search_spaces.training_space(
        f"{family.name}:{family.training_variant}", bits=(32,), num_classes=num_classes, width_mult=width
    )
    return family.proxy_network(space) if family.proxy_network is not None else space


def build_evaluator(spec: str, space: SearchSpace, settings: EvaluatorSettings) -> BuiltEvaluator:
    """The evaluator of `spec`: proxies and analytic scores (comma-separated), ``supernet:CKPT``
    (accuracy with inherited weights) or ``train:STEPS`` (accuracy after a short training).

    Raises:
      UnknownEvaluatorError: `spec` names nothing known, or a score the space's family lacks.
    """
    if spec.startswith("supernet:"):
        return _supernet_evaluator(spec.partition(":")[2], space, settings)
    if spec.startswith("train:"):
        return _training_evaluator(spec, space, settings)
    parts = [n.strip() for n in spec.split(",")]
    if len(parts) > 1 and not all(parts):
        raise UnknownEvaluatorError(
            f'evaluator "{spec}" has an empty name between commas; e.g. synflow,params'
        )
    names = tuple(n for n in parts if n)
    unknown = [n for n in names if n not in PROXY_NAMES + ANALYTIC_NAMES]
    if unknown or not names:
        raise UnknownEvaluatorError(
            f'unknown evaluator "{",".join(unknown) or spec}"; expected a proxy ({", ".join(PROXY_NAMES)}), '
            f"an analytic score ({', '.join(ANALYTIC_NAMES)}) or supernet:CKPT_DIR (from nasx train-supernet)"
        )
    proxies = [n for n in names if n in PROXY_NAMES]
    rho = FALLBACK_RHO
    if "entropy" in names:
        if not isinstance(space, StagePricedSpace | BlockPricedSpace):  # what solvers.mp.formulas prices
            raise UnknownEvaluatorError(
                f'evaluator "entropy" (DeepMAD) needs a stage-structured space (resnet, mobilenet), not '
                f'"{space.name}"; use a proxy such as synflow'
            )
        rho = default_rho(space.name, settings.rho)
    scores = analytic_scores(names, space, resolution=settings.resolution, rho=rho)
    if not proxies:
        return BuiltEvaluator(analytic(scores), names, f"analytic {', '.join(names)}")
    evaluator = _proxy_evaluator(proxies, search_spaces.family(space.name), settings)
    if scores:
        closed, scored = analytic(scores), evaluator.evaluate

        def both(archs: Sequence[Arch]) -> list[dict[str, float]]:
            return [{**a, **b} for a, b in zip(closed(archs), scored(archs), strict=True)]

        evaluator = dataclasses.replace(evaluator, evaluate=both)
    return dataclasses.replace(evaluator, names=names)


def worker_evaluator(spec: str, space: SearchSpace, settings: EvaluatorSettings) -> Evaluator:
    """`build_evaluator(...).evaluate`: module-level and of plain arguments, so that a Ray worker
    builds its evaluator from a pickled ``functools.partial``."""
    return build_evaluator(spec, space, settings).evaluate


def _proxy_evaluator(
    names: Sequence[str], family: SpaceFamily, settings: EvaluatorSettings
) -> BuiltEvaluator:
    import jax

    from nasx import data as datasets
    from nasx import proxies
    from nasx.devices import ARCHS, local_mesh, replicate
    from nasx.evaluators.proxy import ProxyEvaluator
    from nasx.supernet import build, functional

    probe = proxy_network(family, 10, settings.width_mult)
    data = datasets.load(settings.data, size=probe.resolution, seed=settings.seed)
    network = proxy_network(family, data.num_classes, settings.width_mult)
    supernet = build(family.supernet(), network, seed=settings.seed)
    _, params, plain = functional(supernet)
    # forward-mode proxies (synflow) cannot pass the XLA:CPU convolutions with canonical gradients
    applies = {False: functional(supernet, canonical_conv_grads=True)[2], True: plain}
    mesh = local_mesh(ARCHS)  # every chunk of architectures is split over all local devices
    params = replicate(params, mesh)
    chosen = {n: proxies.PROXIES[n] for n in names}
    images = {n: settings.proxy_batch or p.batch_size for n, p in chosen.items()}
    order = np.random.default_rng([settings.seed, 11]).permutation(len(data.x_train))[: max(images.values())]
    evaluate = ProxyEvaluator(
        network,
        params,
        {
            n: proxies.make_proxy(applies[p.forward_mode], p, one_at_a_time=supernet.switches_ops, mesh=mesh)
            for n, p in chosen.items()
        },
        data.x_train[order],
        data.y_train[order],
        jax.random.key(settings.seed),
        chunk=settings.batch_size,
        images=images,
    )
    where = f"{network.name}:{network.variant} proxy network{family.proxy_note}"
    return BuiltEvaluator(
        evaluate,
        tuple(names),
        f"{', '.join(names)} on the {where}, {max(images.values())} {data.name} images",
    )


def _training_evaluator(spec: str, space: SearchSpace, settings: EvaluatorSettings) -> BuiltEvaluator:
    from nasx import data as datasets
    from nasx.evaluators.accuracy import TrainingEvaluator
    from nasx.supernet import build, functional

    steps = spec.partition(":")[2]
    if not steps.isdigit() or int(steps) < 1:
        raise UnknownEvaluatorError(
            f'evaluator "{spec}": give the training steps per architecture, e.g. train:200'
        )
    family = search_spaces.family(space.name)
    probe = proxy_network(family, 10, settings.width_mult)
    data = datasets.load(settings.data, size=probe.resolution, seed=settings.seed)
    network = proxy_network(family, data.num_classes, settings.width_mult)
    _, params, apply = functional(build(family.supernet(), network, seed=settings.seed))
    evaluate = TrainingEvaluator(network, apply, params, data, steps=int(steps), seed=settings.seed)
    return BuiltEvaluator(
        evaluate,
        ("acc",),
        f"validation-split accuracy after {steps} steps of training on {data.name}, each arch alone on the "
        f"{network.name}:{network.variant} proxy network",
    )


def _supernet_evaluator(path: str, space: SearchSpace, settings: EvaluatorSettings) -> BuiltEvaluator:
    from nasx.devices import ARCHS, local_mesh
    from nasx.evaluators.accuracy import AccuracyEvaluator
    from nasx.jobs.trained import load_supernet
    from nasx.supernet import functional

    network, supernet, params, meta, data = load_supernet(path, space.name)
    _, _, apply = functional(supernet)
    return BuiltEvaluator(
        AccuracyEvaluator(network, apply, params, data, chunk=settings.batch_size, mesh=local_mesh(ARCHS)),
        ("acc",),
        f"validation-split accuracy ({len(data.x_val)} images held out from the training images) on "
        f"{data.name} with weights inherited from {meta['folder']} (step {meta['step']}), BN re-calibrated",
    )
