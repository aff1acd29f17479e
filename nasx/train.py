"""Supernet training: one jitted step trains several subnets at once.

Each step draws k architectures (`nasx.sampling`: sandwich, sorted or uniform), runs them with
``jax.vmap`` over the architecture axis through the one compiled supernet, and sums their losses,
so their gradients add up on the shared weights. With distillation the first subnet (the largest)
learns from the labels and the others from its softened predictions (in-place distillation).
SGD with Nesterov momentum, weight decay, label smoothing and a warm-up + cosine schedule;
random-crop (and, where valid, flip) augmentation inside the step. `nasx.fit` trains one network
from scratch with the same recipe.

Everything a step uses (batch, architectures, augmentation key) is a pure function of the seed
and the step number, so a run resumed from its last checkpoint continues exactly as an
uninterrupted one would.

References:
  Yu et al., "BigNAS: Scaling Up Neural Architecture Search with Big Single-Stage Models",
  ECCV 2020 (sandwich rule, in-place distillation).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh

from nasx.checkpoint import Checkpointer
from nasx.data import Dataset, augment, batch_indices
from nasx.devices import memory_available, replicate, shard_batch
from nasx.errors import NonFiniteLossError, RunFolderError, StepTooLargeError
from nasx.outputs import write_text
from nasx.sampling import RULES, draw, extreme
from nasx.space import SearchSpace
from nasx.supernet import Apply, Supernet, functional

__all__ = [
    "TrainConfig",
    "TrainResult",
    "cosine_schedule",
    "optimizer",
    "smoothed_cross_entropy",
    "trim_metrics",
    "run_steps",
    "make_step",
    "compile_checked",
    "train",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Supernet training settings (defaults suit a 32-px proxy dataset on a CPU)."""

    steps: int = 300
    batch_size: int = 64
    archs_per_step: int = 4
    sampling: str = "sandwich"
    distill: bool | None = None
    """In-place distillation from the first (largest) subnet; default: on unless uniform."""
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 4e-5
    label_smoothing: float = 0.0
    """Of the labels the first (largest) subnet learns from; the others learn its predictions."""
    warmup_steps: int = 10
    seed: int = 0
    checkpoint_every: int = 100
    log_every: int = 10

    def __post_init__(self) -> None:
        if self.sampling not in RULES:
            raise ValueError(f'sampling "{self.sampling}": expected one of {", ".join(RULES)}')
        if self.archs_per_step < (2 if self.sampling != "uniform" else 1):
            raise ValueError(f"archs_per_step must be >= 2 for {self.sampling} sampling")

    @property
    def distills(self) -> bool:
        return self.sampling != "uniform" if self.distill is None else self.distill


@dataclass
class TrainResult:
    params: nnx.State
    step: int
    history: list[dict[str, float]] = field(default_factory=list)


def cosine_schedule(peak: float, steps: int, warmup_steps: int):
    """Linear warm-up to `peak`, then cosine decay to 0 at `steps` (explicit casts: optax's
    own schedules mix Python floats with int32 counts, which strict dtype promotion rejects)."""
    warmup = float(max(1, min(warmup_steps, steps - 1)))
    decay = float(max(1.0, steps - warmup))

    def schedule(count: jax.Array) -> jax.Array:
        step = jnp.asarray(count, jnp.float32)
        progress = jnp.clip((step - warmup) / decay, 0.0, 1.0)
        cosine = 0.5 * peak * (1.0 + jnp.cos(jnp.pi * progress))
        return jnp.where(step < warmup, peak * step / warmup, cosine)

    return schedule


def optimizer(config) -> optax.GradientTransformation:
    """SGD with Nesterov momentum, weight decay (added to the gradient, as PyTorch's SGD) and the
    warm-up + cosine schedule of `config` (a `TrainConfig` or `nasx.fit.FitConfig`)."""
    return optax.chain(
        optax.add_decayed_weights(config.weight_decay),
        optax.sgd(
            cosine_schedule(config.learning_rate, config.steps, config.warmup_steps),
            config.momentum,
            nesterov=True,
        ),
    )


def smoothed_cross_entropy(logits: jax.Array, labels: jax.Array, smoothing: float = 0.0) -> jax.Array:
    """Mean softmax cross-entropy against one-hot `labels` mixed with `smoothing` of the uniform."""
    targets = jax.nn.one_hot(labels, logits.shape[-1])
    if smoothing:
        targets = optax.smooth_labels(targets, smoothing)
    return optax.softmax_cross_entropy(logits, targets).mean()


