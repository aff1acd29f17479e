"""Datasets: the embedded default (scikit-learn's digits), Fashion-MNIST, MNIST, CIFAR-10/100, .npz
files, folders of images, synthetic.

Nothing is downloaded. A dataset is held in memory as float32 NHWC images, normalized per channel
with the training split's statistics, in three splits: train, validation and test. Spec strings,
as the CLI takes them (natural size: the size `load` uses when given none):

=======================  ====  ==================================================================
spec                     px    what
=======================  ====  ==================================================================
``digits``               32    scikit-learn's bundled 8x8 digits (1,797 images, 10 classes),
                               upscaled, grey replicated to 3 channels
``fashion-mnist``        28    the IDX files in ``/usr/share/datasets/fashion-mnist`` (Debian's
                               ``dataset-fashion-mnist``); official test split ``t10k``
``fashion-mnist:PATH``   28    the same four files in another folder, gzipped or raw
``mnist:PATH``           28    MNIST's four IDX files (``train-images-idx3-ubyte[.gz]``, ...)
``cifar10:PATH``         32    CIFAR-10 "python version": PATH holds ``data_batch_1..5`` and
                               ``test_batch`` (or is the folder containing ``cifar-10-batches-py``)
``cifar100:PATH``        32    CIFAR-100 "python version": ``train`` and ``test`` (fine labels)
``npz:PATH``             own   an .npz with ``x`` (N,H,W[,C]) and ``y`` (N,), optionally ``x_test``,
                               ``y_test``
``folder:PATH``          32    ``PATH/<class>/*.png|jpg|jpeg``, any size, grey or colour; with
                               ``PATH/train`` and ``PATH/test`` in that layout, those are the splits
``synthetic``            32    a small learnable set of class-dependent patterns, for tests
=======================  ====  ==================================================================

The official test split of a format is never touched. Where a format has none, a seeded 20 % test
split is carved first (``default_rng(seed)``, as nasx always did); the validation split is then
carved from the rest of the training data with ``default_rng([seed, VALIDATION_STREAM])``.
`Dataset.splits` records how, for run logs.

Batches are a pure function of ``(seed, step)`` (`batch_indices`), so a run resumed from a
checkpoint sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from nasx.data.files import (
    Arrays,
    npz_image_size,
    read_cifar,
    read_folder,
    read_idx,
    read_mnist,
    read_npz,
)
from nasx.errors import DatasetError

__all__ = [
    "Dataset",
    "DatasetError",
    "load",
    "natural_size",
    "digits",
    "fashion_mnist",
    "mnist",
    "cifar",
    "npz",
    "folder",
    "synthetic",
    "batch_indices",
    "augment",
    "Arrays",
    "read_cifar",
    "read_npz",
    "read_idx",
    "read_mnist",
    "read_folder",
    "FASHION_MNIST_DIR",
    "SPECS",
    "TEST_FRACTION",
    "VALIDATION_STREAM",
]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package installs the IDX files."""
SPECS = (
    "digits",
    "fashion-mnist",
    "fashion-mnist:PATH",
    "mnist:PATH",
    "cifar10:PATH",
    "cifar100:PATH",
    "npz:PATH",
    "folder:PATH",
    "synthetic",
)
"""Every accepted form of a dataset spec."""
TEST_FRACTION = 0.2
"""Share of the images carved as the test split where the format has no official one."""
VALIDATION_STREAM = 0x76616C  # "val": apart from batch_indices' [seed, epoch] streams
"""Second entry of the seed of the validation split's generator."""
MIN_SPLIT = 3
"""Fewest images a split may hold."""
_CHUNK = 4096  # images per resize/statistics chunk: bounded temporaries at 60k images


@dataclass(frozen=True)
class Dataset:
    """Images (float32 NHWC, normalized) and int32 labels in train, validation and test splits."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    flip: bool
    """Whether horizontal flips are a valid augmentation (not for digits)."""
    splits: dict
    """How the splits were made, JSON-able: ``{"validation": {"fraction", "seed", "from"},
    "test": "official" | {"fraction", "seed"}, "sizes": {"train", "val", "test"}}``."""

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[1])

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Images and labels of split ``"train"``, ``"val"`` or ``"test"``."""
        if name not in ("train", "val", "test"):
            raise ValueError(f'split "{name}": use train, val or test')
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def describe(self) -> dict:
        """What a run log records about the data (JSON-able)."""
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "image_size": self.image_size,
            "flip": self.flip,
            "splits": copy.deepcopy(self.splits),
        }


def _parse(spec: str) -> tuple[str, str]:
    """``(kind, path)`` of a spec; a one-line error for an unknown one or a missing path."""
    kind, sep, path = spec.partition(":")
    examples = {
        "cifar10": "cifar10:/data/cifar-10-batches-py",
        "cifar100": "cifar100:/data/cifar-100-python",
        "mnist": "mnist:/data/mnist",
        "npz": "npz:/data/images.npz",
        "folder": "folder:/data/images",
    }
    if kind in examples and not path:
        what = "file" if kind == "npz" else "folder"
        raise DatasetError(f'dataset "{spec}": give the {what}, e.g. {examples[kind]}')
    if (kind in ("digits", "synthetic") and not sep) or kind in examples or kind == "fashion-mnist":
        return kind, path
    raise DatasetError(f'unknown dataset "{spec}"; use {", ".join(SPECS)}')


