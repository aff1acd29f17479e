"""Readers of image-dataset files: each returns raw arrays, validated, with the format's own test split.

Images come back float32 NHWC in [0, 1] (grey as one channel), labels int64, and nothing is
normalized or split here (`nasx.data` does that). A bad file is a one-line `DatasetError` naming it.

=========  ==========================================================================================
CIFAR      the "python version": pickled dicts of ``data`` (N, 3072) uint8 and labels
           (`read_cifar`); the ``test_batch``/``test`` file is the official test split
npz        ``x`` (N,H,W[,C]) and ``y`` (N,), optionally ``x_test``/``y_test`` (`read_npz`)
IDX        LeCun's MNIST format, gzipped or raw: a big-endian header ``0x0000 08 <ndim>`` and the
           dimensions, then unsigned bytes (`read_idx`); `read_mnist` reads the four
           ``train-*``/``t10k-*`` files of MNIST and Fashion-MNIST, ``t10k`` being the test split
folder     ``PATH/<class>/*.png|jpg|jpeg``, classes the sorted subfolder names, or ``PATH/train`` and
           ``PATH/test`` in that layout as the official split (`read_folder`, needs Pillow)
=========  ==========================================================================================
"""

from __future__ import annotations

import gzip
import pickle
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from nasx.errors import DatasetError

__all__ = [
    "Arrays",
    "read_cifar",
    "read_npz",
    "npz_image_size",
    "read_idx",
    "read_mnist",
    "read_folder",
    "MNIST_FILES",
    "IMAGE_SUFFIXES",
]

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
"""The IDX files of MNIST and Fashion-MNIST, each also accepted with a ``.gz`` suffix."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
"""Image files of a folder dataset (matched case-insensitively)."""
_GREY_MODES = ("1", "L", "LA")


class Arrays(NamedTuple):
    """A dataset as read from disk: ``x_test``/``y_test`` are None where the format has no test split."""

    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    num_classes: int


def _unit(a: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1], one allocation."""
    return np.divide(a, np.float32(255.0), dtype=np.float32)


def _check_labels(y: np.ndarray, num_classes: int, path: Path) -> None:
    bad = np.flatnonzero((y < 0) | (y >= num_classes))
    if bad.size:
        i = int(bad[0])
        raise DatasetError(
            f'"{path}": label {y[i]} at index {i} is out of range; expected 0..{num_classes - 1}'
        )


# -- CIFAR ------------------------------------------------------------------------------------------


