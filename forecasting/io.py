"""Reading user tables and writing outputs so that a failure never leaves a truncated file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pandas as pd

from mlops.errors import DataValidationError


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV (optionally compressed) or Parquet file, with one clear error if it cannot be read."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataValidationError(f"{path}: file not found (check the path, relative to {Path.cwd()})")
    suffixes = "".join(path.suffixes).lower()
    try:
        if suffixes.endswith(".parquet") or suffixes.endswith(".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        kind = "Parquet" if ".parq" in suffixes or ".pq" in suffixes else "CSV"
        raise DataValidationError(f"{path}: not a readable {kind} file ({error})") from error


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


def read_population(path: str | os.PathLike) -> pd.DataFrame:
    """Read a population table with at least ``year, age_band, population``."""
    table = read_table(path)
    missing = [column for column in POPULATION_COLUMNS if column not in table.columns]
    if missing:
        raise DataValidationError(
            f"{path}: population table lacks column(s) {missing}; it needs {list(POPULATION_COLUMNS)}"
        )
    return table
