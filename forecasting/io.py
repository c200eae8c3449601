"""Reading user tables (through :mod:`mlops.tables`) and writing outputs that are never truncated."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from mlops.errors import DataValidationError
from mlops.tables import ReadOptions, file_lines, read_table, shown

__all__ = ["POPULATION_COLUMNS", "ReadOptions", "atomic_write", "read_population", "read_table"]


def atomic_write(path: str | os.PathLike, write: Callable[[IO], object], mode: str = "w") -> Path:
    """Write through a temporary file in the same folder and rename it into place.

    Readers see either the old file or the complete new one, never a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, mode) as stream:
            write(stream)
        os.chmod(temporary, 0o666 & ~_current_umask())  # mkstemp creates 0600; keep usual rights
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


POPULATION_COLUMNS = ("year", "age_band", "population")


def read_population(path: str | os.PathLike, options: Mapping | ReadOptions | None = None) -> pd.DataFrame:
    """Read a population table with at least ``year, age_band, population``, every population > 0.

    Parameters
    ----------
    path : path-like
        CSV or Parquet file.
    options : mapping or ReadOptions, optional
        Reader options (see :func:`mlops.tables.read_table`).
    """
    table = read_table(path, options)
    missing = [column for column in POPULATION_COLUMNS if column not in table.columns]
    if missing:
        raise DataValidationError(
            f"{path}: population table lacks column(s) {missing}; it needs {list(POPULATION_COLUMNS)}"
        )
    numbers = pd.to_numeric(table["population"], errors="coerce")
    bad = table.index[~np.isfinite(numbers.to_numpy(dtype=float)) | (numbers <= 0).to_numpy()]
    if len(bad):
        row = table.loc[bad[0]]
        raise DataValidationError(
            f"{path}: population {shown(row['population'])} for {row['year']} {row['age_band']} at "
            f"{file_lines(bad)} is not a positive number; every band needs residents (> 0)"
        )
    return table.assign(population=numbers.astype(float))
