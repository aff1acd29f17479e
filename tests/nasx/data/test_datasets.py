"""Datasets load from their real file formats, split deterministically into train/val/test, and fail
with one line naming the file. Every file is written here in its real format (IDX headers, gzipped or
raw; PNG/JPEG through Pillow; CIFAR pickles), so no real dataset is needed."""

from __future__ import annotations

import gzip
import json
import pickle
import struct
from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image

import nasx.data
from nasx.data import SPECS, DatasetError, augment, batch_indices, load, natural_size

# -- writers of the real formats --------------------------------------------------------------------


def _write_idx(path: Path, array: np.ndarray, *, gz: bool, magic: int | None = None) -> Path:
    """LeCun's IDX: 0x0000, type 0x08 (unsigned byte), ndim, big-endian uint32 dims, then the bytes."""
    magic = 0x0800 + array.ndim if magic is None else magic
    data = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.astype(np.uint8).tobytes()
    if gz:
        path, data = path.with_name(path.name + ".gz"), gzip.compress(data)
    path.write_bytes(data)
    return path


def write_mnist(folder: Path, *, gz: bool = True, n_train: int = 40, n_test: int = 12) -> dict:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        _write_idx(folder / f"{prefix}-images-idx3-ubyte", images, gz=gz)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, gz=gz)
        arrays[prefix] = (images, labels)
    return arrays


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


def _write_images(folder: Path, n: int, colour: int | tuple, *, mode: str, suffix: str, side: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new(mode, (side + i % 3, side), colour).save(folder / f"{i}{suffix}")


# -- the embedded default and the split rules -------------------------------------------------------


def test_digits_is_the_embedded_default_with_todays_test_split() -> None:
    from sklearn.datasets import load_digits

    data = load("digits", size=32, seed=0)
    shapes = data.x_train.shape, data.x_val.shape, data.x_test.shape
    assert shapes == ((1294, 32, 32, 3), (144, 32, 32, 3), (359, 32, 32, 3))
    assert data.num_classes == 10 and data.x_train.dtype == np.float32 and data.y_train.dtype == np.int32
    np.testing.assert_allclose(data.x_train.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    assert not data.flip  # a mirrored digit is another symbol
    # the test split is the one nasx always carved: default_rng(seed).permutation, first 20 %
    expected = load_digits().target[np.random.default_rng(0).permutation(1797)[:359]]
    np.testing.assert_array_equal(data.y_test, expected)
    again = load("digits", size=32, seed=0)
    np.testing.assert_array_equal(again.y_val, data.y_val)
    np.testing.assert_array_equal(again.x_train, data.x_train)
    other = load("digits", size=32, seed=1)
    assert not np.array_equal(other.y_test, data.y_test) and not np.array_equal(other.y_val, data.y_val)
    assert data.splits == {
        "validation": {"fraction": 0.1, "seed": 0, "from": "train"},
        "test": {"fraction": 0.2, "seed": 0},
        "sizes": {"train": 1294, "val": 144, "test": 359},
    }


def _ids_npz(path: Path, n: int = 100) -> Path:
    """Image i is a constant 4x4 grey image of value i: its id survives the (monotonic) normalization."""
    x = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None], (n, 4, 4))
    np.savez(path, x=x, y=np.arange(n) % 3)
    return path


def _ids(data: nasx.data.Dataset) -> dict[str, np.ndarray]:
    values = {name: data.split(name)[0][:, 0, 0, 0] for name in ("train", "val", "test")}
    ranks = np.argsort(np.argsort(np.concatenate(list(values.values()))))
    out, start = {}, 0
    for name, v in values.items():
        out[name], start = ranks[start : start + len(v)], start + len(v)
    return out


