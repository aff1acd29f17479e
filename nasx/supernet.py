"""Supernets: one set of weights that runs every architecture of a space through one compile.

Inside `jit` an architecture is its integer encoding (`SearchSpace.encode`: one option index per
choice, -1 where inactive), a small int32 array. A supernet reads it through an `ArchView` and
turns it into masks (widths, kernels), gates (depth) and selections (cell ops), so a single
compiled function serves every architecture and ``jax.vmap`` runs a batch of them at once.

`Supernet.extract(arch, stats)` slices the weights, outside `jit`, into a standalone nnx model of
exactly that architecture, whose output equals the masked supernet's and whose parameter count
equals the analytic `Costs.params`.

Supernets keep no running batch-norm statistics: shared statistics are wrong for every subnet but
one, so a subnet is re-calibrated (`calibrate`) on a few hundred images before it is evaluated or
extracted.

References:
  Cai et al., "Once-for-All", ICLR 2020; Yu et al., "BigNAS", ECCV 2020; Guo et al., "Single
  Path One-Shot NAS", ECCV 2020.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nasx.errors import NasxError
from nasx.nn.layers import BatchNorm, BatchNormContext, Conv
from nasx.nn.stack import Stack
from nasx.space import Arch, SearchSpace

__all__ = [
    "Supernet",
    "ArchLayout",
    "ArchView",
    "Stats",
    "name_batchnorms",
    "count_params",
    "functional",
    "Apply",
    "build",
    "SupernetTooLargeError",
]

Stats = dict[str, tuple[jax.Array, jax.Array]]
"""Batch-norm statistics of one subnet: layer key -> (mean, var)."""


@runtime_checkable
class Supernet(Protocol):
    """What training, evaluation and export need from a family's supernet (an nnx.Module)."""

    space: SearchSpace
    switches_ops: bool
    """Whether ops are selected by ``lax.switch`` on the encoded choice: then architectures are
    scored one at a time in a ``lax.map`` (only the chosen ops run) rather than under ``vmap``."""

    def __call__(self, x: jax.Array, arch: jax.Array, ctx: BatchNormContext) -> jax.Array:
        """Logits of the subnet `arch` (encoded) on NHWC images `x`."""
        ...

    def extract(self, arch: Arch, stats: Stats) -> nnx.Module:
        """Standalone model of `arch` with its re-calibrated batch-norm `stats`.

        ``model(x)`` uses the stored statistics (inference); ``model(x, BatchNormContext())``
        the batch's (training, fine-tuning).
        """
        ...


@dataclass(frozen=True)
class ArchLayout:
    """Where each choice sits in the encoding, and its numeric option values (static, hashable)."""

    names: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]
    """Per choice, its options as numbers (bools as 0/1, strings by position)."""

    @staticmethod
    @functools.cache
    def of(space: SearchSpace) -> ArchLayout:
        values = []
        for c in space.choices:
            if all(isinstance(o, (int, bool)) for o in c.options):
                values.append(tuple(float(o) for o in c.options))
            else:
                values.append(tuple(float(i) for i in range(len(c.options))))
        return ArchLayout(tuple(c.name for c in space.choices), tuple(values))

    @functools.cached_property
    def position(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}


class ArchView:
    """Reads an encoded architecture inside `jit`: option indices, values, flags.

    A choice the space does not have (e.g. bits when the space has no quantization) reads as
    its default given to `bits`/`value`, as a Python number, so no work is traced for it.
    """

    def __init__(self, space: SearchSpace, arch: jax.Array) -> None:
        self.layout = ArchLayout.of(space)
        self.arch = arch

    def has(self, name: str) -> bool:
        return name in self.layout.position

    def index(self, name: str) -> jax.Array:
        """Option index (int32), -1 where the choice is inactive."""
        return self.arch[self.layout.position[name]]

    def active(self, name: str) -> jax.Array:
        return self.index(name) >= 0

    def value(self, name: str, default: int | None = None) -> jax.Array | int:
        """Numeric value of the chosen option (int32); `default` if the space lacks the choice."""
        if name not in self.layout.position:
            if default is None:
                raise KeyError(f"the space has no choice {name!r}")
            return default
        table = jnp.asarray(self.layout.values[self.layout.position[name]], jnp.float32)
        return table[jnp.maximum(self.index(name), 0)].astype(jnp.int32)

    def flag(self, name: str) -> jax.Array:
        """Whether a boolean choice is True (False where inactive)."""
        return self.value(name) > 0

    def bits(self, name: str) -> jax.Array | int:
        """Bit-width of a layer group: a Python int when the space fixes it (nothing to trace,
        and 32 bits keep the weights unbatched under a vmap over architectures)."""
        position = self.layout.position.get(name)
        if position is not None and len(self.layout.values[position]) == 1:
            return int(self.layout.values[position][0])
        return self.value(name, default=32)


