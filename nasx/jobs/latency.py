"""A job's latency table (``--latency-table``): loaded once, and the settings it implies.

A table was measured at one resolution (and bit-width); a search or solve that uses it costs its
architectures at those settings unless told otherwise, so the table's ``resolution`` and ``bits``
are the defaults of a request that gives a table.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from nasx.hardware.latency import LatencyTable, load_table

__all__ = ["TableSettings", "table_settings"]


class TableSettings(NamedTuple):
    """The table to price latency with (or None), and the resolution and bits to cost at."""

    table: LatencyTable | None
    resolution: int | None
    bits: tuple[int, ...] | None


def table_settings(
    path: str | Path | None,
    table: LatencyTable | None,
    resolution: int | None,
    bits: tuple[int, ...] | None,
) -> TableSettings:
    """`table`, or the one at `path` loaded (a `LatencyDeviceWarning` if it was measured on another
    device kind), with `resolution` and `bits` defaulting to the table's settings."""
    if table is None and path:
        from nasx.hardware.profile import device_kind  # imports JAX: only when a table is given

        table = load_table(path, device=device_kind())
    if table is None:
        return TableSettings(None, resolution, bits)
    return TableSettings(
        table,
        table.settings.resolution if resolution is None else resolution,
        table.settings.bits if bits is None else bits,
    )
