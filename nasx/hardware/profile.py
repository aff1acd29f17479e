"""Measuring a latency table with JAX: every distinct block of a space on the current device.

A block (`nasx.costs.Block`: an MBConv block, the stem or the head) is timed as the extracted
network runs it: one program of the same `nasx.nn` modules (conv + batch norm with stored
statistics + activation, which XLA fuses; squeeze-excitation; the residual addition), on the same
batch and input size, weights passed as arguments rather than baked in as constants. Each program
is compiled ahead of time, run `warmup` times, then timed with ``block_until_ready``; its latency
is the median of `repeats` calls.

`profile_blocks` fills a `LatencyTable` in interleaved rounds, saving it atomically as it goes,
and resumes a partly written one. Whole subnets are measured by `nasx.hardware.subnets`.

References:
  Cai, Zhu & Han, "ProxylessNAS", ICLR 2019; Cai et al., "Once-for-All", ICLR 2020 (latency
  lookup tables measured per layer on the target device).
"""

from __future__ import annotations

import functools
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nasx.costs import Block, Layer
from nasx.errors import NasxError
from nasx.hardware.latency import LatencyTable, LatencyTableMismatchError, ProfileSettings, load_table
from nasx.nn.layers import ACTIVATIONS, BatchNorm, Conv, Dense, global_avg_pool, hard_sigmoid
from nasx.space_family import BlockLatencySpace

__all__ = [
    "ProfileClockError",
    "device_kind",
    "compile_program",
    "block_program",
    "time_ms",
    "profile_blocks",
]

Program = tuple[Callable[..., jax.Array], tuple[Any, ...]]
"""A compiled function and the arguments to time it on."""


class ProfileClockError(NasxError, ValueError):
    """A clock that does not measure the device (the CPU clock on an accelerator)."""


@functools.cache
def device_kind() -> str:
    """The kind of the default device; for a CPU with its model name, e.g. ``"cpu (AMD EPYC)"``."""
    device = jax.devices()[0]
    if device.platform != "cpu":
        return str(device.device_kind)
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return f"cpu ({model})" if model else "cpu"


def _act(name: str, x: jax.Array) -> jax.Array:
    return ACTIVATIONS[name](x) if name else x


class _LayerNet(nnx.Module):
    """One `Layer` built from the modules an extracted network uses (same code path, same fusion)."""

    def __init__(self, layer: Layer, *, rngs: nnx.Rngs) -> None:
        self.layer = layer
        if layer.op == "conv":
            self.conv = Conv(
                layer.c_in,
                layer.c_out,
                layer.kernel,
                stride=layer.stride,
                groups=layer.groups,
                use_bias=layer.bias,
                bits=layer.bits,
                rngs=rngs,
            )
            self.bn = BatchNorm(layer.c_out, stats=True) if layer.bn else None
        elif layer.op == "dense":
            self.dense = Dense(layer.c_in, layer.c_out, use_bias=layer.bias, bits=layer.bits, rngs=rngs)
        elif layer.op == "se":
            self.reduce = Dense(layer.c_in, layer.c_out, bits=layer.bits, rngs=rngs)
            self.expand = Dense(layer.c_out, layer.c_in, bits=layer.bits, rngs=rngs)

    def __call__(self, x: jax.Array, skip: jax.Array | None = None) -> jax.Array:
        """The layer on `x`; a residual conv adds `skip`, the input of its block."""
        layer = self.layer
        if layer.op == "conv":
            y = self.conv(x)
            y = _act(layer.act, y if self.bn is None else self.bn(y))
            return y if skip is None else skip + y
        if layer.op == "dense":
            return _act(layer.act, self.dense(x))
        if layer.op == "se":  # as search_spaces' squeeze-excitation: relu/hard-sigmoid or swish/sigmoid
            gate = hard_sigmoid if layer.act == "relu" else jax.nn.sigmoid
            g = gate(self.expand(_act(layer.act, self.reduce(global_avg_pool(x)))))
            return x * g[:, None, None, :]
        return global_avg_pool(x)


class _BlockNet(nnx.Module):
    """A `Block`: its layers one after the other, a residual layer adding the block's input."""

    def __init__(self, block: Block, *, rngs: nnx.Rngs) -> None:
        self.layers = nnx.List([_LayerNet(layer, rngs=rngs) for layer in block])

    def __call__(self, x: jax.Array) -> jax.Array:
        h = x
        for net in self.layers:
            h = net(h, x if net.layer.residual else None)
        return h


