"""Elastic flax.nnx layers shared by every supernet (masks, centre-cropped kernels, fake quant)."""

from __future__ import annotations

from nasx.nn.conv_bn import ConvBN
from nasx.nn.layers import (
    ACTIVATIONS,
    BatchNorm,
    BatchNormContext,
    Conv,
    Dense,
    SqueezeExcite,
    avg_pool,
    global_avg_pool,
    hard_sigmoid,
    hard_swish,
    kernel_mask,
    max_pool,
    normal_init,
    prefix_mask,
    relu,
    relu6,
    swish,
)
from nasx.nn.quant import dequantize, fake_quant, quantize
from nasx.nn.stack import Stack

__all__ = [
    "ACTIVATIONS",
    "BatchNorm",
    "BatchNormContext",
    "Conv",
    "ConvBN",
    "Dense",
    "SqueezeExcite",
    "Stack",
    "avg_pool",
    "dequantize",
    "fake_quant",
    "global_avg_pool",
    "hard_sigmoid",
    "hard_swish",
    "kernel_mask",
    "max_pool",
    "normal_init",
    "prefix_mask",
    "quantize",
    "relu",
    "relu6",
    "swish",
]
