"""Proxy scores of NAS-Bench-201 cells, kept on disk as they are computed so a killed run resumes.

`ProxyScoreLog` is what ``nasx benchmark nb201`` scores proxies into: one JSON line per cell and
proxy, reused only under the same setting (images, weights' seed, nasx version).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nasx.errors import NasxError
from nasx.runlog import cut_torn_tail

__all__ = ["ProxyScoreLog", "ScoreLogError"]


class ScoreLogError(NasxError, ValueError):
    """A proxy score log holds a line, other than its last, that is not a score record."""


class ProxyScoreLog:
    """Proxy scores of cells, appended and flushed as they are computed, so a killed run resumes.

    One JSON line per cell and proxy: ``{"cell": "|nor_conv_3x3~0|+...", "proxy": "snip",
    "score": 1.2, "setting": {...}}``. `setting` holds everything else the proxy's score depends on
    (the images, how many, the seed of the weights, the nasx version); a line is reused only under
    the same setting.
    NaN (a proxy that failed on a cell) is written as JSON's ``NaN``. A torn last line (a kill
    mid-write) is cut off on opening.
    """

    def __init__(self, path: str | Path, settings: Mapping[str, Mapping[str, Any]]) -> None:
        """`settings`: proxy name -> its setting; lines of other proxies or settings are ignored."""
        self.path = Path(path)
        self.settings = json.loads(json.dumps(dict(settings)))  # as they read back from the file
        self.scores: dict[tuple[str, str], float] = {}
        if self.path.exists():
            self._read()

    def _read(self) -> None:
        cut_torn_tail(self.path)
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                record = json.loads(line)
                cell, proxy, score = record["cell"], record["proxy"], float(record["score"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                raise ScoreLogError(  # not a kill mid-write: never cut off what follows
                    f"proxy score log {self.path}, line {number}, is not a score record ({e}); "
                    "repair or delete the file (nothing was changed)"
                ) from None
            if proxy in self.settings and record.get("setting") == self.settings[proxy]:
                self.scores[(cell, proxy)] = score

    def missing(self, cells: Sequence[str], proxy: str) -> list[str]:
        """The cells (of `cells`, in order) with no stored score for `proxy` under its setting."""
        return [c for c in cells if (c, proxy) not in self.scores]

    def add(self, cells: Sequence[str], scores: Sequence[Mapping[str, float]]) -> None:
        """Store one mapping proxy -> score per cell, flushed to disk before returning."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            for cell, row in zip(cells, scores, strict=True):
                for proxy, score in row.items():
                    record = {"cell": cell, "proxy": proxy, "score": float(score)}
                    f.write(json.dumps({**record, "setting": self.settings[proxy]}) + "\n")
                    self.scores[(cell, proxy)] = float(score)
            f.flush()
            os.fsync(f.fileno())

    def get(self, cells: Sequence[str], proxy: str) -> np.ndarray:
        """The stored scores of `cells` for `proxy`, in order (KeyError if one is missing)."""
        return np.array([self.scores[(c, proxy)] for c in cells], dtype=float)
