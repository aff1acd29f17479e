"""Training defaults that fit the data: epochs, batch, learning rate, regularisation per dataset.

`nasx train` and `nasx train-supernet` take every number below as a flag; what a flag leaves out
comes from `recipe_for` the dataset spec (``fashion-mnist``, ``cifar10:PATH``, ...). The values
are the common small-image recipe (SGD + Nesterov 0.9, peak 0.1 at batch 128, cosine, L2 5e-4,
label smoothing 0.1), with epochs sized so that the default runs in minutes per epoch on a
2-core CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Recipe", "RECIPES", "recipe_for"]


@dataclass(frozen=True)
class Recipe:
    """Defaults of one kind of dataset.

    Attributes:
      epochs: standalone training (`nasx train`).
      supernet_epochs: supernet training (`nasx train-supernet`), each step training several subnets.
      batch_size: images per step (both).
      supernet_batch_size: images per supernet step.
      learning_rate: peak of the warm-up + cosine schedule.
      weight_decay: L2 weight decay of standalone training.
      label_smoothing: of the labels (standalone; the supernet's largest subnet).
      warmup_fraction: share of the steps spent warming up.
    """

    epochs: float
    supernet_epochs: float
    batch_size: int = 128
    supernet_batch_size: int = 64
    learning_rate: float = 0.1
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup_fraction: float = 0.03


RECIPES: dict[str, Recipe] = {
    # 1,438 training images: many short epochs
    "digits": Recipe(epochs=40, supernet_epochs=15, batch_size=64),
    "synthetic": Recipe(epochs=20, supernet_epochs=10, batch_size=64),
    # 54,000 training images at 28 px
    "fashion-mnist": Recipe(epochs=10, supernet_epochs=4, supernet_batch_size=128),
    "mnist": Recipe(epochs=5, supernet_epochs=2, supernet_batch_size=128),
    # 45,000 at 32 px, harder
    "cifar10": Recipe(epochs=30, supernet_epochs=10, supernet_batch_size=128),
    "cifar100": Recipe(epochs=30, supernet_epochs=10, supernet_batch_size=128),
}
"""Dataset kind (the part of the spec before ``:``) -> its defaults."""

_OTHER = Recipe(epochs=20, supernet_epochs=5)


def recipe_for(data: str) -> Recipe:
    """The defaults for dataset spec `data` (a generic recipe for npz: and folder: data)."""
    return RECIPES.get(data.partition(":")[0], _OTHER)
