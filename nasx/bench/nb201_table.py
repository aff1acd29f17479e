"""The NAS-Bench-201 table: trained accuracies of all 15,625 cells, as ground truth for benchmarks.

The data is third party (Dong & Yang's benchmark, extracted by others) and never ships with nasx:
`load_table` takes the path of a folder holding ``nb201.csv`` or of a CSV with the same columns.
Only the architecture strings and the accuracy columns of one dataset are read:

================  =========================  ===============================================
dataset           reported (test) column     searched-on (validation) column
================  =========================  ===============================================
cifar10           ``cifar10_test_acc``       ``bw_cifar10valid_valid_acc``
cifar100          ``cifar100_test_acc``      none in the table: the test column is used
imagenet16-120    ``imagenet16_test_acc``    none in the table: the test column is used
================  =========================  ===============================================

Protocol (NB201 paper, Sec. 5): a search is told the *validation* accuracy of what it queries,
judges its best-so-far by it, and reports the *test* accuracy of that best-by-validation cell. For
CIFAR-10 the validation number is the ``cifar10-valid`` run's accuracy on the 25k ``x-valid``
split and the test number the full-train ``cifar10`` run on the 10k test set, exactly as in the
paper's Table 5. The table holds no validation accuracy for CIFAR-100 and ImageNet16-120, so
there the search is told the test accuracy itself (an oracle protocol, slightly optimistic);
`Nb201Table.search_column` says which column was used.

The table is for judging: a proxy or predictor must never read it.

References:
  Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture Search",
  ICLR 2020.
"""

from __future__ import annotations

import csv
import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasx.errors import DatasetError
from nasx.space import Arch

__all__ = ["DATASETS", "TABLE_FILE", "ARCH_COLUMN", "Nb201Table", "Nb201Lookup", "load_table"]

TABLE_FILE = "nb201.csv"
"""File name looked for when `load_table` is given a folder."""
ARCH_COLUMN = "arch_str"
DATASETS: dict[str, tuple[str, str | None]] = {
    "cifar10": ("cifar10_test_acc", "bw_cifar10valid_valid_acc"),
    "cifar100": ("cifar100_test_acc", None),
    "imagenet16-120": ("imagenet16_test_acc", None),
}
"""Dataset -> (test accuracy column, validation accuracy column or None), accuracies in %."""


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class Nb201Table:
    """Accuracies (%) of one NB201 dataset, one row per cell, in the table's order.

    Attributes:
      path: the CSV file read.
      dataset: "cifar10", "cifar100" or "imagenet16-120".
      arch_strings: NB201 arch strings, distinct.
      test_acc: the reported accuracy of each row.
      valid_acc: the validation accuracy searches are told, or None if the table has none.
      test_column, valid_column: the CSV columns they came from.
    """

    path: Path
    dataset: str
    arch_strings: tuple[str, ...]
    test_acc: np.ndarray
    valid_acc: np.ndarray | None
    test_column: str
    valid_column: str | None

    def __len__(self) -> int:
        return len(self.arch_strings)

    @property
    def search_acc(self) -> np.ndarray:
        """What a simulated search is told: validation accuracy where the table has it, else test."""
        return self.test_acc if self.valid_acc is None else self.valid_acc

    @property
    def search_column(self) -> str:
        return self.test_column if self.valid_column is None else self.valid_column

    @functools.cached_property
    def _rows(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.arch_strings)}

    def row(self, arch_string: str) -> int:
        """Row of an NB201 arch string, e.g. ``|nor_conv_3x3~0|+|...|``.

        Raises:
          DatasetError: the string is not in the table.
        """
        row = self._rows.get(arch_string.strip())
        if row is None:
            raise DatasetError(f'NB201 table "{self.path}": no row for arch string "{arch_string}"')
        return row

    def lookup(self, parse: Callable[[str], Arch]) -> Nb201Lookup:
        """Index the rows by `Arch`, parsing every arch string with `parse`.

        Args:
          parse: NB201 arch string -> `Arch` of the space searched (``search_spaces.nb201``'s
            ``from_string``, bound to the space). Injected because nasx does not import the
            search spaces.

        Raises:
          DatasetError: two rows parse to the same architecture.
        """
        rows: dict[Arch, int] = {}
        for i, text in enumerate(self.arch_strings):
            arch = parse(text)
            if arch in rows:
                raise DatasetError(
                    f'NB201 table "{self.path}": arch strings "{self.arch_strings[rows[arch]]}" and '
                    f'"{text}" are the same architecture'
                )
            rows[arch] = i
        return Nb201Lookup(self, rows)


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class Nb201Lookup:
    """An `Nb201Table` indexed by `Arch` (see `Nb201Table.lookup`); the simulated training.

    Calling it with an architecture returns ``(searched-on accuracy, test accuracy)``.
    """

    table: Nb201Table
    rows: Mapping[Arch, int]

    def row(self, arch: Arch) -> int:
        """Row of `arch`; DatasetError if the table does not hold it."""
        row = self.rows.get(arch)
        if row is None:
            raise DatasetError(
                f'NB201 table "{self.table.path}" has no row for architecture {arch.to_json()}'
            )
        return row

    def __call__(self, arch: Arch) -> tuple[float, float]:
        i = self.row(arch)
        return float(self.table.search_acc[i]), float(self.table.test_acc[i])

    def test_acc(self, archs: Iterable[Arch]) -> np.ndarray:
        """Test accuracies (%) of `archs`, in order."""
        return self.table.test_acc[[self.row(a) for a in archs]]