def make_step(
    apply: Apply,
    tx: optax.GradientTransformation,
    *,
    flip: bool,
    distill: bool,
    label_smoothing: float = 0.0,
) -> Callable:
    """``step(params, opt_state, archs, x, y, key) -> (params, opt_state, metrics)``, jitted.

    ``archs`` is an int32 batch of encoded architectures, teacher first.
    """

    def loss_fn(params: nnx.State, archs: jax.Array, x: jax.Array, y: jax.Array) -> tuple[jax.Array, dict]:
        logits = jax.vmap(lambda a: apply(params, a, x)[0])(archs)  # (k, batch, classes)
        ce = jax.vmap(lambda lg: smoothed_cross_entropy(lg, y, label_smoothing))(logits)
        if distill:
            soft = jax.lax.stop_gradient(jax.nn.softmax(logits[0]))
            kd = jax.vmap(lambda lg: optax.softmax_cross_entropy(lg, soft).mean())(logits[1:])
            loss = ce[0] + jnp.sum(kd)
        else:
            loss = jnp.sum(ce)
        acc = jnp.mean(jnp.argmax(logits, axis=-1) == y[None, :], axis=1)
        return loss, {
            "loss": loss,
            "ce_first": ce[0],
            "ce_last": ce[-1],
            "acc_first": acc[0],
            "acc_last": acc[-1],
        }

    @jax.jit
    def step(params, opt_state, archs, x, y, key):
        x = augment(key, x, flip=flip)
        (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, archs, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, metrics

    return step


def compile_checked(step: Callable, args: tuple, *, shrink: str) -> Callable:
    """`step` (jitted) compiled for `args`, refused before it runs if XLA's account of its memory
    (arguments, outputs, temporaries) exceeds what the device has free (`memory_available`;
    emulated CPU devices share the host's memory, so their needs add up).

    Raises:
      StepTooLargeError: naming both amounts and `shrink`, what to lower.
    """
    compiled = step.lower(*args).compile()
    try:
        m = compiled.memory_analysis()
    except Exception:  # not every backend reports
        m = None
    if m is None:
        return compiled
    need = m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes
    devices = {d for leaf in jax.tree.leaves(args) if isinstance(leaf, jax.Array) for d in leaf.devices()}
    device = min(devices, key=lambda d: d.id) if devices else jax.devices()[0]
    if device.platform == "cpu":
        need *= len(devices) or 1
    free = memory_available(device)
    if free is not None and need > free:
        raise StepTooLargeError(
            f"the train step needs {need / 2**30:.1f} GiB of memory and {device.platform} has "
            f"{free / 2**30:.1f} GiB free; lower {shrink}"
        )
    return compiled


def _metrics_path(out_dir: Path) -> Path:
    return out_dir / "metrics.jsonl"


def trim_metrics(path: Path, last_step: int) -> list[dict]:
    """Keep the lines of the metrics file `path` up to `last_step` (lines past the checkpoint a
    run resumes from were not kept); a line cut by a kill is dropped."""
    if not path.exists():
        return []
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a kill
            continue
        if isinstance(record, dict) and record.get("step", 0) <= last_step:
            kept.append(record)
    write_text(path, "".join(json.dumps(r) + "\n" for r in kept))  # whole, or the old one after a kill
    return kept


def run_steps(
    state: dict[str, Any],
    advance: Callable[[dict[str, Any], int], tuple[dict[str, Any], dict[str, float]]],
    config,
    *,
    meta: dict[str, Any] | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """The training loop both trainers share: resume, steps, metrics, checkpoints.

    ``advance(state, step) -> (state, record)`` runs optimizer step `step` (from 0) on the pytree
    `state`; ``record["loss"]`` is checked for NaN and infinity. Every ``config.log_every`` steps a
    record goes to ``metrics.jsonl`` and every ``config.checkpoint_every`` steps `state` to an
    Orbax checkpoint with `meta` and the config, both in `out_dir` (if given). With `resume` the
    run continues from the folder's last checkpoint; a run of another meta or config is refused.

    Returns the final state and the logged records (those of a resumed-from run included).

    Raises:
      RunFolderError: `out_dir` holds a checkpoint and `resume` is False, or one of another run.
      NonFiniteLossError: the loss became NaN or infinite (the checkpoints written so far stay).
    """
    run_meta = json.loads(json.dumps({**(meta or {}), "config": asdict(config)}))  # as stored
    start, history, ckpt, metrics_file = 0, [], None, None
    if out_dir is not None:
        out_dir = Path(out_dir).expanduser().resolve()
        out_dir.mkdir(parents=True, exist_ok=True)
        ckpt = Checkpointer(out_dir / "checkpoints")
        latest = ckpt.latest_step()
        if latest is not None and not resume:
            ckpt.close()
            raise RunFolderError(
                f'"{out_dir}" already holds a training run (step {latest}); add --resume or use another --out'
            )
        if latest is not None:
            saved = ckpt.meta()  # the newest intact step's (a damaged latest one is named and skipped)
            if saved != run_meta:
                ckpt.close()
                differing = sorted(k for k in set(saved) | set(run_meta) if saved.get(k) != run_meta.get(k))
                raise RunFolderError(
                    f'"{out_dir}" holds a different run (differs in: {", ".join(differing)}); use another --out'
                )
            start, state, _ = ckpt.restore(state)
            history = trim_metrics(_metrics_path(out_dir), start)
            log.info("resumed from step %d", start)
        elif _metrics_path(out_dir).exists():
            _metrics_path(out_dir).unlink()
        metrics_file = _metrics_path(out_dir).open("a")
    try:
        for step in range(start, config.steps):
            state, record = advance(state, step)
            record = {"step": step + 1, **record}
            if not np.isfinite(record["loss"]):
                raise NonFiniteLossError(
                    f"loss became {record['loss']} at step {step + 1} (learning rate {config.learning_rate}); "
                    "lower --lr or resume from the last checkpoint"
                )
            last = step + 1 == config.steps
            if metrics_file is not None and ((step + 1) % config.log_every == 0 or last):
                metrics_file.write(json.dumps(record) + "\n")
                metrics_file.flush()
                history.append(record)
            if ckpt is not None and ((step + 1) % config.checkpoint_every == 0 or last):
                ckpt.save(step + 1, state, run_meta)
            if on_step is not None:
                on_step(step + 1, record)
    finally:
        if metrics_file is not None:
            metrics_file.close()
        if ckpt is not None:
            ckpt.close()
    return state, history


def train(
    supernet: Supernet,
    data: Dataset,
    config: TrainConfig,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    meta: dict[str, Any] | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    mesh: Mesh | None = None,
) -> TrainResult:
    """Train `supernet` on `data`; checkpoint to `out_dir` (if given) and resume from it.

    Args:
      meta: JSON-able description of the run (space, data) stored with every checkpoint; a
        resumed run must match it.
      on_step: called after every step with (step, metrics), e.g. to drive a progress bar.
      mesh: data-parallel over its devices (`nasx.devices.local_mesh`): each step's batch is
        split, weights replicated, gradients all-reduced; the same numbers as one device.

    Raises:
      BatchSplitError: the batch size is not a multiple of the mesh's device count.
      RunFolderError: `out_dir` holds a checkpoint and `resume` is False, or the checkpoint was
        written by a different run (space, data or config).
      NonFiniteLossError: the loss became NaN or infinite (lower the learning rate).
    """
    space: SearchSpace = supernet.space
    # reverse mode only: canonical convolution gradients, repeated layers scanned (compiled once)
    _, params, apply = functional(supernet, canonical_conv_grads=True, scan_stacks=True)
    tx = optimizer(config)
    opt_state = tx.init(params)
    if mesh is not None:
        shard_batch(np.zeros((config.batch_size, 1)), mesh)  # fail now if the batch does not split
        params, opt_state = replicate((params, opt_state), mesh)
    step_fn = make_step(
        apply, tx, flip=data.flip, distill=config.distills, label_smoothing=config.label_smoothing
    )
    extremes = (
        {w: extreme(space, w) for w in ("largest", "smallest")} if config.sampling == "sandwich" else None
    )
    base_key = jax.random.key(config.seed)
    compiled: list[Callable] = []  # the step compiled for the first batch (all have its shapes)

    def advance(state: dict, step: int) -> tuple[dict, dict[str, float]]:
        rng = np.random.default_rng([config.seed, step])
        archs = draw(space, config.sampling, config.archs_per_step, rng, extremes)
        encoded = jnp.asarray(np.stack([space.encode(a) for a in archs]))
        index = batch_indices(len(data.x_train), config.batch_size, config.seed, step)
        x, y = jnp.asarray(data.x_train[index]), jnp.asarray(data.y_train[index])
        if mesh is not None:
            x, y = shard_batch((x, y), mesh)
        args = (state["params"], state["opt_state"], encoded, x, y, jax.random.fold_in(base_key, step))
        if not compiled:
            shrink = (
                f"--batch-size ({config.batch_size}), --archs-per-step ({config.archs_per_step}) "
                "or --image-size"
            )
            compiled.append(compile_checked(step_fn, args, shrink=shrink))
        t0 = time.perf_counter()
        params, opt_state, metrics = compiled[0](*args)
        record = {k: float(v) for k, v in metrics.items()}
        record["images_per_s"] = len(index) * len(archs) / (time.perf_counter() - t0)
        return {"params": params, "opt_state": opt_state}, record

    state, history = run_steps(
        {"params": params, "opt_state": opt_state},
        advance,
        config,
        meta=meta,
        out_dir=out_dir,
        resume=resume,
        on_step=on_step,
    )
    return TrainResult(params=state["params"], step=config.steps, history=history)
