"""Hand-designed baselines of the Fashion-MNIST study, as nnx modules `nasx.fit.fit` trains.

* `CifarResNet`: the CIFAR ResNet of He et al. (2016, Sec. 4.2): a 3x3 stem, three stages of
  ``n`` basic blocks (two 3x3 conv + BN, ReLU) at widths ``w, 2w, 4w`` (16, 32, 64 for ResNet-20,
  ``n = 3``), stride 2 entering stages 2 and 3 with the paper's parameter-free shortcut (option A:
  subsample, zero-pad the new channels), global average pooling and a linear classifier.
  `resnet_for_budget` scales its width (then depth) to a MAC budget.
* `TwoConvNet`: the "2 Conv <100K parameters" network of the Fashion-MNIST benchmark table
  (@hardmaru, 92.47 %): 5x5 conv 32 - 2x2 max pool - 5x5 conv 64 - 2x2 max pool - linear, on the
  grey image. Batch norm follows each conv (instead of a bias) so the shared SGD recipe (peak
  learning rate 0.1) trains it; it folds into the conv at inference, so the deployed network is the
  original one (83,466 parameters).

Costs are analytic (`nasx.costs.conv2d` and `dense`, the convention of the search spaces: MACs of
conv and linear layers at batch 1; parameters include BN scale and shift), so `resnet_costs` and
`two_conv_costs` price a network without building it; the tests check them against the built
modules' parameter counts.

References:
  He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.
  Xiao, Rasul & Vollgraf, "Fashion-MNIST", 2017, and its README's benchmark table
  (``/usr/share/doc/dataset-fashion-mnist/README.md.gz``; hardmaru/pytorch_notebooks
  ``pytorch_tiny_custom_mnist_adam.ipynb``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from nasx.budget import Budget
from nasx.costs import Costs, conv2d, dense
from nasx.nn.conv_bn import ConvBN
from nasx.nn.layers import BatchNorm, BatchNormContext, Conv, Dense, global_avg_pool, max_pool, relu
from nasx.supernet import name_batchnorms

__all__ = [
    "ResNetShape",
    "CifarResNet",
    "resnet_costs",
    "resnet_for_budget",
    "TwoConvNet",
    "two_conv_costs",
    "RESNET20",
]


class ResNetShape(NamedTuple):
    """A CIFAR ResNet: base width `width` (stages `width`, 2x, 4x) and `blocks` per stage."""

    width: int
    blocks: int

    @property
    def name(self) -> str:
        depth = 6 * self.blocks + 2
        return f"resnet-{depth}" + ("" if self.width == 16 else f"-w{self.width}")


RESNET20 = ResNetShape(16, 3)
"""ResNet-20 (He et al. 2016, Table 6): 0.27M parameters."""


def _conv_bn(
    c_in: int, c_out: int, kernel: int, *, stride: int = 1, act: str | None, rngs: nnx.Rngs
) -> ConvBN:
    """Conv + batch norm storing its statistics (a standalone layer: `fit` re-calibrates them)."""
    return ConvBN(Conv(c_in, c_out, kernel, stride=stride, rngs=rngs), BatchNorm(c_out, stats=True), act)


class BasicBlock(nnx.Module):
    """Two 3x3 conv + BN, ReLU after the first and after the sum with the shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int, *, rngs: nnx.Rngs) -> None:
        self.conv1 = _conv_bn(c_in, c_out, 3, stride=stride, act="relu", rngs=rngs)
        self.conv2 = _conv_bn(c_out, c_out, 3, act=None, rngs=rngs)
        self.stride, self.pad = stride, c_out - c_in

    def __call__(self, x: jax.Array, ctx: BatchNormContext | None) -> jax.Array:
        shortcut = x[:, :: self.stride, :: self.stride, :] if self.stride > 1 else x
        if self.pad:  # option A: the new channels of the shortcut are zeros
            left = self.pad // 2
            shortcut = jnp.pad(shortcut, ((0, 0), (0, 0), (0, 0), (left, self.pad - left)))
        return relu(self.conv2(self.conv1(x, ctx), ctx) + shortcut)


