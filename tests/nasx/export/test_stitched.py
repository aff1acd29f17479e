"""Stitched families (SN-Net) of the tiny trained supernet: analytic costs equal the costs counted
from the networks that run, least-squares stitches, typed errors, and configurations that load in a
fresh process without nasx and reproduce the accuracy recorded at export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import search_spaces
from nasx.cli import main
from nasx.evaluate import calibration_images
from nasx.export.load import load_family
from nasx.export.stitch_layers import (
    Boundary,
    Configuration,
    Stitch,
    StitchedNetworks,
    StitchPointError,
    boundaries,
    stitch_points,
    used_modules,
)
from nasx.export.stitch_training import SegmentRunner, padded
from nasx.export.stitched import (
    StitchAnchorsError,
    build_stitched,
    export_stitched,
    select_anchors,
    train_stitches,
)
from nasx.jobs.trained import load_supernet
from nasx.nn.layers import BatchNorm, Conv, Dense
from nasx.pareto import pareto_front
from nasx.runlog import RUNLOG_NAME, Evaluation, RunLog
from nasx.space import Arch, SearchSpace
from nasx.supernet import count_params
from search_spaces.resnet.spec import ResNetSpace, Skeleton
from search_spaces.resnet.supernet import ResNetSupernet

PLAIN_JAX = """
import sys
for name in ("nasx", "search_spaces", "solvers", "flax", "orbax"):
    sys.modules[name] = None  # any import of these fails: the artifact needs plain JAX only
import json, jax, numpy as np
folder, images, labels = sys.argv[1:4]
manifest = json.load(open(folder + "/family.json"))
npz = np.load(folder + "/" + manifest["weights"])
weights = [npz[f"w{i}"] for i in range(len(npz.files))]
x, y = np.load(images), np.load(labels)
for member in manifest["members"]:
    path = folder + "/" + member["folder"] + "/model.stablehlo"
    exported = jax.export.deserialize(bytearray(open(path, "rb").read()))
    print(float(np.mean(np.asarray(exported.call(weights, x)).argmax(-1) == y)))