def natural_size(spec: str) -> int:
    """The image side `load` uses for `spec` when given no size (an .npz's header is read)."""
    kind, path = _parse(spec)
    if kind in ("mnist", "fashion-mnist"):
        return 28
    if kind == "npz":
        return npz_image_size(Path(path))
    return 32


def load(spec: str, *, size: int | None = None, seed: int = 0, val_fraction: float = 0.1) -> Dataset:
    """Load a dataset from a spec string (see the module docstring) at `size` x `size` px.

    Args:
      spec: e.g. ``digits``, ``fashion-mnist``, ``cifar10:/data/cifar-10-batches-py``.
      size: image side in px; None: the dataset's natural size.
      seed: seeds the carved test split (where there is no official one) and the validation split.
      val_fraction: share of the training data held out for validation, in (0, 0.5).
    """
    kind, path = _parse(spec)
    _check_fraction(val_fraction)  # before reading any file
    opts = {"size": size, "seed": seed, "val_fraction": val_fraction}
    if kind == "digits":
        return digits(**opts)
    if kind == "synthetic":
        return synthetic(**opts)
    if kind == "fashion-mnist":
        return fashion_mnist(Path(path) if path else FASHION_MNIST_DIR, **opts)
    if kind == "mnist":
        return mnist(Path(path), **opts)
    if kind in ("cifar10", "cifar100"):
        return cifar(Path(path), num_classes=10 if kind == "cifar10" else 100, **opts)
    if kind == "npz":
        return npz(Path(path), **opts)
    return folder(Path(path), **opts)


def _resize(x: np.ndarray, size: int) -> np.ndarray:
    if x.shape[1] == size and x.shape[2] == size:
        return x
    out = np.empty((len(x), size, size, x.shape[3]), np.float32)
    for s in range(0, len(x), _CHUNK):
        chunk = jnp.asarray(x[s : s + _CHUNK])
        out[s : s + len(chunk)] = jax.image.resize(chunk, (len(chunk), size, size, x.shape[3]), "linear")
    return out


