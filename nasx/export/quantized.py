"""Quantized export: a model with layers below 32 bits, stored as packed integer codes and scales.

A layer at ``bits < 32`` is stored as the codes and per-output-channel float32 scales of
`nasx.nn.quant.quantize` (what the fake-quantized supernet computes with), the codes bit-packed
densely (`nasx.export.packing`). Two files:

* ``weights.npz`` (`WEIGHTS`, the same name and calling convention as a float model's): one
  uint8 array ``w0``, first every float32 value (little-endian: the scales, biases, float32
  layers' weights and batch norms' scales and shifts), then the packed codes of every quantized
  tensor, each starting on a byte. The payload is the analytic ``Costs.weight_bytes`` exactly
  (``ceil(n * bits / 8)`` bytes of codes plus 4 per scale, bias and batch-norm parameter); the
  file adds the npz framing of its one array, about 250 bytes, so that even a model of a few
  kilobytes stays within a few percent of its analytic size.
* ``weights.packed.json`` (`PACKED_LAYOUT`): the layout (per state leaf its path, shape, kind and
  offsets), which the architecture determines, as it does ``arch.json``.

Batch norm is stored folded, ``a = gamma / sqrt(var + eps)`` and ``b = beta - mean * a``: the
two parameters per channel the cost model counts. Its running statistics are not stored; the
loaded layer has mean 0 and a variance ``v`` with ``v + eps == 1`` exactly in float32, so it
computes ``x * a + b``.

The serialized forward pass (``model.stablehlo``) takes ``[w0]`` and dequantizes inside, on
every call (a few integer operations per weight, small next to the convolutions), so plain JAX
needs only the packed file and no float copy of the weights exists on disk. The layers then run
their float path on ``codes * scale``, which is the forward value of the supernet's fake
quantization.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nasx.errors import NasxError
from nasx.export.packing import pack_codes, packed_nbytes, unpack_codes
from nasx.nn.layers import EPS, BatchNorm, Conv, Dense, is_float
from nasx.nn.quant import quantize
from nasx.outputs import atomic, write_json

__all__ = [
    "WEIGHTS",
    "PACKED_LAYOUT",
    "PackedModelError",
    "PackedModel",
    "is_quantized",
    "pack_model",
    "dequantize_leaves",
    "write_weights",
    "load_packed",
]

WEIGHTS = "weights.npz"
PACKED_LAYOUT = "weights.packed.json"
FORMAT = "nasx.packed/1"
UNIT_VAR = np.float32(1.0) - np.float32(EPS)
"""A variance whose ``var + eps`` is exactly 1.0 in float32: a folded batch norm's stored variance."""


class PackedModelError(NasxError, ValueError):
    """A model or a packed-weights folder that cannot be packed or read (the message names it)."""


@dataclass(frozen=True)
class PackedModel:
    """A model as packed weights and the forward pass that dequantizes them.

    Attributes:
      forward: ``forward([w0], images) -> logits``, pure and jittable.
      weights: ``[w0]``, the uint8 buffer (float32 values, then packed codes)
      layout: JSON-able layout of the state leaves (`FORMAT`).
    """

    forward: Callable[[list[jax.Array], jax.Array], jax.Array]
    weights: list[np.ndarray]
    layout: dict


def _layers(model: nnx.Module) -> list[tuple[tuple, nnx.Module]]:
    return [(tuple(p), n) for p, n in nnx.iter_graph(model) if isinstance(n, Conv | Dense | BatchNorm)]


def is_quantized(model: nnx.Module) -> bool:
    """Whether any conv or dense layer of `model` is below 32 bits."""
    return any(not isinstance(n, BatchNorm) and not is_float(n.bits) for _, n in _layers(model))