def test_splits_are_disjoint_seeded_and_test_is_carved_first(tmp_path: Path) -> None:
    path = _ids_npz(tmp_path / "ids.npz")
    data = load(f"npz:{path}", seed=0)
    ids = _ids(data)
    assert data.splits["sizes"] == {"train": 72, "val": 8, "test": 20}
    assert sorted(np.concatenate(list(ids.values()))) == list(range(100))  # disjoint, all used
    np.testing.assert_array_equal(ids["test"], np.random.default_rng(0).permutation(100)[:20])
    for name in ids:  # labels travel with their images
        np.testing.assert_array_equal(data.split(name)[1], ids[name] % 3)
    wider = _ids(load(f"npz:{path}", seed=0, val_fraction=0.3))
    np.testing.assert_array_equal(wider["test"], ids["test"])  # validation never eats into test
    assert len(wider["val"]) == 24
    reseeded = _ids(load(f"npz:{path}", seed=5))
    assert set(reseeded["val"]) != set(ids["val"])


def test_normalization_uses_train_statistics_only(tmp_path: Path) -> None:
    # every training image is a 0/0.5 checkerboard: mean 0.25, std 0.25 in any subset of them
    board = (np.indices((8, 8)).sum(axis=0) % 2 * 0.5).astype(np.float32)
    x = np.broadcast_to(board, (40, 8, 8))
    path = tmp_path / "boards.npz"
    np.savez(path, x=x, y=np.arange(40) % 2, x_test=np.ones((5, 8, 8), np.float32), y_test=np.zeros(5, int))
    data = load(f"npz:{path}")
    assert data.splits["test"] == "official" and data.splits["sizes"] == {"train": 36, "val": 4, "test": 5}
    np.testing.assert_allclose(data.x_test, 3.0, rtol=1e-5)  # (1 - 0.25) / 0.25
    np.testing.assert_allclose(np.abs(data.x_val), 1.0, rtol=1e-5)
    assert data.x_train.shape == (36, 8, 8, 3)  # the file's own size; grey replicated to RGB


@pytest.mark.parametrize("fraction", [0, 0.5, -0.1, 1.0])
def test_val_fraction_must_be_a_share_below_one_half(fraction: float) -> None:
    with pytest.raises(DatasetError, match=f"val_fraction {fraction}: expected a share in"):
        load("synthetic", size=8, val_fraction=fraction)


def test_split_describe_and_natural_size(tmp_path: Path) -> None:
    data = load("synthetic", size=8)
    x, y = data.split("val")
    assert x is data.x_val and y is data.y_val and len(x) == 48
    with pytest.raises(ValueError, match='split "validation": use train, val or test'):
        data.split("validation")
    described = json.loads(json.dumps(data.describe()))
    assert described == {
        "name": "synthetic",
        "num_classes": 10,
        "image_size": 8,
        "flip": False,
        "splits": data.splits,
    }
    np.savez(tmp_path / "wide.npz", x=np.zeros((40, 10, 14, 3)), y=np.zeros(40, int))
    sizes = {
        "digits": 32,
        "synthetic": 32,
        "fashion-mnist": 28,
        "mnist:/nowhere": 28,
        "cifar10:/nowhere": 32,
        "folder:/nowhere": 32,
        f"npz:{tmp_path / 'wide.npz'}": 14,
    }
    assert {spec: natural_size(spec) for spec in sizes} == sizes
    assert load(f"npz:{tmp_path / 'wide.npz'}").x_train.shape[1:] == (14, 14, 3)


def test_unknown_spec_lists_every_form() -> None:
    with pytest.raises(DatasetError, match='unknown dataset "imagenet"') as info:
        load("imagenet")
    assert all(form in str(info.value) for form in SPECS) and "\n" not in str(info.value)
    with pytest.raises(DatasetError, match="give the folder"):
        load("cifar10")
    with pytest.raises(DatasetError, match='dataset "mnist": give the folder'):
        load("mnist")
    with pytest.raises(DatasetError, match="unknown dataset"):
        natural_size("digits:/x")