def name_batchnorms(module: nnx.Module) -> None:
    """Give every `BatchNorm` in `module` its path as `key`, the name its statistics go by."""
    for path, node in nnx.iter_graph(module):
        if isinstance(node, BatchNorm):
            node.key = "/".join(str(p) for p in path)


def count_params(module: nnx.Module) -> int:
    """Number of trainable parameters (nnx.Param leaves)."""
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(module, nnx.Param)))


Apply = Callable[[nnx.State, jax.Array, jax.Array, Stats | None], tuple[jax.Array, Stats]]


def functional(
    supernet: Supernet, *, canonical_conv_grads: bool = False, scan_stacks: bool = False
) -> tuple[nnx.GraphDef, nnx.State, Apply]:
    """Split a supernet into (graphdef, params) and a pure ``apply``.

    ``apply(params, arch, x, stats=None) -> (logits, recorded)``: with ``stats=None`` batch norm
    uses the batch's statistics and returns them in ``recorded`` (training, calibration);
    otherwise it uses `stats`. `apply` is a pure function of arrays, ready for ``jax.jit``,
    ``jax.vmap`` over architectures and sharding.

    With ``canonical_conv_grads`` every `nasx.nn.Conv` of the returned graph has
    ``canonical_grads`` set (`supernet` itself is left as it is; the params are the same): on
    XLA:CPU its reverse-mode gradients run 5-10x faster inside switches and loop bodies, and
    forward-mode autodiff (`jax.jvp`) can no longer pass it. For reverse-mode users only
    (`nasx.proxies.Proxy.forward_mode`). With ``scan_stacks`` as well, its `nasx.nn.Stack` s
    scan on CPU too (``Stack.scan_on_cpu``): one compiled layer instead of n, which training
    wants and activation proxies (top-level ReLUs only) do not.
    """
    graphdef, params = nnx.split(supernet)
    if canonical_conv_grads:
        copy = nnx.merge(graphdef, params)  # new modules on the same arrays
        for _, node in nnx.iter_graph(copy):
            if isinstance(node, Conv):
                node.canonical_grads = True
            elif isinstance(node, Stack) and scan_stacks:
                node.scan_on_cpu = True
        graphdef = nnx.split(copy)[0]

    def apply(
        params: nnx.State, arch: jax.Array, x: jax.Array, stats: Stats | None = None
    ) -> tuple[jax.Array, Stats]:
        model = nnx.merge(graphdef, params)
        ctx = BatchNormContext(stats)
        logits = model(x, arch, ctx)
        return logits, ctx.recorded if stats is None else stats

    return graphdef, params, apply


class SupernetTooLargeError(NasxError, ValueError):
    """A supernet would have more parameters than allowed (it would not fit in memory)."""


def build(
    factory: Callable[..., Supernet], space: SearchSpace, *, seed: int = 0, max_params: int = 200_000_000
) -> Supernet:
    """``factory(space, rngs=...)``, after checking its size without allocating it.

    Raises:
      SupernetTooLargeError: naming the parameter count and the limit.
    """
    abstract = nnx.eval_shape(lambda: factory(space, rngs=nnx.Rngs(seed)))
    n = count_params(abstract)
    if n > max_params:
        raise SupernetTooLargeError(
            f"the supernet of {space.name}:{space.variant} would hold {n:,} parameters (limit "
            f"{max_params:,}); choose a smaller proxy space (e.g. a width multiplier or fewer options)"
        )
    return factory(space, rngs=nnx.Rngs(seed))