def _normalize(train: np.ndarray, *others: np.ndarray) -> None:
    """Per channel, in place: subtract the train mean, divide by the train std (float64 sums)."""
    mean = train.mean(axis=(0, 1, 2), dtype=np.float64)
    squares = np.zeros_like(mean)
    for s in range(0, len(train), _CHUNK):
        d = train[s : s + _CHUNK] - mean
        squares += np.einsum("nhwc,nhwc->c", d, d)
    std = np.sqrt(squares / (train.size // train.shape[3])) + 1e-8
    for a in (train, *others):
        a -= mean.astype(np.float32)
        a /= std.astype(np.float32)


def _check_fraction(val_fraction: float) -> None:
    if not 0 < val_fraction < 0.5:
        raise DatasetError(f"val_fraction {val_fraction}: expected a share in (0, 0.5), e.g. 0.1")


def _build(
    name: str, arrays: Arrays, *, size: int | None, seed: int, val_fraction: float, flip: bool
) -> Dataset:
    """Split (test if not official, then validation from train), resize, normalize, grey -> RGB."""
    _check_fraction(val_fraction)
    if size is not None and size < 1:
        raise DatasetError(f'dataset "{name}": image size {size} px; expected a positive size')
    x, y = arrays.x, arrays.y
    if arrays.x_test is None:
        order = np.random.default_rng(seed).permutation(len(x))
        n_test = max(1, round(TEST_FRACTION * len(x)))
        test, pool = order[:n_test], order[n_test:]
        x_test, y_test = x[test], y[test]
        test_record: str | dict = {"fraction": TEST_FRACTION, "seed": seed}
    else:
        pool = np.arange(len(x))
        x_test, y_test = arrays.x_test, arrays.y_test
        test_record = "official"
    order = np.random.default_rng([seed, VALIDATION_STREAM]).permutation(len(pool))
    n_val = round(val_fraction * len(pool))
    val, train = pool[order[:n_val]], pool[order[n_val:]]
    sizes = {"train": len(train), "val": len(val), "test": len(x_test)}
    if min(sizes.values()) < MIN_SPLIT:
        counts = ", ".join(f"{n} {split}" for split, n in sizes.items())
        raise DatasetError(
            f'dataset "{name}" is too small to split: {counts} images; each split needs at least {MIN_SPLIT}'
        )
    x_train, y_train, x_val, y_val = x[train], y[train], x[val], y[val]
    num_classes, natural = arrays.num_classes, max(x.shape[1], x.shape[2])
    del x, arrays  # the train/val copies replace them (the caller passes the only reference)
    images = [_resize(np.asarray(a, np.float32), size or natural) for a in (x_train, x_val, x_test)]
    images = [a if a.flags.writeable else a.copy() for a in images]
    _normalize(*images)
    if images[0].shape[3] == 1:  # the networks take RGB
        images = [np.repeat(a, 3, axis=3) for a in images]
    splits = {
        "validation": {"fraction": val_fraction, "seed": seed, "from": "train"},
        "test": test_record,
        "sizes": sizes,
    }
    y_train, y_val, y_test = (np.asarray(a, np.int32) for a in (y_train, y_val, y_test))
    return Dataset(name, images[0], y_train, images[1], y_val, images[2], y_test, num_classes, flip, splits)


def digits(*, size: int | None = None, seed: int = 0, val_fraction: float = 0.1) -> Dataset:
    """scikit-learn's bundled handwritten digits, the embedded default (no download)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[..., None]
    arrays = Arrays(x, data.target, None, None, 10)
    return _build("digits", arrays, size=size or 32, seed=seed, val_fraction=val_fraction, flip=False)


def fashion_mnist(
    path: Path = FASHION_MNIST_DIR, *, size: int | None = None, seed: int = 0, val_fraction: float = 0.1
) -> Dataset:
    """Fashion-MNIST (Xiao et al., 2017) from its four IDX files; the t10k files are the test split."""
    hint = "; install it with `sudo apt-get install dataset-fashion-mnist` or give the folder as fashion-mnist:PATH"
    return _build(
        "fashion-mnist",
        read_mnist(Path(path), what="fashion-mnist", hint=hint),
        size=size,
        seed=seed,
        val_fraction=val_fraction,
        flip=True,
    )


def mnist(path: Path, *, size: int | None = None, seed: int = 0, val_fraction: float = 0.1) -> Dataset:
    """MNIST from its four IDX files in `path`; the t10k files are the test split."""
    hint = "; give the folder holding the IDX files as mnist:PATH"
    return _build(
        "mnist",
        read_mnist(Path(path), what="mnist", hint=hint),
        size=size,
        seed=seed,
        val_fraction=val_fraction,
        flip=False,
    )


def cifar(
    path: Path, *, num_classes: int = 10, size: int | None = None, seed: int = 0, val_fraction: float = 0.1
) -> Dataset:
    """CIFAR-10/100 from a local folder in the standard python-pickle format."""
    return _build(
        f"cifar{num_classes}",
        read_cifar(Path(path), num_classes=num_classes),
        size=size,
        seed=seed,
        val_fraction=val_fraction,
        flip=True,
    )


def npz(path: Path, *, size: int | None = None, seed: int = 0, val_fraction: float = 0.1) -> Dataset:
    """Images from an .npz with ``x`` and ``y`` (and optionally ``x_test``, ``y_test``)."""
    path = Path(path)
    return _build(path.stem, read_npz(path), size=size, seed=seed, val_fraction=val_fraction, flip=False)


def folder(path: Path, *, size: int | None = None, seed: int = 0, val_fraction: float = 0.1) -> Dataset:
    """Images in ``path/<class>/`` (or ``path/train/<class>/`` and ``path/test/<class>/``)."""
    path = Path(path)
    size = size or 32
    arrays = read_folder(path, size=size)  # small: no copy worth dropping early
    return _build(path.name, arrays, size=size, seed=seed, val_fraction=val_fraction, flip=True)


def synthetic(
    *, n: int = 600, size: int | None = None, num_classes: int = 10, seed: int = 0, val_fraction: float = 0.1
) -> Dataset:
    """Class-dependent sinusoid patterns plus noise: learnable in a few steps, for tests."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, n)
    grid = np.linspace(0, np.pi, 8, dtype=np.float32)
    base = np.sin(grid[:, None] * (1 + np.arange(num_classes))[None, :])  # (8, classes)
    x = base[:, y].T[:, :, None, None] * base[:, y].T[:, None, :, None]  # (n, 8, 8, 1)
    x = x + 0.3 * rng.standard_normal(x.shape).astype(np.float32)
    arrays = Arrays(x.astype(np.float32), y, None, None, num_classes)
    return _build("synthetic", arrays, size=size or 32, seed=seed, val_fraction=val_fraction, flip=False)


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """Indices of training batch `step`: epoch-wise seeded permutations, a pure function."""
    per_epoch = max(1, n // batch_size)
    epoch, k = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return order[k * batch_size : (k + 1) * batch_size]


def augment(key: jax.Array, x: jax.Array, *, flip: bool) -> jax.Array:
    """Random crop after zero padding by size/8 (4 px at 32 px), and random horizontal flips."""
    n, h, w, _ = x.shape
    pad = max(1, h // 8)
    k_shift, k_flip = jax.random.split(key)
    padded = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    shifts = jax.random.randint(k_shift, (n, 2), 0, 2 * pad + 1)

    def crop(image: jax.Array, shift: jax.Array) -> jax.Array:
        return jax.lax.dynamic_slice(image, (shift[0], shift[1], 0), (h, w, image.shape[2]))

    out = jax.vmap(crop)(padded, shifts)
    if flip:
        mirror = jax.random.bernoulli(k_flip, 0.5, (n,))
        out = jnp.where(mirror[:, None, None, None], out[:, :, ::-1, :], out)
    return out