def test_too_small_to_split(tmp_path: Path) -> None:
    path = tmp_path / "tiny.npz"
    np.savez(path, x=np.zeros((12, 4, 4)), y=np.zeros(12, int))
    with pytest.raises(
        DatasetError,
        match=r'dataset "tiny" is too small to split: 9 train, 1 val, 2 test images; .* at least 3',
    ):
        load(f"npz:{path}")


# -- IDX: MNIST and Fashion-MNIST -------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_idx_files(tmp_path: Path, gz: bool) -> None:
    written = write_mnist(tmp_path / "fm", gz=gz)
    data = load(f"fashion-mnist:{tmp_path / 'fm'}")
    assert data.name == "fashion-mnist" and data.flip and data.num_classes == 10
    assert data.x_train.shape == (36, 28, 28, 3) and data.x_val.shape == (4, 28, 28, 3)
    assert data.x_test.shape == (12, 28, 28, 3) and data.splits["test"] == "official"
    images, labels = written["t10k"]
    np.testing.assert_array_equal(data.y_test, labels)  # the official split, untouched and in order
    brightest = images.reshape(12, -1).mean(axis=1).argmax()
    assert data.x_test.mean(axis=(1, 2, 3)).argmax() == brightest
    assert sorted(np.concatenate([data.y_train, data.y_val])) == sorted(written["train"][1])


def test_mnist_idx_resized_and_mixed_compression(tmp_path: Path) -> None:
    write_mnist(tmp_path / "m", gz=False)
    labels = tmp_path / "m" / "t10k-labels-idx1-ubyte"
    labels.with_name(labels.name + ".gz").write_bytes(gzip.compress(labels.read_bytes()))
    labels.unlink()
    data = load(f"mnist:{tmp_path / 'm'}", size=32)
    assert data.name == "mnist" and not data.flip
    assert data.x_train.shape == (36, 32, 32, 3) and data.image_size == 32


def test_idx_errors_name_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "fm"
    images = tmp_path / "fm" / "train-images-idx3-ubyte"
    written = write_mnist(folder, gz=False)
    spec = f"fashion-mnist:{folder}"

    _write_idx(images, written["train"][0], gz=False, magic=0x0801)
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\": magic number 0x00000801 is not"):
        load(spec)
    full = _write_idx(images, written["train"][0], gz=False)
    full.write_bytes(full.read_bytes()[:-100])
    with pytest.raises(
        DatasetError, match=r"train-images-idx3-ubyte\" is truncated: the header says \(40, 28, 28\)"
    ):
        load(spec)
    _write_idx(images, written["train"][0][:39], gz=False)
    with pytest.raises(DatasetError, match=r"has 39 images but .*train-labels-idx1-ubyte\" has 40 labels"):
        load(spec)
    _write_idx(images, written["train"][0], gz=False)
    _write_idx(folder / "train-labels-idx1-ubyte", np.full(40, 10), gz=False)
    with pytest.raises(DatasetError, match=r"labels-idx1-ubyte\": label 10 at index 0 is out of range"):
        load(spec)
    (folder / "train-labels-idx1-ubyte").unlink()
    gz = _write_idx(folder / "train-labels-idx1-ubyte", written["train"][1], gz=True)
    gz.write_bytes(gz.read_bytes()[:-12])
    with pytest.raises(DatasetError, match=r"idx1-ubyte.gz\" is not a readable gzip file"):
        load(spec)
    gz.unlink()
    with pytest.raises(DatasetError, match=r'"[^"]*train-labels-idx1-ubyte\[\.gz\]" does not exist; install'):
        load(spec)


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nasx.data, "FASHION_MNIST_DIR", tmp_path / "absent")
    with pytest.raises(DatasetError) as info:
        load("fashion-mnist")
    message = str(info.value)
    assert f'"{tmp_path / "absent"}" does not exist' in message and "\n" not in message
    assert "sudo apt-get install dataset-fashion-mnist" in message and "fashion-mnist:PATH" in message
    with pytest.raises(DatasetError, match=rf'mnist folder "{tmp_path / "m"}" does not exist; give the'):
        load(f"mnist:{tmp_path / 'm'}")