def _csv_path(path: str | Path) -> Path:
    given = Path(path).expanduser()
    expected = f"a CSV file or a folder holding {TABLE_FILE}"
    if not given.exists():
        raise DatasetError(f'NB201 table "{given}" does not exist; expected {expected}')
    if given.is_dir():
        if not (given / TABLE_FILE).is_file():
            raise DatasetError(f'NB201 table folder "{given}" has no {TABLE_FILE}; expected {expected}')
        return given / TABLE_FILE
    return given


def _floats(path: Path, column: str, values: list[str]) -> np.ndarray:
    out = np.empty(len(values))
    for i, text in enumerate(values):
        try:
            out[i] = float(text)
        except ValueError:
            out[i] = math.nan
        if not math.isfinite(out[i]):
            raise DatasetError(
                f'NB201 table "{path}": column {column}, data row {i + 1}: "{text}" is not an accuracy; '
                "expected a finite number (%)"
            )
    return out


def load_table(path: str | Path, dataset: str = "cifar10") -> Nb201Table:
    """Read the arch strings and the accuracy columns of `dataset` (see `DATASETS`).

    Args:
      path: a CSV file, or a folder holding ``nb201.csv``.
      dataset: "cifar10", "cifar100" or "imagenet16-120".

    Raises:
      DatasetError: the path does not exist, is not a readable CSV, lacks a needed column, or has
        a blank or non-numeric accuracy or a repeated arch string (the message names the path).
    """
    if dataset not in DATASETS:
        raise DatasetError(f'NB201 dataset "{dataset}" is unknown; expected one of {", ".join(DATASETS)}')
    file = _csv_path(path)
    test_column, valid_column = DATASETS[dataset]
    try:
        with file.open(newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            needed = [c for c in (ARCH_COLUMN, test_column) if c not in header]
            if needed:
                raise DatasetError(
                    f'NB201 table "{file}" lacks column(s) {", ".join(needed)} (needed for {dataset}); '
                    f"expected a CSV with columns {ARCH_COLUMN}, {test_column}"
                    + (f", optionally {valid_column}" if valid_column else "")
                    + (
                        f"; found {', '.join(header[:8])}{', ...' if len(header) > 8 else ''}"
                        if header
                        else ""
                    )
                )
            wanted = [ARCH_COLUMN, test_column] + ([valid_column] if valid_column in header else [])
            columns: dict[str, list[str]] = {c: [] for c in wanted}
            for record in reader:
                for c in wanted:
                    columns[c].append(record[c] or "")
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f'NB201 table "{file}" could not be read as CSV: {e}') from e
    strings = tuple(s.strip() for s in columns[ARCH_COLUMN])
    if not strings:
        raise DatasetError(f'NB201 table "{file}" has no data rows; expected one row per NB201 cell')
    seen: set[str] = set()
    for text in strings:
        if text in seen:
            raise DatasetError(f'NB201 table "{file}": arch string "{text}" appears more than once')
        seen.add(text)
    has_valid = valid_column in columns
    return Nb201Table(
        path=file,
        dataset=dataset,
        arch_strings=strings,
        test_acc=_floats(file, test_column, columns[test_column]),
        valid_acc=_floats(file, valid_column, columns[valid_column]) if has_valid else None,
        test_column=test_column,
        valid_column=valid_column if has_valid else None,
    )
