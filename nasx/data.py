"""Datasets: the embedded default (scikit-learn's digits), CIFAR-10/100, .npz files, synthetic.

Nothing is downloaded. A dataset is held in memory as float32 NHWC images normalized per channel
with the training set's statistics. Spec strings, as the CLI takes them:

==================  ===========================================================================
``digits``          scikit-learn's bundled 8x8 digits (1,797 images, 10 classes), upscaled to
                    the requested size, grey replicated to 3 channels; a seeded 80/20 split
``cifar10:PATH``    CIFAR-10 "python version": PATH holds ``data_batch_1..5`` and ``test_batch``
                    (or is the folder containing ``cifar-10-batches-py``)
``cifar100:PATH``   CIFAR-100 "python version": ``train`` and ``test`` (fine labels)
``npz:PATH``        an .npz with ``x`` (N,H,W[,C]) and ``y`` (N,), optionally ``x_test``,
                    ``y_test``; without them a seeded 80/20 split
``synthetic``       a small learnable set of class-dependent patterns, for tests
==================  ===========================================================================

Batches are a pure function of ``(seed, step)`` (`batch_indices`), so a run resumed from a
checkpoint sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from nasx.errors import DatasetError

__all__ = [
    "Dataset",
    "DatasetError",
    "load",
    "digits",
    "cifar",
    "npz",
    "synthetic",
    "batch_indices",
    "augment",
]


@dataclass(frozen=True)
class Dataset:
    """Images (float32 NHWC, normalized) and int32 labels, split into train and test."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    flip: bool
    """Whether horizontal flips are a valid augmentation (not for digits)."""

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[1])


def load(spec: str, *, size: int = 32, seed: int = 0) -> Dataset:
    """Load a dataset from a spec string (see the module docstring) at `size` x `size` px."""
    kind, _, path = spec.partition(":")
    if kind == "digits" and not path:
        return digits(size=size, seed=seed)
    if kind == "synthetic":
        return synthetic(size=size, seed=seed)
    if kind in ("cifar10", "cifar100"):
        if not path:
            raise DatasetError(f'dataset "{spec}": give the folder, e.g. {kind}:/data/cifar-10-batches-py')
        return cifar(Path(path), num_classes=10 if kind == "cifar10" else 100, size=size)
    if kind == "npz":
        if not path:
            raise DatasetError(f'dataset "{spec}": give the file, e.g. npz:/data/images.npz')
        return npz(Path(path), size=size, seed=seed)
    raise DatasetError(
        f'unknown dataset "{spec}"; use digits, cifar10:PATH, cifar100:PATH, npz:PATH or synthetic'
    )


def _resize(x: np.ndarray, size: int) -> np.ndarray:
    if x.shape[1] == size and x.shape[2] == size:
        return x
    return np.asarray(jax.image.resize(jnp.asarray(x), (x.shape[0], size, size, x.shape[3]), "linear"))


def _finish(
    name: str, x: np.ndarray, y: np.ndarray, xt: np.ndarray, yt: np.ndarray, size: int, flip: bool
) -> Dataset:
    """Resize, replicate grey to RGB, normalize with train statistics."""
    x, xt = (_resize(a.astype(np.float32), size) for a in (x, xt))
    if x.shape[3] == 1:
        x, xt = np.repeat(x, 3, axis=3), np.repeat(xt, 3, axis=3)
    mean = x.mean(axis=(0, 1, 2), dtype=np.float64)
    std = x.std(axis=(0, 1, 2), dtype=np.float64) + 1e-8
    x = ((x - mean) / std).astype(np.float32)
    xt = ((xt - mean) / std).astype(np.float32)
    classes = int(max(y.max(), yt.max())) + 1
    return Dataset(name, x, y.astype(np.int32), xt, yt.astype(np.int32), classes, flip)


def _split(x: np.ndarray, y: np.ndarray, seed: int, test_fraction: float = 0.2) -> tuple[np.ndarray, ...]:
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = max(1, round(test_fraction * len(x)))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def digits(*, size: int = 32, seed: int = 0) -> Dataset:
    """scikit-learn's bundled handwritten digits, the embedded default (no download)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[..., None]
    return _finish("digits", *_split(x, data.target, seed), size=size, flip=False)


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
    x = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1) / 255.0
    return x, np.asarray(batch[label_key], dtype=np.int64)


def cifar(path: Path, *, num_classes: int = 10, size: int = 32) -> Dataset:
    """CIFAR-10/100 from a local folder in the standard python-pickle format."""
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
    parts = {}
    for split, files in (("train", train_files), ("test", test_files)):
        arrays = [_cifar_arrays(_unpickle(path / f), path / f, key) for f in files]
        parts[split] = (np.concatenate([a[0] for a in arrays]), np.concatenate([a[1] for a in arrays]))
    return _finish(f"cifar{num_classes}", *parts["train"], *parts["test"], size=size, flip=True)


def npz(path: Path, *, size: int = 32, seed: int = 0) -> Dataset:
    """Images from an .npz with ``x`` and ``y`` (and optionally ``x_test``, ``y_test``)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f'dataset file "{path}" does not exist; expected an .npz with arrays x and y')
    try:
        data = dict(np.load(path, allow_pickle=False))
    except Exception as e:
        raise DatasetError(f'"{path}" is not a readable .npz ({type(e).__name__}: {e})') from None
    if "x" not in data or "y" not in data:
        raise DatasetError(f'"{path}" has arrays {sorted(data)}; expected x (N,H,W[,C]) and y (N,)')

    def images(a: np.ndarray, key: str) -> np.ndarray:
        if a.ndim == 3:
            a = a[..., None]
        if a.ndim != 4:
            raise DatasetError(f'"{path}": {key} has shape {a.shape}; expected (N,H,W) or (N,H,W,C)')
        a = a.astype(np.float32)
        return a / 255.0 if a.max() > 1.5 else a

    x, y = images(data["x"], "x"), np.asarray(data["y"]).reshape(-1)
    if len(x) != len(y):
        raise DatasetError(f'"{path}": x has {len(x)} images but y has {len(y)} labels')
    if "x_test" in data and "y_test" in data:
        parts = (x, y, images(data["x_test"], "x_test"), np.asarray(data["y_test"]).reshape(-1))
    else:
        parts = _split(x, y, seed)
    return _finish(path.stem, *parts, size=size, flip=False)


def synthetic(*, n: int = 600, size: int = 32, num_classes: int = 10, seed: int = 0) -> Dataset:
    """Class-dependent sinusoid patterns plus noise: learnable in a few steps, for tests."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, n)
    grid = np.linspace(0, np.pi, 8, dtype=np.float32)
    base = np.sin(grid[:, None] * (1 + np.arange(num_classes))[None, :])  # (8, classes)
    x = base[:, y].T[:, :, None, None] * base[:, y].T[:, None, :, None]  # (n, 8, 8, 1)
    x = x + 0.3 * rng.standard_normal(x.shape).astype(np.float32)
    return _finish("synthetic", *_split(x.astype(np.float32), y, seed), size=size, flip=False)


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