# -- folders of images ------------------------------------------------------------------------------


def test_grey_folder(tmp_path: Path) -> None:
    root = tmp_path / "shapes"
    _write_images(root / "b_white", 12, 255, mode="L", suffix=".PNG", side=40)
    _write_images(root / "a_black", 12, 0, mode="L", suffix=".png", side=10)
    (root / "a_black" / "notes.txt").write_text("not an image")
    data = load(f"folder:{root}", val_fraction=0.3)
    assert data.name == "shapes" and data.flip and data.num_classes == 2
    assert data.splits["sizes"] == {"train": 13, "val": 6, "test": 5}
    assert data.x_train.shape == (13, 32, 32, 3)
    np.testing.assert_array_equal(data.x_train[..., 0], data.x_train[..., 2])  # grey, replicated
    assert (data.x_train[data.y_train == 0] < 0).all() and (data.x_train[data.y_train == 1] > 0).all()
    assert load(f"folder:{root}", size=16, val_fraction=0.3).x_test.shape == (5, 16, 16, 3)


def test_colour_folder_with_official_split(tmp_path: Path) -> None:
    root = tmp_path / "pets"
    for split, n in (("train", 20), ("test", 4)):
        _write_images(root / split / "grey", n, 128, mode="L", suffix=".png", side=20)
        _write_images(root / split / "red", n, (255, 0, 0), mode="RGB", suffix=".JpG", side=50)
    data = load(f"folder:{root}", size=12)
    assert data.splits["test"] == "official" and data.splits["sizes"] == {"train": 36, "val": 4, "test": 8}
    np.testing.assert_array_equal(data.y_test, [0] * 4 + [1] * 4)  # classes: sorted folder names
    red = data.x_test[data.y_test == 1]
    assert (red[..., 0] > 0).all() and (red[..., 1] < 0).all()  # RGB kept: red above, green below


