"""`predict`: classify images with an exported model, or with one member of an exported family.

Example::

    from nasx.jobs.predict import PredictRequest, predict

    done = predict(PredictRequest("exported/member-0", "images.npy"))
    done.classes
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasx.errors import NasxError

__all__ = ["PredictInputError", "PredictRequest", "Prediction", "predict"]


class PredictInputError(NasxError, FileNotFoundError):
    """Images for `nasx predict` that are missing or not an NHWC float array."""


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

    Raises:
      ModelFolderError, FamilyFolderError: `request.model_dir` holds no exported model or family.
      PredictInputError: the images are missing, not NHWC, or do not fit the model.
    """
    from nasx.export.standalone import load_model

    if (Path(request.model_dir).expanduser() / "family.json").exists():
        from nasx.export.load import load_family

        model = load_family(request.model_dir).model(request.member)
    else:
        model = load_model(request.model_dir)
    path = Path(request.input).expanduser()
    if not path.exists():
        raise PredictInputError(f'input "{path}" does not exist; give a .npy array of NHWC float32 images')
    images = np.load(path)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise PredictInputError(
            f'input "{path}" has shape {images.shape}; expected NHWC images (or one HWC image)'
        )
    try:
        logits = model(images.astype(np.float32))
    except Exception as e:
        raise PredictInputError(f'input "{path}" of shape {images.shape} does not fit the model: {e}') from e
    return Prediction(logits.argmax(-1), logits)