def _fold_batchnorm(bn: BatchNorm) -> None:
    """``scale, bias <- a, b`` of ``x * a + b``; mean 0 and `UNIT_VAR` (computed in float64)."""
    if bn.mean is None:
        raise PackedModelError(f'batch norm "{bn.key}" has no statistics; export an extracted model')
    var, mean = np.asarray(bn.var[...], np.float64), np.asarray(bn.mean[...], np.float64)
    a = np.asarray(bn.scale[...], np.float64) / np.sqrt(var + np.float64(np.float32(EPS)))
    shift = np.asarray(bn.bias[...], np.float64) - mean * a
    # host arrays put on the device: eager jnp ops would compile one program per shape
    bn.scale[...] = jnp.asarray(a.astype(np.float32))
    bn.bias[...] = jnp.asarray(shift.astype(np.float32))
    bn.mean[...] = jnp.asarray(np.zeros(bn.num_features, np.float32))
    bn.var[...] = jnp.asarray(np.full(bn.num_features, UNIT_VAR, np.float32))


def _prepare(model: nnx.Module) -> tuple[nnx.Module, dict[tuple, int], set[tuple]]:
    """A copy of `model` to serialize (batch norms folded, every layer on the float path), the
    bits of each quantized kernel by state path, and the paths of the batch-norm statistics."""
    copy = nnx.clone(model)
    kernel_bits: dict[tuple, int] = {}
    stats: set[tuple] = set()
    for path, node in _layers(copy):
        if isinstance(node, BatchNorm):
            _fold_batchnorm(node)
            stats |= {(*path, "mean"), (*path, "var")}
        elif not is_float(node.bits):
            kernel_bits[(*path, "kernel")] = int(node.bits)
            node.bits = 32  # it will compute with the dequantized weights
    return copy, kernel_bits, stats


def _path(keypath: tuple) -> tuple:
    """``(DictKey('head'), ..., GetAttrKey('value'))`` -> ``('head', ...)``: the module path."""
    return tuple(k.key for k in keypath if isinstance(k, jax.tree_util.DictKey))


def pack_model(model: nnx.Module) -> PackedModel:
    """`model` (an extracted network with stored batch-norm statistics) as packed weights.

    The layer bits are the model's (`Supernet.extract` sets them from the architecture). `model`
    itself is not changed.

    Raises:
      PackedModelError: a batch norm without statistics, or a state leaf that is not float32.
    """
    prepared, kernel_bits, stats = _prepare(model)
    graphdef, state = nnx.split(prepared)
    keyed, treedef = jax.tree_util.tree_flatten_with_path(state)
    paths, values = [_path(k) for k, _ in keyed], [np.asarray(v) for _, v in keyed]
    for path, w in zip(paths, values, strict=True):
        if w.dtype != np.float32:
            name = "/".join(map(str, path))
            raise PackedModelError(f'state leaf "{name}" is {w.dtype}; packed export stores float32 leaves')
    quantized = [i for i, p in enumerate(paths) if p in kernel_bits]
    bits = [kernel_bits[paths[i]] for i in quantized]
    # one compiled program for every tensor (eager ops would compile once per shape)
    rounded = jax.jit(lambda ws: [quantize(w, b) for w, b in zip(ws, bits, strict=True)])(
        [values[i] for i in quantized]
    )
    by_leaf = dict(zip(quantized, rounded, strict=True))
    floats: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    n_floats = n_codes = 0
    leaves = []
    for i, (path, w) in enumerate(zip(paths, values, strict=True)):
        entry: dict = {"path": "/".join(map(str, path)), "shape": list(w.shape)}
        if i in by_leaf:
            q, scale = by_leaf[i]
            codes.append(pack_codes(np.asarray(q).astype(np.int32), kernel_bits[path]))
            floats.append(np.asarray(scale, np.float32).reshape(-1))
            entry |= {"kind": "codes", "bits": kernel_bits[path], "offset": n_codes, "scale_offset": n_floats}
            n_codes, n_floats = n_codes + len(codes[-1]), n_floats + len(floats[-1])
        elif path in stats:
            entry["kind"] = "zeros" if path[-1] == "mean" else "unit_var"
        else:
            floats.append(w.reshape(-1))
            entry |= {"kind": "float32", "offset": n_floats}
            n_floats += w.size
        leaves.append(entry)
    as_bytes = [np.concatenate(floats).astype("<f4").view(np.uint8)] if floats else []
    weights = [np.concatenate([*as_bytes, *codes, np.zeros(0, np.uint8)])]
    layout = {"format": FORMAT, "floats": n_floats, "code_bytes": n_codes, "leaves": leaves}

    def forward(weights: list[jax.Array], x: jax.Array) -> jax.Array:
        state = jax.tree.unflatten(treedef, dequantize_leaves(weights, layout, jnp))
        return nnx.merge(graphdef, state)(x)

    return PackedModel(forward, weights, layout)