def test_folder_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=rf'image folder "{tmp_path / "none"}" does not exist'):
        load(f"folder:{tmp_path / 'none'}")
    flat = tmp_path / "flat"
    _write_images(flat, 3, 0, mode="L", suffix=".png", side=8)
    with pytest.raises(DatasetError, match=rf'image folder "{flat}" has no class subfolders'):
        load(f"folder:{flat}")
    root = tmp_path / "root"
    _write_images(root / "a", 10, 0, mode="L", suffix=".png", side=8)
    (root / "b").mkdir()
    (root / "b" / "readme.md").write_text("empty")
    with pytest.raises(DatasetError, match=rf'class folder "{root / "b"}" has no .png, .jpg or .jpeg images'):
        load(f"folder:{root}")
    _write_images(root / "b", 10, 255, mode="L", suffix=".png", side=8)
    (root / "b" / "3.png").write_bytes(b"not a png at all")
    with pytest.raises(DatasetError, match=r'image "[^"]*3.png" is unreadable or corrupt'):
        load(f"folder:{root}")
    whole = (root / "a" / "0.png").read_bytes()
    Image.new("L", (64, 64), 7).save(root / "b" / "3.png")
    truncated = (root / "b" / "3.png").read_bytes()
    (root / "b" / "3.png").write_bytes(truncated[: len(truncated) // 2])
    with pytest.raises(DatasetError, match=r'image "[^"]*3.png" is unreadable or corrupt'):
        load(f"folder:{root}")
    (root / "b" / "3.png").write_bytes(whole)
    assert load(f"folder:{root}", val_fraction=0.2).num_classes == 2
    split = tmp_path / "split"
    _write_images(split / "train" / "a", 10, 0, mode="L", suffix=".png", side=8)
    _write_images(split / "test" / "b", 4, 0, mode="L", suffix=".png", side=8)
    with pytest.raises(DatasetError, match=r"has classes \['b'\] but .* has \['a'\]; they must match"):
        load(f"folder:{split}")


# -- CIFAR ------------------------------------------------------------------------------------------


def test_cifar10_python_format(tmp_path: Path) -> None:
    _write_cifar10(tmp_path / "cifar-10-batches-py")
    for spec in (f"cifar10:{tmp_path}", f"cifar10:{tmp_path / 'cifar-10-batches-py'}"):
        data = load(spec, size=32)
        assert data.x_train.shape == (90, 32, 32, 3) and data.x_val.shape == (10, 32, 32, 3)
        assert data.x_test.shape == (20, 32, 32, 3) and data.splits["test"] == "official"
        assert data.flip and data.num_classes == 10


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name, n in (("train", 40), ("test", 10)):
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"fine_labels": [99] * n}
        (folder / name).write_bytes(pickle.dumps(batch))
    data = load(f"cifar100:{tmp_path}")
    assert data.num_classes == 100 and data.image_size == 32 and (data.y_test == 99).all()
    (folder / "test").write_bytes(
        pickle.dumps({b"data": np.zeros((3, 3072), np.uint8), b"fine_labels": [100] * 3})
    )
    with pytest.raises(DatasetError, match=r'test": label 100 at index 0 is out of range; expected 0..99'):
        load(f"cifar100:{tmp_path}")


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


# -- npz --------------------------------------------------------------------------------------------


def test_npz(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "faces.npz"
    np.savez(path, x=rng.integers(0, 256, (50, 12, 12), dtype=np.uint8), y=rng.integers(0, 3, 50))
    data = load(f"npz:{path}", size=16)
    assert data.x_train.shape == (36, 16, 16, 3) and data.num_classes <= 3 and not data.flip
    assert load(f"npz:{path}").image_size == 12
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((3, 4, 4)))
    with pytest.raises(DatasetError, match=r"has arrays \['images'\]; expected x"):
        load(f"npz:{bad}")
    with pytest.raises(DatasetError, match="does not exist"):
        load(f"npz:{tmp_path / 'missing.npz'}")


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (
            {"x": np.array([np.zeros((4, 4)), np.zeros((5, 5))], dtype=object), "y": [0, 1]},
            "x is an object array",
        ),
        ({"x": np.zeros((30, 16)), "y": np.zeros(30, int)}, r"x has shape \(30, 16\); expected \(N,H,W\)"),
        ({"x": np.zeros((30, 4, 4, 2)), "y": np.zeros(30, int)}, "x has 2 channels; expected 1"),
        ({"x": np.zeros((30, 4, 4)), "y": np.r_[np.zeros(29, int), -1]}, r"y\[29\] is -1; labels must be"),
        ({"x": np.zeros((30, 4, 4)), "y": np.full(30, 0.5)}, r"y\[0\] is 0.5; labels must be non-negative"),
        ({"x": np.zeros((30, 4, 4)), "y": np.zeros(29, int)}, "x has 30 images but y has 29 labels"),
        (
            {
                "x": np.zeros((30, 4, 4)),
                "y": np.zeros(30, int),
                "x_test": np.zeros((5, 5, 5)),
                "y_test": [0] * 5,
            },
            r"x images are \(4, 4, 1\) \(H,W,C\) but x_test images are \(5, 5, 1\)",
        ),
        (
            {
                "x": np.zeros((30, 4, 4)),
                "y": np.zeros(30, int),
                "x_test": np.zeros((5, 4, 4, 3)),
                "y_test": [0] * 5,
            },
            r"x images are \(4, 4, 1\) \(H,W,C\) but x_test images are \(4, 4, 3\)",
        ),
        ({"x": np.zeros((30, 4, 4)), "y": np.zeros(30, int), "x_test": np.zeros((5, 4, 4))}, "only one of"),
    ],
)
def test_npz_errors_name_the_file(tmp_path: Path, arrays: dict, message: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=message) as info:
        load(f"npz:{path}")
    assert str(info.value).startswith(f'"{path}"')


# -- batches and augmentation -----------------------------------------------------------------------


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
