"""Search-space families, one module each; each exposes ``space(variant, *, bits)`` and ``PRESETS``.

The plain dicts below are how the CLI, tests and benchmarks find them; no registry decorators.
"""

from __future__ import annotations

from search_spaces import mobilenet, nasnet, nb201, resnet

__all__ = ["SPACES", "PRESETS", "SKELETONS", "mobilenet", "nasnet", "nb201", "resnet"]

SPACES = {
    "nasnet": nasnet.space,
    "mobilenet": mobilenet.space,
    "resnet": resnet.space,
    "nb201": nb201.space,
}
"""Family name -> ``space(variant=default, *, bits=...)`` factory."""

PRESETS = {**nasnet.PRESETS, **mobilenet.PRESETS, **resnet.PRESETS, **nb201.PRESETS}
"""Preset name -> `nasx.space.Preset` (each knows its space and variant)."""

SKELETONS = {
    "nasnet": tuple(nasnet.SKELETONS),
    "mobilenet": tuple(mobilenet.SKELETONS),
    "resnet": tuple(resnet.SKELETONS),
    "nb201": tuple(nb201.SKELETONS),
}
"""Family name -> its variants (skeletons); the first is the default."""
