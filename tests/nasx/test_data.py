"""Datasets load from their standard formats, split deterministically, and fail clearly."""

from __future__ import annotations

import pickle
from pathlib import Path

import jax
import numpy as np
import pytest

from nasx.data import DatasetError, augment, batch_indices, load


def test_digits_is_the_embedded_default() -> None:
    data = load("digits", size=32, seed=0)
    assert data.x_train.shape == (1438, 32, 32, 3) and data.x_test.shape == (359, 32, 32, 3)
    assert data.num_classes == 10 and data.x_train.dtype == np.float32 and data.y_train.dtype == np.int32
    np.testing.assert_allclose(data.x_train.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    assert not data.flip  # a mirrored digit is another symbol
    again = load("digits", size=32, seed=0)
    np.testing.assert_array_equal(again.y_test, data.y_test)
    assert not np.array_equal(load("digits", size=32, seed=1).y_test, data.y_test)


def _write_cifar10(folder: Path, n: int = 20) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": list(rng.integers(0, 10, n)),
        }
        with (folder / name).open("wb") as f:
            pickle.dump(batch, f)


def test_cifar10_python_format(tmp_path: Path) -> None:
    _write_cifar10(tmp_path / "cifar-10-batches-py")
    for spec in (f"cifar10:{tmp_path}", f"cifar10:{tmp_path / 'cifar-10-batches-py'}"):
        data = load(spec, size=32)
        assert data.x_train.shape == (100, 32, 32, 3) and data.x_test.shape == (20, 32, 32, 3)
        assert data.flip


def test_cifar_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=f'folder "{tmp_path / "nope"}" does not exist'):
        load(f"cifar10:{tmp_path / 'nope'}")
    folder = tmp_path / "broken"
    _write_cifar10(folder)
    (folder / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DatasetError, match=r"data_batch_3.* is not a CIFAR python-pickle batch"):
        load(f"cifar10:{folder}")
    (folder / "data_batch_3").unlink()
    with pytest.raises(DatasetError, match=r"data_batch_3.* does not exist"):
        load(f"cifar10:{folder}")


def test_npz(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "faces.npz"
    np.savez(path, x=rng.integers(0, 256, (50, 12, 12), dtype=np.uint8), y=rng.integers(0, 3, 50))
    data = load(f"npz:{path}", size=16)
    assert data.x_train.shape == (40, 16, 16, 3) and data.num_classes <= 3
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((3, 4, 4)))
    with pytest.raises(DatasetError, match=r"has arrays \['images'\]; expected x"):
        load(f"npz:{bad}")
    with pytest.raises(DatasetError, match="does not exist"):
        load(f"npz:{tmp_path / 'missing.npz'}")


def test_unknown_spec() -> None:
    with pytest.raises(DatasetError, match='unknown dataset "imagenet"'):
        load("imagenet")
    with pytest.raises(DatasetError, match="give the folder"):
        load("cifar10")


def test_batches_are_a_pure_function_of_seed_and_step() -> None:
    first_epoch = np.concatenate([batch_indices(100, 10, seed=3, step=s) for s in range(10)])
    assert sorted(first_epoch) == list(range(100))
    np.testing.assert_array_equal(batch_indices(100, 10, 3, 7), batch_indices(100, 10, 3, 7))
    assert not np.array_equal(batch_indices(100, 10, 3, 10), batch_indices(100, 10, 3, 0))


def test_augment_keeps_shape_and_is_seeded() -> None:
    x = jax.numpy.asarray(np.random.default_rng(0).standard_normal((4, 16, 16, 3), dtype=np.float32))
    a = augment(jax.random.key(0), x, flip=True)
    assert a.shape == x.shape
    np.testing.assert_array_equal(a, augment(jax.random.key(0), x, flip=True))
    assert not np.array_equal(a, augment(jax.random.key(1), x, flip=True))
