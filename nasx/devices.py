"""Every local device at work: populations sharded over devices, training data-parallel.

A population is a batch of encoded architectures. `over_devices` splits it across a 1-D mesh of
devices with ``jax.shard_map`` (the modern form of ``pmap``): each device runs the same compiled,
vmapped supernet on its share, with no communication, and the shares come back in order. A
population whose size the device count does not divide is padded with copies of its last
architecture, and the padding dropped. Each architecture is computed exactly as on one device.

Training is data-parallel (`shard_batch`, `replicate`): the batch is split along its first axis,
weights and optimizer state are replicated, and XLA's SPMD partitioner all-reduces the gradients,
and the batch-norm statistics, so every device normalizes with the whole batch's, as one device
would.

Nothing changes on a machine with one device. Tests emulate 4 CPU devices with
``XLA_FLAGS=--xla_force_host_platform_device_count=4``; GPUs and TPUs need no change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from nasx.errors import NasxError

__all__ = [
    "ARCHS",
    "DATA",
    "local_mesh",
    "over_devices",
    "replicate",
    "shard_batch",
    "BatchSplitError",
    "DeviceCountError",
    "memory_available",
]

ARCHS = "archs"
"""Mesh axis a population of architectures is split along."""
DATA = "data"
"""Mesh axis a training batch is split along."""


class BatchSplitError(NasxError, ValueError):
    """A training batch does not split evenly over the devices."""


class DeviceCountError(NasxError, ValueError):
    """More devices were asked for than this process has."""


def local_mesh(axis: str, devices: Sequence[jax.Device] | int | None = None) -> Mesh:
    """A 1-D mesh named `axis` over `devices` (a list, the first n local devices, or all)."""
    local = jax.local_devices()
    if devices is None:
        devices = local
    elif isinstance(devices, int):
        if not 1 <= devices <= len(local):
            raise DeviceCountError(
                f"{devices} devices asked for: this process has {len(local)} local "
                f"{local[0].platform} device(s); ask for 1 to {len(local)}"
            )
        devices = local[:devices]
    return jax.make_mesh((len(devices),), (axis,), axis_types=(AxisType.Auto,), devices=list(devices))


def replicate(tree: Any, mesh: Mesh) -> Any:
    """`tree` placed whole on every device of `mesh` (weights, optimizer state, images)."""
    return jax.device_put(tree, NamedSharding(mesh, P()))


def shard_batch(tree: Any, mesh: Mesh) -> Any:
    """`tree`'s arrays split along their first axis over `mesh` (a data-parallel batch).

    Raises:
      BatchSplitError: a first axis is not a multiple of the device count.
    """
    n = mesh.devices.size
    for leaf in jax.tree.leaves(tree):
        if leaf.shape[0] % n:
            raise BatchSplitError(
                f"a batch of {leaf.shape[0]} does not split over {n} devices; use a batch size that is a multiple of {n}"
            )
    return jax.device_put(tree, NamedSharding(mesh, P(mesh.axis_names[0])))


def over_devices(
    fn: Callable[..., Any], mesh: Mesh, *, compiler_options: dict | None = None
) -> Callable[..., Any]:
    """``fn(params, archs, *rest)`` with `archs` split over `mesh`'s devices, jitted.

    `fn` maps a batch of architectures ``(n, d)`` to per-architecture outputs (any pytree of
    arrays with leading axis n); `params` and `rest` are replicated. The returned function takes
    any n: it pads to a multiple of the device count and drops the padding.
    """
    axis = mesh.axis_names[0]
    n_devices = mesh.devices.size
    compiled: dict[int, Callable[..., Any]] = {}  # by the number of `rest` arguments

    def sharded(n_rest: int) -> Callable[..., Any]:
        if n_rest not in compiled:
            specs = (P(), P(axis), *([P()] * n_rest))
            # check_vma off: the per-device body takes gradients of replicated weights locally
            body = jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=P(axis), check_vma=False)
            compiled[n_rest] = jax.jit(body, compiler_options=compiler_options)
        return compiled[n_rest]

    def call(params: Any, archs: jax.Array | np.ndarray, *rest: Any) -> Any:
        n = archs.shape[0]
        pad = -n % n_devices
        if pad:
            archs = jnp.concatenate([jnp.asarray(archs), jnp.repeat(jnp.asarray(archs)[-1:], pad, axis=0)])
        # committed to one device (e.g. restored from a checkpoint): replicate (a no-op if done)
        params, rest = replicate((params, rest), mesh)
        out = sharded(len(rest))(params, archs, *rest)
        return jax.tree.map(lambda a: a[:n], out) if pad else out

    return call


def memory_available(device: jax.Device) -> int | None:
    """Bytes a program on `device` can still allocate: the accelerator's free memory
    (``memory_stats``), or on CPU the host's ``MemAvailable`` (Linux); ``None`` if unknown."""
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # not every backend reports
        stats = None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