def dequantize_leaves(weights: list, layout: dict, xp: ModuleType = np) -> list:
    """The float32 state leaves (in order) from ``[w0]``; `xp` is ``numpy`` or ``jax.numpy``."""
    (buffer,) = weights
    n_floats = layout["floats"]
    if xp is np:
        values = np.asarray(buffer[: 4 * n_floats]).view("<f4")
    else:  # the bytes of little-endian float32s, as on every platform jax.export targets
        values = jax.lax.bitcast_convert_type(buffer[: 4 * n_floats].reshape(n_floats, 4), jnp.float32)
    packed = buffer[4 * n_floats :]
    out = []
    for e in layout["leaves"]:
        shape = tuple(e["shape"])
        n = math.prod(shape)
        if e["kind"] == "float32":
            out.append(values[e["offset"] : e["offset"] + n].reshape(shape))
        elif e["kind"] == "codes":
            start = e["offset"]
            q = unpack_codes(packed[start : start + packed_nbytes(n, e["bits"])], n, e["bits"], xp)
            channels = shape[-1]
            scale = values[e["scale_offset"] : e["scale_offset"] + channels]
            out.append(q.astype(xp.float32).reshape(shape) * scale.reshape((1,) * (len(shape) - 1) + (-1,)))
        elif e["kind"] == "zeros":
            out.append(xp.zeros(shape, xp.float32))
        else:
            out.append(xp.full(shape, UNIT_VAR, dtype=xp.float32))
    return out


def write_weights(folder: Path, weights: list[np.ndarray], layout: dict | None) -> int:
    """Write `WEIGHTS` (arrays ``w0, w1, ...``) and, for packed weights, `PACKED_LAYOUT` into `folder`.

    Returns the size of the weights file in bytes.
    """
    with atomic(folder / WEIGHTS) as f:  # whole or not at all: a kill leaves the previous file
        np.savez(f, **{f"w{i}": w for i, w in enumerate(weights)})
    if layout is None:
        (folder / PACKED_LAYOUT).unlink(missing_ok=True)  # left by an earlier export
    else:
        write_json(folder / PACKED_LAYOUT, layout, indent=None)
    return (folder / WEIGHTS).stat().st_size


def load_packed(folder: str | Path) -> dict[str, np.ndarray]:
    """The dequantized float32 weights of a packed export, by state path (e.g. ``head/conv/conv/kernel``).

    Batch norms are folded (see the module docstring).
    """
    folder = Path(folder).expanduser()
    try:
        layout = json.loads((folder / PACKED_LAYOUT).read_text())
        with np.load(folder / WEIGHTS) as npz:
            weights = [npz["w0"]]
    except (OSError, KeyError, ValueError) as e:
        raise PackedModelError(
            f'"{folder}" holds no readable packed weights ({WEIGHTS} + {PACKED_LAYOUT}): {e}; '
            "give a model folder nasx export wrote for a quantized architecture"
        ) from e
    if layout.get("format") != FORMAT:
        raise PackedModelError(
            f'"{folder / PACKED_LAYOUT}" has format {layout.get("format")!r}; expected {FORMAT!r}'
        )
    leaves = dequantize_leaves(weights, layout, np)
    return {e["path"]: leaf for e, leaf in zip(layout["leaves"], leaves, strict=True)}
