"""Sorted families (SortedNet): the nesting relation, the chain of most hypervolume, and
`nasx export --family sorted`: one checkpoint of shared weights whose members run in plain JAX,
reproduce their recorded accuracy and cost little more storage than the largest member alone."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

import nasx
from nasx.cli import main
from nasx.data import load
from nasx.export.load import FamilyFolderError
from nasx.export.slices import MemberSliceError, cuts, member_forward, slice_boxes
from nasx.export.sorted import (
    SortedFamilyError,
    best_chain,
    choose_chain,
    nesting_matrix,
    nests,
    reference_point,
)
from nasx.nn.layers import BatchNorm
from nasx.pareto import hypervolume
from nasx.runlog import Evaluation
from nasx.sampling import nested_chain
from nasx.supernet import build, functional
from search_spaces import mobilenet, nb201, resnet
from search_spaces.mobilenet.supernet import MobileNetSupernet


# --- nesting ----------------------------------------------------------------------------------
def test_a_nested_chain_nests_in_order_and_not_backwards() -> None:
    for space in (mobilenet.space("cifar", bits=(32,)), resnet.space("cifar", bits=(32,))):
        small, mid, large = nested_chain(space, [0.0, 0.5, 1.0], np.random.default_rng(1))
        assert nests(small, mid, space) and nests(mid, large, space) and nests(small, large, space)
        assert nests(mid, mid, space)
        assert not nests(large, small, space) and not nests(mid, small, space)
        m = nesting_matrix([small, mid, large], space)
        assert m.tolist() == [[True, True, True], [False, True, True], [False, False, True]]


def test_one_larger_choice_breaks_nesting() -> None:
    space = mobilenet.space("cifar", bits=(32,))
    small, large = nested_chain(space, [0.0, 1.0], np.random.default_rng(2))
    assert not nests(small.replace({"s1.b1.kernel": 7}), small, space)  # a larger kernel
    assert not nests(small.replace({"s2.se": True}), small.replace({"s2.se": False}), space)
    assert nests(small.replace({"s2.se": False}), small.replace({"s2.se": True}), space)
    # cifar costs ignore the resolution choice, and so does nesting; on imagenet it is ordered
    assert nests(small.replace({"resolution": 256}), large.replace({"resolution": 128}), space)
    imagenet = mobilenet.space("imagenet", bits=(32,))
    assert not nests(small.replace({"resolution": 256}), large.replace({"resolution": 128}), imagenet)
    wide = resnet.space("cifar", bits=(32,))
    a, b = nested_chain(wide, [0.0, 1.0], np.random.default_rng(3))
    assert not nests(a.replace({"stem.width": b["stem.width"] + 8}), b, wide)


def test_different_bits_do_not_nest() -> None:
    space = mobilenet.space("cifar", bits=(8, 32))
    chain = nested_chain(space, [0.0, 1.0], np.random.default_rng(4))
    small, large = (space.validate(a.replace({k: 8 for k in a if "bits" in k})) for a in chain)
    assert nests(small, large, space)
    assert not nests(small.replace({"bits.head": 32}), large, space)


def test_a_space_without_nesting_rules_is_a_clear_error() -> None:
    space = nb201.space()
    arch = space.sample(np.random.default_rng(0))
    with pytest.raises(SortedFamilyError, match=r"declares no nesting.*--family standalone"):
        nests(arch, arch, space)


# --- the chain of most hypervolume ------------------------------------------------------------
def _brute_force(points, nested, maximize, reference) -> tuple[float, int]:
    """(hypervolume, length) of the best chain, over every subset that is a chain."""
    scale = hypervolume(points, reference, maximize) or 1.0
    chains = [
        subset
        for size in range(1, len(points) + 1)
        for subset in itertools.combinations(range(len(points)), size)
        if all(nested[i, j] or nested[j, i] for i, j in itertools.combinations(subset, 2))
    ]
    volumes = {c: hypervolume(points[list(c)], reference, maximize) for c in chains}
    best = max(chains, key=lambda c: (round(volumes[c] / scale, 9), len(c)))
    return volumes[best], len(best)


def _random_case(rng: np.random.Generator, n: int, objectives: int):
    """A random front (acc maximized, costs minimized) and a random transitive nesting relation."""
    if objectives == 2:  # a 2-D front: sorted by MACs, accuracy rises
        macs = np.sort(rng.choice(np.arange(1, 100), n, replace=False)).astype(float)
        acc = np.sort(rng.uniform(0, 1, n))
        points = np.stack([acc, macs], axis=1)
        order = np.arange(n)  # nesting follows size: decomposable
    else:
        points = np.concatenate(
            [rng.uniform(0, 1, (n, 1)), rng.integers(1, 100, (n, objectives - 1))], axis=1
        )
        order = rng.permutation(n)  # nesting against the objectives: enumerated
    rank = np.empty(n, int)
    rank[order] = np.arange(n)
    nested = np.eye(n, dtype=bool)
    for i, j in itertools.permutations(range(n), 2):
        nested[i, j] = rank[i] < rank[j] and rng.random() < 0.5
    for k, i, j in itertools.product(range(n), repeat=3):  # transitive closure (k outermost)
        nested[i, j] |= nested[i, k] and nested[k, j]
    maximize = [True] + [False] * (objectives - 1)
    return points, nested, maximize, reference_point(points, maximize)


@pytest.mark.parametrize("objectives", [2, 3])
def test_best_chain_is_the_nested_chain_of_most_hypervolume(objectives: int) -> None:
    rng = np.random.default_rng(objectives)
    for _ in range(25):
        points, nested, maximize, reference = _random_case(rng, int(rng.integers(1, 8)), objectives)
        chain = best_chain(points, nested, maximize, reference)
        assert all(nested[a, b] for a, b in itertools.pairwise(chain))  # nested, smallest first
        hv = hypervolume(points[chain], reference, maximize)
        want_hv, want_len = _brute_force(points, nested, maximize, reference)
        assert hv == pytest.approx(want_hv, rel=1e-9) and len(chain) == want_len


def test_ties_go_to_the_longer_chain_then_to_the_front_order() -> None:
    maximize, reference = [True, False], [0.0, 4.0]
    # (acc, MACs): 0 and 1 dominate 1.5 each; 2 sits on the reference MACs and adds nothing
    points = np.array([[0.5, 1.0], [0.75, 2.0], [0.9, 4.0]])
    no_nesting = np.eye(3, dtype=bool)
    assert best_chain(points, no_nesting, maximize, reference) == [0]  # a tie: the first
    nested = no_nesting.copy()
    nested[1, 2] = True
    assert best_chain(points, nested, maximize, reference) == [1, 2]  # same volume, longer
    nested[0, 1] = nested[0, 2] = True
    assert best_chain(points, nested, maximize, reference) == [0, 1, 2]


def test_a_front_without_nesting_gives_a_chain_of_one() -> None:
    points = np.array([[0.5, 1.0], [0.7, 2.0], [0.8, 3.0]])
    maximize = [True, False]
    reference = reference_point(points, maximize)
    chain = best_chain(points, np.eye(3, dtype=bool), maximize, reference)
    volumes = [hypervolume(points[[i]], reference, maximize) for i in range(3)]
    assert chain == [int(np.argmax(volumes))]


def test_an_empty_front_is_a_clear_error() -> None:
    with pytest.raises(SortedFamilyError, match="front is empty"):
        best_chain(np.zeros((0, 2)), np.zeros((0, 0), bool), [True, False], [0.0, 1.0])


def test_choose_chain_counts_equal_archs_once_and_says_how_it_chose() -> None:
    space = mobilenet.space("cifar", bits=(32,))
    small, mid, large = nested_chain(space, [0.0, 0.5, 1.0], np.random.default_rng(5))
    archs = [small, mid, mid, large]  # the second mid is dropped with its objective values
    points = [[0.5, 1.0], [0.7, 2.0], [0.9, 0.1], [0.8, 3.0]]
    chain = choose_chain(archs, points, ["acc", "macs"], [True, False], space)
    distinct = np.array([points[0], points[1], points[3]])
    reference = reference_point(distinct, [True, False])
    assert chain.distinct == 3 and chain.archs == [small, mid, large]
    assert chain.front_indices == best_chain(
        distinct, nesting_matrix([small, mid, large], space), [True, False], reference
    )
    assert chain.to_dict() == {
        "objectives": ["acc", "macs"],
        "maximize": [True, False],
        "reference": reference,
        "hypervolume": hypervolume(distinct, reference, [True, False]),
        "front_hypervolume": hypervolume(distinct, reference, [True, False]),
        "front_indices": [0, 1, 2],
    }


# --- export -----------------------------------------------------------------------------------
PLAIN_JAX = """
import sys
for name in ("nasx", "search_spaces", "solvers", "flax", "orbax"):
    sys.modules[name] = None  # any import of these fails: the family needs plain JAX only