"""

BATCH = 16  # the tiny supernet's batch size: one shape, one compile per segment


def _arch(space: SearchSpace, depth: int, expand: int) -> Arch:
    """Every stage `depth` blocks of kernel 3 (small compiles) and expansion `expand`, no SE."""
    values = {}
    for choice in space.choices:
        parts = choice.name.split(".")
        if choice.name == "resolution":
            values[choice.name] = choice.default
        elif parts[-1] == "depth":
            values[choice.name] = depth
        elif parts[-1] == "se":
            values[choice.name] = False
        elif len(parts) == 3 and int(parts[1][1:]) <= depth:
            values[choice.name] = 3 if parts[2] == "kernel" else expand
    return space.validate(values)


@pytest.fixture(scope="module")
def stitched(tiny_supernet: tuple[Path, dict]) -> SimpleNamespace:
    network, supernet, params, _, data = load_supernet(str(tiny_supernet[0]))
    staged = search_spaces.family(network.name).stages()(network)
    anchors = [_arch(network, 3, 6), _arch(network, 2, 3)]  # given largest first: built smallest first
    net = build_stitched(supernet, params, network, staged, anchors, data, batch_size=BATCH, reverse=True)
    initial = [(np.asarray(s.conv.kernel[...])[0, 0], np.asarray(s.conv.bias[...])) for s in net.stitches]
    history = train_stitches(net, data, 3, batch_size=BATCH)
    return SimpleNamespace(
        network=network, data=data, staged=staged, net=net, initial=initial, history=history
    )


def test_anchors_are_ordered_and_stitched_both_ways_at_every_boundary_of_equal_side(stitched) -> None:
    net, network = stitched.net, stitched.network
    assert [network.costs(a).macs for a in net.archs] == sorted(network.costs(a).macs for a in net.archs)
    # cifar skeleton: sides 32, 32, 16, 8, 8, 4 at boundaries 0..5 -> 1 + 4 + 1 + 4 pairs each way
    sides = [b.cost_side_px for b in net.boundaries[0]]
    assert sides == [32, 32, 16, 8, 8, 4]
    pairs = {
        (p["front_anchor"], p["front_boundary"], p["back_anchor"], p["back_boundary"]) for p in net.points
    }
    expected = {
        (f, i, b, j) for f, b in ((0, 1), (1, 0)) for i in range(6) for j in range(6) if sides[i] == sides[j]
    }
    assert pairs == expected and len(pairs) == 20
    assert [c.is_anchor for c in net.configurations[:2]] == [True, True]
    assert len(net.configurations) == 2 + 20
    assert len(stitched.history) == 3 and all(np.isfinite(stitched.history))


def test_segment_costs_add_up_to_the_space_costs(stitched) -> None:
    for arch in stitched.net.archs:
        parts = stitched.staged.segment_costs(arch)
        total = parts[0]
        for part in parts[1:]:
            total += part
        assert total == stitched.network.costs(arch)


def _counted_macs(modules: list[nnx.Module], side: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """MACs of the convolutions and dense layers the modules actually run, at batch 1."""
    total = [0]
    conv_call, dense_call = Conv.__call__, Dense.__call__

    def conv(self, x, **kwargs):
        y = conv_call(self, x, **kwargs)
        total[0] += self.kernel[...].size * y.shape[1] * y.shape[2]
        return y

    def dense(self, x, **kwargs):
        total[0] += self.kernel[...].size
        return dense_call(self, x, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(Conv, "__call__", conv)
        patch.setattr(Dense, "__call__", dense)

        def run(x: jax.Array) -> jax.Array:
            for module in modules:
                x = module(x)
            return x

        jax.eval_shape(run, jax.ShapeDtypeStruct((1, side, side, 3), jnp.float32))
    return total[0]


def test_configuration_costs_equal_the_costs_counted_from_the_network_that_runs(
    stitched, monkeypatch
) -> None:
    net = stitched.net
    side = stitched.staged.resolution(net.archs[0])  # 32 px: the resolution the cost model prices
    for config in net.configurations:
        modules = used_modules(config, net.anchors, net.stitches)
        costs = net.costs(config)
        assert costs.params == sum(count_params(m) for m in modules), config.name
        assert costs.macs == _counted_macs(modules, side, monkeypatch), config.name
        if config.is_anchor:
            assert costs == stitched.network.costs(net.archs[config.front])


def test_least_squares_init_is_the_numpy_solution_and_beats_identity_and_random(stitched) -> None:
    net, data = stitched.net, stitched.data
    x_lsq = calibration_images(data, 128, seed=1)  # the images build_stitched fits on (seed + 1)
    runner = SegmentRunner(net.anchors, [])  # the compiled segments build_stitched ran, batch by batch

    def activations(anchor: int, boundary: int) -> np.ndarray:
        chunks = [
            runner.boundary_outputs(anchor, jnp.asarray(padded(x_lsq[k : k + BATCH], BATCH)))[boundary]
            for k in range(0, len(x_lsq), BATCH)
        ]
        h = np.concatenate([np.asarray(c) for c in chunks])[: len(x_lsq)]
        return h.astype(np.float64).reshape(-1, h.shape[-1])

    rng = np.random.default_rng(0)
    for s, point in enumerate(net.points):
        x = activations(point["front_anchor"], point["front_boundary"])
        y = activations(point["back_anchor"], point["back_boundary"])
        assert point["lsq_rows"] == len(x)  # every pixel of the 128 images (fewer than max_rows)
        design = np.concatenate([x, np.ones((len(x), 1))], axis=1)
        _, residual, *_ = np.linalg.lstsq(design, y, rcond=None)
        weight, bias = stitched.initial[s]

        def sse(w: np.ndarray, b: np.ndarray) -> float:
            return float(np.sum(np.square(x @ w + b - y)))  # noqa: B023

        # the stitch stores float32 weights; rows are fitted in another order
        assert sse(weight, bias) == pytest.approx(float(residual.sum()), rel=1e-5, abs=1e-9)
        assert point["lsq_residual"] == pytest.approx(float(residual.sum()), rel=1e-6, abs=1e-9)
        scale = np.sqrt(2.0 / x.shape[1])  # the stitch's own random initialisation
        assert sse(weight, bias) < sse(rng.normal(0, scale, weight.shape), np.zeros_like(bias))
        if x.shape[1] == y.shape[1]:
            # equal at boundary 0: both anchors share the stem and first block, the identity is exact
            assert sse(weight, bias) <= sse(np.eye(x.shape[1]), np.zeros_like(bias)) + 1e-9 * np.sum(y**2)


def test_too_few_anchors_and_no_stitch_point_are_typed_errors(stitched) -> None:
    network, arch = stitched.network, stitched.net.archs[0]
    with pytest.raises(StitchAnchorsError, match="1 distinct architecture"):
        select_anchors([arch, arch], network, 2)
    with pytest.raises(StitchAnchorsError, match="5 anchors: a stitched family takes 2 to 4"):
        select_anchors(stitched.net.archs, network, 5)
    with pytest.raises(StitchAnchorsError, match="1 distinct anchor"):
        build_stitched(None, None, network, stitched.staged, [arch, arch], stitched.data)
    front = [Boundary(8, 8, 32), Boundary(16, 4, 16)]
    back = [Boundary(8, 6, 24), Boundary(16, 3, 12)]
    with pytest.raises(StitchPointError, match=r"sides \[32, 16\] px, the back anchor's \[24, 12\] px"):
        stitch_points(front, back)


def test_select_anchors_spreads_over_macs(stitched) -> None:
    network = stitched.network
    archs = [_arch(network, d, e) for d in (2, 3, 4) for e in (3, 6)]
    macs = sorted(network.costs(a).macs for a in archs)
    picked = select_anchors(archs[::-1], network, 3)
    # ranks round(linspace(0, 5, 3)) = 0, 2 (round half to even), 5
    assert [network.costs(a).macs for a in picked] == [macs[0], macs[2], macs[5]]


def test_exported_configurations_reproduce_their_accuracy_with_plain_jax(stitched, tmp_path: Path) -> None:
    net, data = stitched.net, stitched.data
    manifest = export_stitched(net, stitched.network, data, tmp_path / "family", batch_size=BATCH)
    assert manifest["family"] == "stitched"
    evaluated, members = manifest["evaluated"], manifest["members"]
    assert len(evaluated) == len(net.configurations)
    # kept: both anchors and exactly the stitches on the validation-accuracy-vs-MACs front (chosen
    # on validation, never on the test split that members then report)
    points = [[e["val_accuracy"], e["costs"]["macs"]] for e in evaluated]
    assert manifest["objectives"] == ["val_accuracy", "macs"] and all("test_accuracy" in m for m in members)
    front = set(pareto_front(points, (True, False)).tolist())
    kept = {k for k, e in enumerate(evaluated) if e["member"] is not None}
    assert kept == {k for k, e in enumerate(evaluated) if e["stitch"] is None or k in front}
    assert [m["costs"]["macs"] for m in members] == sorted(m["costs"]["macs"] for m in members)
    print(
        json.dumps(
            [(m["name"], m["costs"]["macs"], m["costs"]["params"], m["test_accuracy"]) for m in members]
        )
    )
    folder = tmp_path / "family"
    np.save(tmp_path / "x.npy", data.x_test)
    np.save(tmp_path / "y.npy", data.y_test)
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(Path.home() / ".cache" / "nasx-tests-jax")}
    proc = subprocess.run(
        [sys.executable, "-c", PLAIN_JAX, str(folder), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=env,
    )
    reproduced = [float(line) for line in proc.stdout.split()]
    assert reproduced == pytest.approx([m["test_accuracy"] for m in members], abs=1e-9)
    family = load_family(folder)
    assert family.kind == "stitched" and len(family.members) == len(members)
    last = len(members) - 1
    assert np.mean(family.run(last, data.x_test).argmax(-1) == data.y_test) == members[last]["test_accuracy"]
    assert (
        json.loads((folder / members[0]["folder"] / "configuration.json").read_text())["name"]
        == members[0]["name"]
    )


def _run_folder(folder: Path, supernet: Path, space: SearchSpace, archs: list[Arch]) -> Path:
    """A search's run folder, written with the run log: export reads its config, log and front.

    (A real search costs a supernet evaluator compile; test_export runs one.)
    """
    folder.mkdir()
    config = {"space": space.name, "variant": space.variant, "evaluator": f"supernet:{supernet}"}
    config["objectives"] = ["acc", "macs"]
    (folder / "config.json").write_text(json.dumps(config))
    records = [
        Evaluation(k, a, space.costs(a).to_dict(), {"acc": 0.5}, (0.5, float(space.costs(a).macs)))
        for k, a in enumerate(archs)
    ]
    with RunLog(folder / RUNLOG_NAME) as log:
        log.extend(records)
    front = [
        {"space": space.name, "arch": a.to_dict(), "objectives": list(r.objectives)}
        for a, r in zip(archs, records, strict=True)
    ]
    (folder / "front.json").write_text(json.dumps(front))
    return folder


def test_cli_exports_a_stitched_family_and_predicts_with_any_member(
    stitched, tiny_supernet: tuple[Path, dict], tmp_path: Path, capsys
) -> None:
    network, data = stitched.network, stitched.data
    archs = [_arch(network, d, e) for d, e in ((2, 3), (2, 6), (3, 6))]
    run = _run_folder(tmp_path / "run", tiny_supernet[0], network, archs)
    out = tmp_path / "stitched"
    argv = ["export", str(run), "--family", "stitched", "--anchors", "2", "--stitch-steps", "1", "--reverse"]
    assert main([*argv, "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    members = result["members"]
    assert len(result["evaluated"]) == 2 + 20  # the anchors and the stitches of both directions
    assert {m["name"] for m in members} >= {"anchor0", "anchor1"}
    manifest = json.loads((out / "family.json").read_text())
    assert manifest["family"] == "stitched" and manifest["stitch_steps"] == 1 and manifest["reverse"]
    assert [a["fingerprint"] for a in manifest["anchors"]] == [archs[0].fingerprint, archs[2].fingerprint]
    np.save(tmp_path / "x.npy", data.x_test)
    last = len(members) - 1
    assert (
        main(["predict", str(out), "--member", str(last), "--input", str(tmp_path / "x.npy"), "--json"]) == 0
    )
    classes = np.asarray(json.loads(capsys.readouterr().out)["classes"])
    assert np.mean(classes == data.y_test) == pytest.approx(members[last]["test_accuracy"], abs=1e-9)
    with pytest.raises(SystemExit, match="2"):  # refused by the parser, before any work
        main(["export", str(run), "--family", "stitched", "--anchors", "5"])
    assert "argument --anchors: expected 2 to 4 anchors, got 5" in capsys.readouterr().err


@pytest.mark.parametrize(("block", "shortcut"), [("basic", "torchvision"), ("bottleneck", "deepmad")])
def test_resnet_stitched_costs_equal_the_costs_counted_from_the_network_that_runs(
    block: str, shortcut: str, monkeypatch
) -> None:
    torchvision = shortcut == "torchvision"
    skeleton = Skeleton(
        name=f"tiny-{block}",
        resolution=32,
        num_classes=5,
        block=block,
        stem_kernel=7 if torchvision else 3,
        stem_stride=2 if torchvision else 1,
        stem_maxpool=torchvision,
        strides=(1, 2),
        shortcut=shortcut,
        stem_widths=(8, 16),
        widths=(8, 16, 24),
        btns=(8, 16, 24) if block == "bottleneck" else (),
        kernels=(3, 5),
        depths=(1, 2),
    )
    space = ResNetSpace(skeleton, bits=(32,))
    supernet = ResNetSupernet(space, rngs=nnx.Rngs(0))
    stats = {
        bn.key: (np.zeros(bn.num_features, np.float32), np.ones(bn.num_features, np.float32))
        for _, bn in nnx.iter_graph(supernet)
        if isinstance(bn, BatchNorm)
    }
    rng = np.random.default_rng(3)
    archs = [space.sample(rng) for _ in range(2)]
    staged = search_spaces.family(space.name).stages()(space)
    anchors = [staged.segments(supernet.extract(a, stats), a) for a in archs]
    bounds = [boundaries(segments, 32, 32) for segments in anchors]
    points = stitch_points(bounds[0], bounds[1])
    assert len(points) == 5  # boundary sides 8, 8, 4 (stride-4 stem) or 32, 32, 16: 4 + 1 pairs
    stitches = [Stitch(bounds[0][i].channels, bounds[1][j].channels, rngs=nnx.Rngs(0)) for i, j in points]
    configs = [Configuration(0, 0), Configuration(1, 1)]
    configs += [Configuration(0, 1, i, j, s) for s, (i, j) in enumerate(points)]
    net = StitchedNetworks(
        archs,
        nnx.List([nnx.List(a) for a in anchors]),
        nnx.List(stitches),
        configs,
        [staged.segment_costs(a) for a in archs],
        bounds,
        [{"cost_side_px": bounds[0][i].cost_side_px} for i, _ in points],
    )
    for config in configs:
        modules = used_modules(config, net.anchors, net.stitches)
        costs = net.costs(config)
        assert costs.params == sum(count_params(m) for m in modules), config.name
        assert costs.macs == _counted_macs(modules, 32, monkeypatch), config.name
        if config.is_anchor:
            assert costs == space.costs(archs[config.front])