class CifarResNet(nnx.Module):
    """He et al.'s CIFAR ResNet of `shape`, on RGB input, called as ``model(x, ctx)``."""

    def __init__(self, shape: ResNetShape, num_classes: int = 10, *, rngs: nnx.Rngs) -> None:
        w = shape.width
        self.stem = _conv_bn(3, w, 3, act="relu", rngs=rngs)
        blocks, c_in = [], w
        for stage, c_out in enumerate((w, 2 * w, 4 * w)):
            for j in range(shape.blocks):
                blocks.append(BasicBlock(c_in, c_out, 2 if stage and not j else 1, rngs=rngs))
                c_in = c_out
        self.blocks = nnx.List(blocks)
        self.classifier = Dense(c_in, num_classes, rngs=rngs)
        name_batchnorms(self)

    def __call__(self, x: jax.Array, ctx: BatchNormContext | None = None) -> jax.Array:
        x = self.stem(x, ctx)
        for block in self.blocks:
            x = block(x, ctx)
        return self.classifier(global_avg_pool(x))


def resnet_costs(shape: ResNetShape, image_size: int = 28, num_classes: int = 10) -> Costs:
    """Analytic costs of `CifarResNet(shape)` on `image_size` px RGB images."""
    w, side = shape.width, image_size
    total = conv2d(3, w, 3, side)
    c_in = w
    for stage, c_out in enumerate((w, 2 * w, 4 * w)):
        for j in range(shape.blocks):
            stride = 2 if stage and not j else 1
            total = total + conv2d(c_in, c_out, 3, side, stride=stride)
            side = -(-side // stride)
            total = total + conv2d(c_out, c_out, 3, side)
            c_in = c_out
    return total + dense(c_in, num_classes)


def resnet_for_budget(budget: Budget, image_size: int = 28, widths: range = range(4, 129)) -> ResNetShape:
    """The widest ResNet-20 (3 blocks per stage) that `budget` admits at `image_size` px; shallower
    (2, then 1 block per stage) only if no width of `widths` fits at depth 20.

    Raises:
      ValueError: not even the narrowest, shallowest network fits.
    """
    for blocks in (3, 2, 1):
        fitting = [w for w in widths if budget.admits(resnet_costs(ResNetShape(w, blocks), image_size))]
        if fitting:
            return ResNetShape(max(fitting), blocks)
    raise ValueError(f"no CIFAR ResNet of width >= {widths[0]} fits {budget} at {image_size} px")


class TwoConvNet(nnx.Module):
    """The benchmark table's "2 Conv <100K parameters" network (see the module docstring)."""

    def __init__(self, num_classes: int = 10, image_size: int = 28, *, rngs: nnx.Rngs) -> None:
        self.conv1 = _conv_bn(1, 32, 5, act="relu", rngs=rngs)
        self.conv2 = _conv_bn(32, 64, 5, act="relu", rngs=rngs)
        side = image_size // 4
        self.classifier = Dense(64 * side * side, num_classes, rngs=rngs)
        name_batchnorms(self)

    def __call__(self, x: jax.Array, ctx: BatchNormContext | None = None) -> jax.Array:
        x = x[..., :1]  # nasx feeds grey images as 3 equal channels; the network reads one
        x = max_pool(self.conv1(x, ctx), 2, 2, "valid")
        x = max_pool(self.conv2(x, ctx), 2, 2, "valid")
        return self.classifier(x.reshape(x.shape[0], -1))


def two_conv_costs(image_size: int = 28, num_classes: int = 10) -> Costs:
    """Analytic costs of `TwoConvNet` (batch norm included; 83,562 parameters at 28 px)."""
    side = image_size // 2
    return conv2d(1, 32, 5, image_size) + conv2d(32, 64, 5, side) + dense(64 * (side // 2) ** 2, num_classes)