def compile_program(module: nnx.Module, inputs: Sequence[jax.Array]) -> Program:
    """``module(*inputs)`` compiled with its weights as arguments (as an exported model runs)."""
    graphdef, state = nnx.split(module)
    leaves, treedef = jax.tree.flatten(state)

    def forward(weights: list[jax.Array], *xs: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, jax.tree.unflatten(treedef, weights))(*xs)

    weights = [jnp.asarray(w) for w in leaves]
    compiled = jax.jit(forward).lower(weights, *inputs).compile()
    return compiled, (weights, *inputs)


def block_program(block: Block, batch: int, *, seed: int = 0) -> Program:
    """`block` compiled on random inputs of `batch` images (weights and inputs from `seed`)."""
    first = block[0]
    shape = (batch, first.c_in) if first.op == "dense" else (batch, first.in_size, first.in_size, first.c_in)
    x = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
    return compile_program(_BlockNet(block, rngs=nnx.Rngs(seed)), [jnp.asarray(x)])


def time_ms(program: Program, *, warmup: int, repeats: int) -> dict[str, list[float]]:
    """Times in ms of `repeats` calls of `program` after `warmup` untimed ones, on both clocks.

    ``"wall"``: `time.perf_counter`; ``"cpu"``: `time.process_time`, every thread of the process,
    not inflated when other processes take the cores (`nasx.hardware.latency.CLOCKS`).
    """
    run, args = program
    for _ in range(warmup):
        jax.block_until_ready(run(*args))
    times: dict[str, list[float]] = {"wall": [], "cpu": []}
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(run(*args))
        times["cpu"].append(1e3 * (time.process_time() - cpu))
        times["wall"].append(1e3 * (time.perf_counter() - wall))
    return times


def profile_blocks(
    space: BlockLatencySpace,
    settings: ProfileSettings,
    path: str | Path,
    *,
    rounds: int = 5,
    seed: int = 0,
    on_entry: Callable[[int, int, Block, float | None], None] | None = None,
) -> LatencyTable:
    """Measure every distinct block of `space` (``space.distinct_blocks``) into the table at `path`.

    Blocks are timed in `rounds` interleaved rounds of ``repeats / rounds`` calls each (after
    `warmup` calls when first compiled), so that a burst of load from other processes is shared
    by all entries rather than inflating a few. The file is rewritten atomically after every
    block's share of a round: a killed profile loses at most the share in progress, and an
    existing table at `path` is resumed from its recorded samples (entries without samples, or
    with `repeats` of them, are complete). `on_entry(done, total, block, ms)` reports progress in
    those shares (first with ``ms=None`` once the work is known).

    Raises:
      LatencyTableMismatchError: the table at `path` was measured with other settings or on
        another device kind.
      ProfileClockError: the CPU clock asked for on an accelerator.
    """
    path = Path(path)
    device = device_kind()
    if settings.clock == "cpu" and jax.devices()[0].platform != "cpu":
        raise ProfileClockError(
            f'clock "cpu" times the host\'s CPU, not the {jax.devices()[0].platform} device; use --clock wall'
        )
    if path.exists():
        table = load_table(path)
        if table.settings != settings or table.device != device:
            raise LatencyTableMismatchError(
                f'cannot resume latency table "{path}": measured for {table.settings} on "{table.device}", '
                f'now {settings} on "{device}"; give another --out or the same settings'
            )
    else:
        table = LatencyTable(settings, device, jax.__version__, {}, path=str(path))
    blocks = space.distinct_blocks(settings.resolution)
    samples = {block: list(values) for block, values in table.samples.items()}
    for block in blocks:
        samples.setdefault(block, [])
    needed = {
        block: 0 if block in table.entries and not samples[block] else settings.repeats - len(samples[block])
        for block in blocks
    }
    share = -(-settings.repeats // rounds)
    done, total = 0, sum(-(-max(n, 0) // share) for n in needed.values())
    if on_entry is not None:
        on_entry(done, total, blocks[0], None)
    entries, programs = dict(table.entries), {}
    for _ in range(rounds):
        for block in blocks:
            n = min(share, needed[block])
            if n <= 0:
                continue
            if block not in programs:
                programs[block] = block_program(block, settings.batch, seed=seed)
                time_ms(programs[block], warmup=settings.warmup, repeats=0)
            samples[block] += time_ms(programs[block], warmup=0, repeats=n)[settings.clock]
            needed[block] -= n
            entries[block] = statistics.median(samples[block])
            table = table.replace(
                entries=dict(entries),
                samples={k: tuple(v) for k, v in samples.items() if v},
                overhead_ms=None,  # new measurements make a fitted overhead stale: calibrate again
                calibration=None,
                validation=None,
            )
            table.save(path)
            done += 1
            if on_entry is not None:
                on_entry(done, total, block, entries[block])
    return table
