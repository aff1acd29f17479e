"""Quantized export (packed integer weights, per-channel scales) and fine-tuning before export.

One tiny MobileNet supernet with bits choices 4, 8, 16 and 32 (one stage, 8 px) is built, not
trained: the checks are of storage and arithmetic, which random weights exercise as well. Its
mixed-precision architecture has layers at every width, a 4-bit depthwise 5x5 kernel and 4-bit
squeeze-excitation, an 8-bit head with feature mix, and a float32 block.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nasx.data import load
from nasx.evaluate import calibrate, calibration_images
from nasx.export.finetune import FinetuneStepsError, finetune
from nasx.export.load import load_model
from nasx.export.packing import CodeRangeError, PackedBitsError, pack_codes, packed_nbytes, unpack_codes
from nasx.export.quantized import PACKED_LAYOUT, UNIT_VAR, is_quantized, load_packed
from nasx.export.standalone import export_standalone
from nasx.nn.layers import BatchNorm
from nasx.supernet import functional
from search_spaces.mobilenet.spec import MobileNetSpace, Skeleton, Stage
from search_spaces.mobilenet.supernet import MobileNetSupernet

SPACE = MobileNetSpace(
    Skeleton(
        name="tiny-quant",
        stem_width=8,
        first_width=8,
        stages=(Stage(8, 1, "relu", (1, 2)),),
        head_width=16,
        stem_stride=1,
        mix_width=16,
        num_classes=10,
        resolutions=(8,),
        default_resolution=8,
        kernels=(3, 5),
        expands=(3, 4),
    ),
    bits=(4, 8, 16, 32),
)
ARCH = {
    "resolution": 8,
    "bits.stem": 16,
    "s1.depth": 2,
    "s1.se": True,
    "s1.b1.kernel": 5,
    "s1.b1.expand": 4,
    "s1.b1.bits": 4,
    "s1.b2.kernel": 3,
    "s1.b2.expand": 3,
    "s1.b2.bits": 32,
    "bits.head": 8,
}

PLAIN_JAX = """
import sys
for name in ("nasx", "search_spaces", "solvers", "flax", "orbax"):
    sys.modules[name] = None  # the artifact needs plain JAX only
import jax, numpy as np
folder, images, out = sys.argv[1:4]
exported = jax.export.deserialize(bytearray(open(folder + "/model.stablehlo", "rb").read()))
npz = np.load(folder + "/weights.npz")
np.save(out, exported.call([npz[f"w{i}"] for i in range(len(npz.files))], np.load(images)))
"""


# --- bit-packing ------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", range(1, 17))
def test_pack_unpack_round_trips_exactly(bits: int) -> None:
    rng = np.random.default_rng(bits)
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    unpack = jax.jit(unpack_codes, static_argnums=(1, 2, 3))
    for n in (1, 3, 7, 13, 101):
        codes = rng.integers(low, high + 1, n)
        codes[0], codes[-1] = low, high
        packed = pack_codes(codes, bits)
        assert packed.dtype == np.uint8 and len(packed) == packed_nbytes(n, bits) == -(-n * bits // 8)
        np.testing.assert_array_equal(unpack_codes(packed, n, bits), codes)
        if n in (13, 101):  # the same code under jit (one compile per size)
            np.testing.assert_array_equal(np.asarray(unpack(jnp.asarray(packed), n, bits, jnp)), codes)


def test_packed_layout_is_the_usual_one_at_4_8_and_16_bits() -> None:
    codes = np.array([-3, 1, 7, -7, 2])
    assert pack_codes(codes, 4).tolist() == [0x1D, 0x97, 0x02]  # low nibble first
    np.testing.assert_array_equal(pack_codes(codes, 8).view(np.int8), codes)
    np.testing.assert_array_equal(pack_codes(codes, 16).view("<i2"), codes)


def test_packing_rejects_bad_widths_and_codes() -> None:
    with pytest.raises(PackedBitsError, match="bits 17"):
        pack_codes(np.zeros(3, np.int32), 17)
    with pytest.raises(CodeRangeError, match="code 8 at index 1 does not fit 4 bits; expected -8 to 7"):
        pack_codes(np.array([0, 8]), 4)
    with pytest.raises(CodeRangeError, match="not an integer"):
        pack_codes(np.array([0.5]), 4)


# --- quantized export -------------------------------------------------------------------------
def _extract(supernet: MobileNetSupernet, **changes) -> nnx.Module:
    """The network of ARCH with `changes`, with unit batch-norm statistics (no calibration)."""
    stats = {
        bn.key: (np.zeros(bn.num_features, np.float32), np.ones(bn.num_features, np.float32))
        for _, bn in nnx.iter_graph(supernet)
        if isinstance(bn, BatchNorm)
    }
    return supernet.extract(SPACE.validate({**ARCH, **changes}), stats)


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    """The supernet, the data, the fake-quantized supernet's test logits and the exported folder."""
    supernet = MobileNetSupernet(SPACE, rngs=nnx.Rngs(0), zero_last_gamma=False)  # every block acts
    _, params, apply = functional(supernet)
    data = load("digits", size=8, seed=0)
    arch = SPACE.validate(ARCH)
    encoded = jnp.asarray(SPACE.encode(arch))

    @jax.jit
    def reference(params, x_calib, x):  # re-calibrated exactly as export_standalone does
        return apply(params, encoded, x, calibrate(apply, params, encoded, x_calib))[0]

    logits = np.asarray(reference(params, jnp.asarray(calibration_images(data)), jnp.asarray(data.x_test)))
    folder = tmp_path_factory.mktemp("quantized") / "model"
    metrics = export_standalone(supernet, params, SPACE, arch, data, folder)
    return {
        "supernet": supernet,
        "params": params,
        "data": data,
        "arch": arch,
        "logits": logits,
        "folder": folder,
        "metrics": metrics,
    }


