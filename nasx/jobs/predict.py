"""`predict`: classify images with an exported model, or with one member of an exported family.

Example::

    from nasx.jobs.predict import PredictRequest, predict

    done = predict(PredictRequest("exported/member-0", "images.npy"))
    done.classes
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasx.errors import NasxError

__all__ = ["PredictInputError", "PredictRequest", "Prediction", "predict", "read_images", "check_images"]

log = logging.getLogger(__name__)


class PredictInputError(NasxError, FileNotFoundError):
    """Images for `nasx predict` that are missing, not one numeric array, not finite, or not of the
    shape the model takes."""


@dataclass(frozen=True)
class PredictRequest:
    """Images to classify with an exported model.

    Attributes:
      model_dir: a model folder written by ``nasx export``, or a family folder (``family.json``).
      input: a ``.npy`` array of NHWC float32 images (or one HWC image), normalized as in training.
      member: with a family folder, the member to run.
    """

    model_dir: str | Path
    input: str | Path
    member: int = 0


@dataclass(frozen=True)
class Prediction:
    """Each image's predicted class and logits."""

    classes: np.ndarray
    logits: np.ndarray


def predict(request: PredictRequest) -> Prediction:
    """Run an exported model (or a family's member) on the images of `request.input`.

    Images that are legal but odd (integers, which the model was not trained on unnormalized; one
    HWC image rather than a batch) run with a warning; what cannot be right is refused.

    Raises:
      ModelFolderError, FamilyFolderError: `request.model_dir` holds no exported model or family.
      ModelFileError: a file of the model is damaged.
      PredictInputError: the images are missing, not one numeric array, not finite, or not of the
        shape the model takes.
    """
    from nasx.export.load import load_family, load_model

    if (Path(request.model_dir).expanduser() / "family.json").exists():
        model = load_family(request.model_dir).model(request.member)
    else:
        model = load_model(request.model_dir)
    path = Path(request.input).expanduser()
    images = check_images(read_images(path), path, getattr(model, "input_shape", None))
    try:
        logits = model(images)
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise PredictInputError(
            f'input "{path}" of shape {images.shape} does not fit the model: {first}'
        ) from None
    return Prediction(logits.argmax(-1), logits)


_EXPECTED = "give a .npy file of NHWC float32 images (np.save(path, images))"


def read_images(path: Path) -> np.ndarray:
    """The array of the ``.npy`` file `path`.

    Raises:
      PredictInputError: `path` is missing, a folder, an ``.npz`` archive, not a ``.npy`` array, or
        an array of Python objects.
    """
    if not path.exists():
        raise PredictInputError(f'input "{path}" does not exist; {_EXPECTED}')
    if path.is_dir():
        raise PredictInputError(f'input "{path}" is a folder; {_EXPECTED}')
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "Object arrays" in str(e):
            raise PredictInputError(
                f'input "{path}" holds Python objects (an object array), not numbers; {_EXPECTED}'
            ) from None
        raise PredictInputError(f'input "{path}" is not a .npy array (nor .npz); {_EXPECTED}') from None
    except (OSError, EOFError) as e:
        raise PredictInputError(f'input "{path}" cannot be read as a .npy array ({e}); {_EXPECTED}') from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        names = loaded.files
        loaded.close()
        raise PredictInputError(
            f'input "{path}" is an .npz archive (arrays: {", ".join(names) or "none"}), not one array; '
            f'save the images alone: np.save("images.npy", np.load("{path.name}")["{names[0] if names else "x"}"])'
        )
    return loaded


def check_images(images: np.ndarray, path: Path, input_shape: tuple[int | None, ...] | None) -> np.ndarray:
    """`images` as a float32 NHWC batch the model takes (`input_shape`: HWC, None where any size goes).

    Warns (one line on the log) for integer images and for one HWC image.

    Raises:
      PredictInputError: not real numbers, not finite, no images, or not of the shape the model takes.
    """
    where = f'input "{path}"'
    hwc = ", ".join("?" if d is None else str(d) for d in input_shape) if input_shape else "H, W, C"
    expected = f"expected float32 images of shape (N, {hwc}) or one image ({hwc})"
    if images.dtype.kind not in "iuf":
        raise PredictInputError(f"{where} has dtype {images.dtype}; {expected}")
    if images.ndim == 3:
        if input_shape is not None and not _fits(images.shape, input_shape):
            if input_shape[-1] == 1 and _fits((*images.shape[1:], 1), input_shape):
                raise PredictInputError(
                    f"{where} has shape {images.shape}: images without a channel axis; the model takes "
                    f"({hwc}): add it (np.save(path, images[..., None]))"
                )
            raise PredictInputError(f"{where} has shape {images.shape}; {expected}")
        log.warning("%s has shape %s: read as one HWC image (a batch of 1)", where, images.shape)
        images = images[None]
    if images.ndim != 4:
        raise PredictInputError(f"{where} has shape {images.shape}; {expected}")
    if input_shape is not None and not _fits(images.shape[1:], input_shape):
        raise PredictInputError(f"{where} has shape {images.shape}; {expected}")
    if images.shape[0] == 0:
        raise PredictInputError(f"{where} holds no images (shape {images.shape})")
    if images.dtype.kind in "iu":
        log.warning(
            "%s holds %s images (values %s to %s): the model takes float32 images normalized as in "
            "training; they are converted as they are",
            where,
            images.dtype,
            images.min(),
            images.max(),
        )
    elif not np.isfinite(images).all():
        bad = np.argwhere(~np.isfinite(images))
        raise PredictInputError(
            f"{where} holds {len(bad)} NaN or infinite value(s), the first in image {bad[0][0]}; "
            "the model takes finite values"
        )
    return images.astype(np.float32)


def _fits(shape: tuple[int, ...], input_shape: tuple[int | None, ...]) -> bool:
    return len(shape) == len(input_shape) and all(
        d is None or d == n for n, d in zip(shape, input_shape, strict=True)
    )