import jax, numpy as np
family, images, labels = sys.argv[1:4]
npz = np.load(family + "/weights.npz")
weights = [npz[f"w{i}"] for i in range(len(npz.files))]
for folder in sys.argv[4:]:
    exported = jax.export.deserialize(bytearray(open(folder + "/model.stablehlo", "rb").read()))
    logits = np.asarray(exported.call(weights, np.load(images)))
    print(float(np.mean(logits.argmax(-1) == np.load(labels))))
"""


@pytest.fixture(scope="module")
def nested_run(tmp_path_factory, tiny_supernet: tuple[Path, dict]) -> tuple[Path, list]:
    """A run of the tiny supernet whose front holds a nested pair and an arch nested in only one
    of them (hand-made objectives: the export, not the search, is under test)."""
    space = mobilenet.space("cifar", bits=(32,))
    small, large = nested_chain(space, [0.2, 1.0], np.random.default_rng(5))
    small, large = small.replace({"s1.se": False}), large.replace({"s1.se": False})
    (other,) = nested_chain(space, [0.5], np.random.default_rng(5))
    other = other.replace({"s1.se": True})  # nests neither in large nor large in it
    assert nests(small, other, space) and not nests(other, large, space)
    run = tmp_path_factory.mktemp("sorted") / "run"
    run.mkdir()
    config = {"space": "mobilenet", "variant": "cifar", "evaluator": f"supernet:{tiny_supernet[0]}"}
    (run / "config.json").write_text(json.dumps({**config, "objectives": ["acc", "macs"]}))
    entries = []
    for i, (arch, acc) in enumerate([(large, 0.9), (other, 0.52), (small, 0.5)]):  # best first
        costs = dataclasses.asdict(space.costs(arch))
        e = Evaluation(i, arch, costs, {"acc": acc}, (acc, costs["macs"]))
        entries.append(
            {"arch": arch.to_dict(), "fingerprint": arch.fingerprint, "objectives": [acc, costs["macs"]]}
        )
        with (run / "runlog.jsonl").open("a") as f:
            f.write(json.dumps(e.to_dict()) + "\n")
    (run / "front.json").write_text(json.dumps(entries))
    return run, [small, large]


@pytest.fixture(scope="module")
def sorted_family(nested_run: tuple[Path, list], tmp_path_factory) -> tuple[Path, list[dict]]:
    """`nasx export --family sorted --finetune 1` of the nested run: (folder, members as printed)."""
    out = tmp_path_factory.mktemp("family") / "family"
    argv = [
        "export",
        str(nested_run[0]),
        "--family",
        "sorted",
        "--finetune",
        "1",
        "--out",
        str(out),
        "--json",
    ]
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(argv) == 0
    return out, json.loads(buffer.getvalue())["members"]


def test_sorted_family_runs_in_plain_jax_and_reproduces_its_accuracy(
    nested_run: tuple[Path, list], sorted_family: tuple[Path, list[dict]], tmp_path: Path, capsys
) -> None:
    _, (small, large) = nested_run
    out, members = sorted_family
    assert [m["fingerprint"] for m in members] == [small.fingerprint, large.fingerprint]  # smallest first
    manifest = json.loads((out / "family.json").read_text())
    assert manifest["family"] == "sorted" and manifest["finetune_steps"] == 1
    assert len(manifest["finetune"]) == 1 and np.isfinite(manifest["finetune"][0]["loss"])
    assert manifest["chain"]["front_indices"] == [2, 0]  # the front lists large, other, small
    data = load("digits", size=8, seed=0)
    np.save(tmp_path / "x.npy", data.x_test)
    np.save(tmp_path / "y.npy", data.y_test)
    folders = [m["folder"] for m in members]
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            PLAIN_JAX,
            str(out),
            str(tmp_path / "x.npy"),
            str(tmp_path / "y.npy"),
            *folders,
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    reproduced = [float(line) for line in proc.stdout.split()]
    assert reproduced == pytest.approx([m["test_accuracy"] for m in members], abs=1e-9)
    for m in members:
        recorded = json.loads((Path(m["folder"]) / "metrics.json").read_text())
        assert recorded["test_accuracy"] == m["test_accuracy"] and recorded["finetune_steps"] == 1

    family = nasx.load_family(out)
    assert [m.arch for m in family.members] == [small, large]
    assert family.members[1].costs["macs"] > family.members[0].costs["macs"]
    for i, m in enumerate(family.members):
        accuracy = np.mean(family.run(i, data.x_test).argmax(-1) == data.y_test)
        assert accuracy == pytest.approx(m.metrics["test_accuracy"], abs=1e-9)
    capsys.readouterr()
    assert main(["predict", str(out), "--member", "1", "--input", str(tmp_path / "x.npy"), "--json"]) == 0
    classes = np.asarray(json.loads(capsys.readouterr().out)["classes"])
    assert np.mean(classes == data.y_test) == pytest.approx(members[1]["test_accuracy"], abs=1e-9)
    assert main(["predict", str(out), "--member", "5", "--input", str(tmp_path / "x.npy")]) == 2
    assert "it has 2" in capsys.readouterr().err


def _bytes(*paths: Path) -> int:
    return sum(f.stat().st_size for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())


def test_the_family_stores_about_as_much_as_its_largest_member_alone(
    nested_run: tuple[Path, list], sorted_family: tuple[Path, list[dict]], tmp_path: Path, capsys
) -> None:
    run, (_, large) = nested_run
    family, _ = sorted_family
    assert main(["export", str(run), "--top", "1", "--out", str(tmp_path / "alone"), "--json"]) == 0
    capsys.readouterr()
    alone = tmp_path / "alone" / f"01-{large.fingerprint}"  # the supernet's weights, not fine-tuned
    stored = {p: _bytes(family / p) / _bytes(alone / p) for p in ("weights.npz", "checkpoint")}
    both = _bytes(family / "weights.npz", family / "checkpoint") / _bytes(
        alone / "weights.npz", alone / "checkpoint"
    )
    assert both <= 1.05 and stored["weights.npz"] <= 1.05, (
        f"the family of 2 stores {stored} of its largest member"
    )
    # the family's shared weights are the largest member's, moved by the sorted fine-tuning
    npz_family, npz_alone = np.load(family / "weights.npz"), np.load(alone / "weights.npz")
    shared = [
        npz_family[f"w{i}"] for i in range(json.loads((family / "family.json").read_text())["shared_arrays"])
    ]
    untuned = [npz_alone[k] for k in npz_alone.files]
    assert {w.shape for w in shared} <= {w.shape for w in untuned}
    unchanged = sum(any(np.array_equal(w, u) for u in untuned) for w in shared)
    assert unchanged < len(shared) / 2


def test_members_are_slices_of_the_largest_members_weights() -> None:
    """Each member's weights, cut out of the largest member's, are exactly its extracted ones."""
    cifar = mobilenet.SKELETONS["cifar"]  # two stages: a small supernet builds in seconds
    skeleton = dataclasses.replace(cifar, stages=cifar.stages[:2], head_width=64, mix_width=0)
    space = mobilenet.MobileNetSpace(skeleton, bits=(32,), width_mult=0.25)
    supernet = build(MobileNetSupernet, space, seed=0)
    _, params, _ = functional(supernet)
    rng = np.random.default_rng(0)
    stats = {
        node.key: (np.zeros(node.num_features), np.ones(node.num_features))
        for _, node in nnx.iter_graph(supernet)
        if isinstance(node, BatchNorm)
    }
    chain = nested_chain(space, [0.0, 1.0], rng)
    before = [np.asarray(w) for w in jax.tree.leaves(params)]
    boxes = [slice_boxes(supernet, params, a, stats) for a in chain]
    assert all(
        np.array_equal(a, b) for a, b in zip(before, jax.tree.leaves(nnx.state(supernet)), strict=True)
    )
    nnx.update(supernet, params)
    weights = [
        [np.asarray(w) for w in jax.tree.leaves(nnx.state(supernet.extract(a, stats), nnx.Param))]
        for a in chain
    ]
    for member, member_boxes in zip(weights, boxes, strict=True):
        cut = [weights[-1][j][where] for j, where in cuts(member_boxes, boxes[-1])]
        assert len(cut) == len(member) and all(np.array_equal(c, w) for c, w in zip(cut, member, strict=True))
    assert sum(w.size for w in weights[0]) < sum(w.size for w in weights[1])
    with pytest.raises(MemberSliceError, match="does not nest"):
        cuts(boxes[1], boxes[0])


def test_sorted_export_errors(tmp_path: Path, nested_run: tuple[Path, list], capsys) -> None:
    run, _ = nested_run
    empty = tmp_path / "empty"
    empty.mkdir()
    for name in ("config.json", "runlog.jsonl"):
        (empty / name).write_text((run / name).read_text())
    (empty / "front.json").write_text("[]")
    capsys.readouterr()
    assert main(["export", str(empty), "--family", "sorted"]) == 2
    assert "empty Pareto front" in capsys.readouterr().err
    config = json.loads((run / "config.json").read_text())
    (empty / "config.json").write_text(json.dumps({**config, "evaluator": "params"}))
    assert main(["export", str(empty), "--family", "sorted"]) == 2
    assert "no weights to export" in capsys.readouterr().err
    assert main(["predict", str(tmp_path), "--input", "x.npy"]) == 2
    with pytest.raises(FamilyFolderError, match="holds no exported family"):
        nasx.load_family(tmp_path)


def test_a_quantized_chain_runs_from_the_shared_float_weights() -> None:
    """Members below 32 bits share the largest member's float weights and quantize their own slice
    as they run (each layer's scale sees exactly its active weights, as in the supernet), so a
    sorted family of quantized members gives each member its fake-quantized outputs."""
    cifar = mobilenet.SKELETONS["cifar"]
    skeleton = dataclasses.replace(cifar, stages=cifar.stages[:2], head_width=64, mix_width=0)
    space = mobilenet.MobileNetSpace(skeleton, bits=(4, 32), width_mult=0.25)
    supernet = build(MobileNetSupernet, space, seed=0)
    _, params, _ = functional(supernet)
    stats = {
        node.key: (np.zeros(node.num_features), np.ones(node.num_features))
        for _, node in nnx.iter_graph(supernet)
        if isinstance(node, BatchNorm)
    }
    chain = [
        space.validate(a.replace({k: 4 for k in a if "bits" in k.split(".")}))
        for a in nested_chain(space, [0.0, 1.0], np.random.default_rng(1))
    ]
    assert nests(chain[0], chain[1], space)
    boxes = [slice_boxes(supernet, params, a, stats) for a in chain]
    nnx.update(supernet, params)
    largest = supernet.extract(chain[-1], stats)
    shared = [np.asarray(w) for w in jax.tree.leaves(nnx.state(largest, nnx.Param))]
    x = np.random.default_rng(2).normal(size=(3, 32, 32, 3)).astype(np.float32)
    for arch, member_boxes in zip(chain, boxes, strict=True):
        model = supernet.extract(arch, stats)
        forward, own = member_forward(model, member_boxes, boxes[-1], len(shared))
        sliced = np.asarray(forward([*shared, *own], x))
        np.testing.assert_allclose(sliced, np.asarray(model(x)), rtol=1e-5, atol=1e-5)
        as_float = supernet.extract(arch.replace({k: 32 for k in arch if "bits" in k.split(".")}), stats)
        assert np.max(np.abs(sliced - np.asarray(as_float(x)))) > 1e-3  # 4 bits did apply