def test_packed_weights_file_is_the_analytic_weight_bytes(rig) -> None:
    folder, costs = rig["folder"], json.loads((rig["folder"] / "costs.json").read_text())
    assert rig["metrics"]["weights_format"] == "packed" and (folder / PACKED_LAYOUT).exists()
    layout = json.loads((folder / PACKED_LAYOUT).read_text())
    assert {e["bits"] for e in layout["leaves"] if e["kind"] == "codes"} == {4, 8, 16}
    with np.load(folder / "weights.npz") as npz:
        assert npz.files == ["w0"] and npz["w0"].dtype == np.uint8
        assert npz["w0"].nbytes == costs["weight_bytes"]  # codes, scales, biases, float weights
    size = (folder / "weights.npz").stat().st_size
    assert size == rig["metrics"]["weights_file_bytes"]
    # the npz framing of one array (~250 bytes) is all the file adds; this model is 8.5 kB
    assert costs["weight_bytes"] <= size <= 1.05 * costs["weight_bytes"]


def test_loaded_quantized_model_computes_the_fake_quantized_supernet(rig) -> None:
    data, reference = rig["data"], rig["logits"]
    logits = load_model(rig["folder"])(data.x_test)
    scale = float(np.max(np.abs(reference)))
    assert scale > 1e-2
    # float32 tolerance although the roundings differ by a few ulps per layer: the supernet's
    # straight-through ``w + (q - w)`` against ``codes * scale``, its batch norm against the folded
    # ``x * a + b`` (measured: 2e-7 at a logit scale of 0.28)
    np.testing.assert_allclose(logits, reference, rtol=1e-5, atol=1e-5 * scale)
    assert np.mean(logits.argmax(-1) == data.y_test) == rig["metrics"]["test_accuracy"]


def test_dequantized_weights_are_codes_times_channel_scales(rig) -> None:
    weights = load_packed(rig["folder"])
    layout = json.loads((rig["folder"] / PACKED_LAYOUT).read_text())
    for e in layout["leaves"]:
        w = weights[e["path"]]
        assert list(w.shape) == e["shape"] and w.dtype == np.float32
        if e["kind"] == "codes":
            levels = 2 ** (e["bits"] - 1) - 1
            amax = np.max(np.abs(w), axis=tuple(range(w.ndim - 1)))
            codes = w / np.where(amax > 0, amax / levels, 1.0)
            np.testing.assert_allclose(codes, np.round(codes), atol=1e-3)  # integers at most `levels`
            assert np.max(np.abs(np.round(codes))) == levels
        elif e["kind"] == "unit_var":
            assert np.all(w + np.float32(1e-5) == np.float32(1.0)) and w[0] == UNIT_VAR
    net = rig["supernet"]
    assert is_quantized(_extract(net, **{"s1.b1.bits": 32}))  # stem and head are still below 32 bits
    assert not is_quantized(_extract(net, **{"bits.stem": 32, "s1.b1.bits": 32, "bits.head": 32}))


def test_plain_jax_runs_the_packed_model(rig, tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", rig["data"].x_test)
    subprocess.run(
        [
            sys.executable,
            "-c",
            PLAIN_JAX,
            str(rig["folder"]),
            str(tmp_path / "x.npy"),
            str(tmp_path / "y.npy"),
        ],
        check=True,
        cwd=tmp_path,
        capture_output=True,
    )
    plain = np.load(tmp_path / "y.npy")
    np.testing.assert_array_equal(plain, load_model(rig["folder"])(rig["data"].x_test))


# --- fine-tuning before export ----------------------------------------------------------------
def test_finetuned_export_records_the_accuracy_of_the_finetuned_model(rig, tmp_path: Path) -> None:
    folder = tmp_path / "tuned"
    metrics = export_standalone(
        rig["supernet"], rig["params"], SPACE, rig["arch"], rig["data"], folder, finetune_steps=3, seed=1
    )
    assert metrics["finetune_steps"] == 3 and metrics["finetune_seed"] == 1
    assert metrics["test_accuracy_before_finetune"] == rig["metrics"]["test_accuracy"]
    assert json.loads((folder / "metrics.json").read_text())["test_accuracy"] == metrics["test_accuracy"]
    tuned, plain = load_packed(folder), load_packed(rig["folder"])
    changed = [p for p in tuned if not np.array_equal(tuned[p], plain[p])]
    assert any(p.endswith("kernel") for p in changed) and any("bn/" in p for p in changed)
    logits = load_model(folder)(rig["data"].x_test)
    assert np.mean(logits.argmax(-1) == rig["data"].y_test) == metrics["test_accuracy"]


def test_finetune_rejects_negative_steps(rig, tmp_path: Path) -> None:
    model = _extract(rig["supernet"])
    with pytest.raises(FinetuneStepsError, match="fine-tuning steps -1"):
        finetune(model, rig["data"], -1)
    with pytest.raises(FinetuneStepsError, match="fine-tuning steps -2"):  # before any work
        export_standalone(
            rig["supernet"], rig["params"], SPACE, rig["arch"], rig["data"], tmp_path, finetune_steps=-2
        )