def _unpickle(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            return pickle.load(f, encoding="bytes")
    except FileNotFoundError:
        raise DatasetError(f'dataset file "{path}" does not exist') from None
    except Exception as e:  # a truncated or foreign file
        raise DatasetError(f'"{path}" is not a CIFAR python-pickle batch ({type(e).__name__}: {e})') from None


def _cifar_arrays(batch: dict, path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    if b"data" not in batch or label_key not in batch:
        raise DatasetError(f'"{path}" lacks the keys data/{label_key.decode()} of the CIFAR python format')
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DatasetError(f'"{path}": data has shape {data.shape}; CIFAR batches are (N, 3072)')
    labels = np.asarray(batch[label_key], dtype=np.int64).reshape(-1)
    if len(labels) != len(data):
        raise DatasetError(f'"{path}" has {len(data)} images but {len(labels)} labels')
    return _unit(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)), labels


def read_cifar(path: Path, *, num_classes: int = 10) -> Arrays:
    """CIFAR-10/100 from a folder in the python-pickle format (or the folder holding it)."""
    path = Path(path)
    folder_name = "cifar-10-batches-py" if num_classes == 10 else "cifar-100-python"
    if (path / folder_name).is_dir():
        path = path / folder_name
    if not path.is_dir():
        raise DatasetError(
            f'CIFAR-{num_classes} folder "{path}" does not exist; expected the extracted "{folder_name}" folder'
        )
    if num_classes == 10:
        train_files, test_files, key = [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels"
    else:
        train_files, test_files, key = ["train"], ["test"], b"fine_labels"
    parts = []
    for files in (train_files, test_files):
        arrays = [_cifar_arrays(_unpickle(path / f), path / f, key) for f in files]
        for (_, y), f in zip(arrays, files, strict=True):
            _check_labels(y, num_classes, path / f)
        parts += [np.concatenate([a[0] for a in arrays]), np.concatenate([a[1] for a in arrays])]
    return Arrays(*parts, num_classes=num_classes)


# -- npz --------------------------------------------------------------------------------------------


def _npz_array(archive: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise DatasetError(
                f'"{path}": {key} is an object array (ragged images?); expected one numeric array'
            ) from None
        raise DatasetError(f'"{path}": array {key} is unreadable ({e})') from None
    except Exception as e:
        raise DatasetError(f'"{path}": array {key} is unreadable ({type(e).__name__}: {e})') from None


def _npz_images(a: np.ndarray, key: str, path: Path) -> np.ndarray:
    if a.dtype.kind not in "uif":
        raise DatasetError(f'"{path}": {key} has dtype {a.dtype}; expected numeric pixels')
    if a.ndim == 3:
        a = a[..., None]
    if a.ndim != 4:
        raise DatasetError(f'"{path}": {key} has shape {a.shape}; expected (N,H,W) or (N,H,W,C)')
    if a.shape[3] not in (1, 3):
        raise DatasetError(f'"{path}": {key} has {a.shape[3]} channels; expected 1 (grey) or 3 (RGB)')
    return a


def _npz_labels(a: np.ndarray, key: str, path: Path) -> np.ndarray:
    y = a.reshape(-1)
    if y.dtype.kind not in "uif":
        raise DatasetError(f'"{path}": {key} has dtype {a.dtype}; expected non-negative integer labels')
    wrong = y < 0
    if y.dtype.kind == "f":
        wrong |= y != np.round(y)  # also NaN
    bad = np.flatnonzero(wrong)
    if bad.size:
        i = int(bad[0])
        raise DatasetError(f'"{path}": {key}[{i}] is {y[i]}; labels must be non-negative integers')
    return y.astype(np.int64)


def read_npz(path: Path) -> Arrays:
    """Images from an .npz with ``x`` and ``y`` (and optionally ``x_test``, ``y_test``).

    Pixels above 1.5 anywhere in ``x`` mean 0..255 (both splits are divided by 255); the number
    of classes is the largest label + 1.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f'dataset file "{path}" does not exist; expected an .npz with arrays x and y')
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as e:
        raise DatasetError(f'"{path}" is not a readable .npz ({type(e).__name__}: {e})') from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DatasetError(f'"{path}" is a single .npy array; expected an .npz with arrays x and y')
    with archive:
        keys = sorted(archive.files)
        if "x" not in keys or "y" not in keys:
            raise DatasetError(f'"{path}" has arrays {keys}; expected x (N,H,W[,C]) and y (N,)')
        if ("x_test" in keys) != ("y_test" in keys):
            raise DatasetError(f'"{path}" has only one of x_test and y_test; give both or neither')
        pairs = [("x", "y"), ("x_test", "y_test")] if "x_test" in keys else [("x", "y")]
        parts = []
        for kx, ky in pairs:
            x = _npz_images(_npz_array(archive, kx, path), kx, path)
            y = _npz_labels(_npz_array(archive, ky, path), ky, path)
            if len(x) != len(y):
                raise DatasetError(f'"{path}": {kx} has {len(x)} images but {ky} has {len(y)} labels')
            parts.append((x, y))
    if len(parts) == 2 and parts[0][0].shape[1:] != parts[1][0].shape[1:]:
        raise DatasetError(
            f'"{path}": x images are {parts[0][0].shape[1:]} (H,W,C) but x_test images are '
            f"{parts[1][0].shape[1:]}; both splits need one size and channel count"
        )
    scale = 255.0 if parts[0][0].size and parts[0][0].max() > 1.5 else 1.0
    xs = [np.divide(x, np.float32(scale), dtype=np.float32) for x, _ in parts]
    ys = [y for _, y in parts]
    num_classes = int(max(y.max(initial=0) for y in ys)) + 1
    if len(parts) == 1:
        return Arrays(xs[0], ys[0], None, None, num_classes)
    return Arrays(xs[0], ys[0], xs[1], ys[1], num_classes)


def npz_image_size(path: Path) -> int:
    """The side of an .npz's images from the header of ``x`` alone (the larger side if not square)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z, z.open("x.npy") as f:
            version = np.lib.format.read_magic(f)
            read = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape = read(f)[0]
    except Exception:  # let the full reader say what is wrong
        shape = read_npz(path).x.shape
    if len(shape) not in (3, 4):
        shape = read_npz(path).x.shape  # raises the rank error
    return int(max(shape[1], shape[2]))


# -- IDX (MNIST) ------------------------------------------------------------------------------------


def read_idx(path: Path, *, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes with `ndim` dimensions, gzipped or raw, as a uint8 array."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise DatasetError(f'dataset file "{path}" does not exist') from None
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(f'"{path}" is not a readable gzip file ({type(e).__name__}: {e})') from None
    expected_magic = 0x0800 + ndim
    magic = int.from_bytes(raw[:4], "big")
    if len(raw) < 4 + 4 * ndim or magic != expected_magic:
        raise DatasetError(
            f'"{path}": magic number 0x{magic:08X} is not that of an IDX file of {ndim}-d unsigned bytes '
            f"(0x{expected_magic:08X})"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    offset, size = 4 + 4 * ndim, int(np.prod(shape))
    if len(raw) - offset != size:
        problem = "is truncated" if len(raw) - offset < size else "has trailing bytes"
        raise DatasetError(
            f'"{path}" {problem}: the header says {shape} ({size} bytes) but {len(raw) - offset} bytes follow'
        )
    return np.frombuffer(raw, np.uint8, count=size, offset=offset).reshape(shape)


def _idx_file(folder: Path, name: str, hint: str) -> Path:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    raise DatasetError(f'dataset file "{folder / name}[.gz]" does not exist{hint}')


def read_mnist(folder: Path, *, what: str = "mnist", hint: str = "") -> Arrays:
    """The four IDX files of MNIST or Fashion-MNIST (10 classes); `hint` ends the missing-file errors."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f'{what} folder "{folder}" does not exist{hint}')
    parts = []
    for images_name, labels_name in MNIST_FILES.values():
        images_path, labels_path = _idx_file(folder, images_name, hint), _idx_file(folder, labels_name, hint)
        images, labels = read_idx(images_path, ndim=3), read_idx(labels_path, ndim=1)
        if len(images) != len(labels):
            raise DatasetError(
                f'"{images_path}" has {len(images)} images but "{labels_path}" has {len(labels)} labels'
            )
        labels = labels.astype(np.int64)
        _check_labels(labels, 10, labels_path)
        parts += [_unit(images)[..., None], labels]
    return Arrays(*parts, num_classes=10)


# -- folder of images -------------------------------------------------------------------------------


def _classes(root: Path) -> list[str]:
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DatasetError(
            f'image folder "{root}" has no class subfolders; expected {root}/<class>/*.png|jpg'
        )
    return classes


def _read_image(file: Path, size: int) -> np.ndarray:
    """One image at `size` x `size` (bilinear), uint8 (H, W) if grey else (H, W, 3)."""
    from PIL import Image

    try:
        with Image.open(file) as image:
            image.load()
            image = image.convert("L" if image.mode in _GREY_MODES else "RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(image)
    except Exception as e:  # Pillow raises many types for truncated or foreign files
        raise DatasetError(f'image "{file}" is unreadable or corrupt ({type(e).__name__}: {e})') from None


def _read_classes(root: Path, classes: list[str], size: int) -> tuple[list[np.ndarray], np.ndarray]:
    images, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(
            f for f in (root / name).iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise DatasetError(f'class folder "{root / name}" has no .png, .jpg or .jpeg images')
        images += [_read_image(f, size) for f in files]
        labels += [label] * len(files)
    return images, np.asarray(labels, np.int64)


def _stack(images: list[np.ndarray], rgb: bool) -> np.ndarray:
    if not rgb:
        return _unit(np.stack(images)[..., None])
    return _unit(np.stack([np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a for a in images]))


def read_folder(path: Path, *, size: int) -> Arrays:
    """Images in class subfolders, each resized to `size` x `size`; grey only if every image is grey.

    ``PATH/train`` and ``PATH/test`` (both present, the same class names) are the official split.
    """
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise DatasetError(f'folder dataset "{path}" needs Pillow: pip install pillow') from None
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f'image folder "{path}" does not exist; expected {path}/<class>/*.png|jpg')
    roots = [path / "train", path / "test"]
    if not all(r.is_dir() for r in roots):
        roots = [path]
    classes = _classes(roots[0])
    for root in roots[1:]:
        if (other := _classes(root)) != classes:
            raise DatasetError(
                f'"{root}" has classes {other} but "{roots[0]}" has {classes}; they must match'
            )
    read = [_read_classes(root, classes, size) for root in roots]
    rgb = any(a.ndim == 3 for images, _ in read for a in images)
    arrays = [(_stack(images, rgb), labels) for images, labels in read]
    if len(arrays) == 1:
        return Arrays(*arrays[0], None, None, len(classes))
    return Arrays(*arrays[0], *arrays[1], len(classes))
