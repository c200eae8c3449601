"""Daily counts in long format (``unique_id, ds, y``): loading, column mapping and validation.

Extra regressors follow one convention: every column whose name starts with ``x_`` (e.g.
``x_temperature``) is a numeric value known for past and future days, which models that use
regressors learn from. A file's own ``x_*`` columns are taken as they are; another column becomes
one through the mapping, e.g. ``columns={"x_temperature": "max_temp_c"}`` (on the command line
``+data.columns.x_temperature=max_temp_c``), and ``{"x_temperature": None}`` leaves one out.

Every problem a user's file can have is reported as one :class:`DataValidationError` that names
the problem, shows an example row and says what to fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from forecasting.io import read_table
from mlops.errors import DataValidationError

REQUIRED_COLUMNS = ("unique_id", "ds", "y")
REGRESSOR_PREFIX = "x_"
_EXAMPLES = 3


def regressor_columns(frame: pd.DataFrame) -> list[str]:
    """The extra-regressor columns of a frame (names starting with ``x_``), sorted."""
    return sorted(str(c) for c in frame.columns if str(c).startswith(REGRESSOR_PREFIX))


def _file_rows(index: pd.Index) -> str:
    """Describe rows by their line number in a CSV with a header (index 0 is line 2)."""
    lines = [str(i + 2) for i in index[:_EXAMPLES]]
    more = f" and {len(index) - _EXAMPLES} more" if len(index) > _EXAMPLES else ""
    return f"line(s) {', '.join(lines)}{more}"


def load_daily_counts(
    path: str | os.PathLike,
    columns: Mapping[str, str | None] | None = None,
    keep: Sequence[str] = (),
    exclude_series: Sequence[str] = (),
    *,
    records: bool = False,
    train_end: str | None = None,
    fill_missing: float | None = None,
) -> pd.DataFrame:
    """Read a file of daily counts (or of call records) and return a validated long-format frame.

    Parameters
    ----------
    path : path-like
        CSV or Parquet file.
    columns, keep, exclude_series, records, train_end, fill_missing
        See :func:`validate_daily_counts`.
    """
    raw = read_table(path)
    return validate_daily_counts(
        raw,
        columns=columns,
        keep=keep,
        exclude_series=exclude_series,
        source=str(path),
        records=records,
        train_end=train_end,
        fill_missing=fill_missing,
    )


def validate_daily_counts(
    raw: pd.DataFrame,
    columns: Mapping[str, str | None] | None = None,
    keep: Sequence[str] = (),
    exclude_series: Sequence[str] = (),
    source: str = "data",
    *,
    records: bool = False,
    train_end: str | None = None,
    fill_missing: float | None = None,
) -> pd.DataFrame:
    """Map columns, parse and check a table of daily counts.

    Checks, each failing with its own message: required columns present, dates parse, counts are
    non-negative numbers, one row per series and day, and no day missing inside a series.

    Parameters
    ----------
    columns : mapping, optional
        Names in the file for ``unique_id``, ``ds`` and ``y``, e.g. ``{"ds": "Actual_dt"}``.
        ``unique_id: None`` treats the whole file as one series called ``all``. Keys starting with
        ``x_`` name extra regressors, e.g. ``{"x_temperature": "max_temp_c"}``; the file's own
        ``x_*`` columns are regressors without a mapping, and ``{"x_name": None}`` drops one.
        Regressors must be numbers on every row; they cannot come with call records.
    keep : sequence of str
        Further columns to carry along (e.g. ``y_expected`` of the synthetic world).
    exclude_series : sequence of str
        Series to leave out (e.g. a trust total or an out-of-area code).
    records : bool
        The file has one row per call with a timestamp in ``ds``: count calls per series and day.
    train_end : date, optional
        Ignore rows after this date (hold them back as test data).
    fill_missing : float, optional
        Value for days missing inside a series (e.g. 0). By default a missing day is an error;
        filled days are counted in ``frame.attrs["filled_days"]`` so the pipeline can log them.

    Returns
    -------
    DataFrame
        ``unique_id`` (str), ``ds`` (datetime64), ``y`` (float), the ``x_*`` regressors (float) and
        the ``keep`` columns, sorted by ``unique_id`` and ``ds``.
    """
    mapping = {name: (columns or {}).get(name, name) for name in REQUIRED_COLUMNS}
    # Call records may well have x_* columns of their own (x_coord): only mapped ones count there.
    regressors = _regressor_mapping(raw, columns or {}, source, own=not records)
    if records:
        mapping["y"] = None  # the count is the number of rows
        if keep:
            raise DataValidationError(f"{source}: `keep` columns cannot be carried through call records")
        if regressors:
            raise DataValidationError(
                f"{source}: regressor column(s) {sorted(regressors)} cannot come with call records (one "
                "row per call); aggregate to daily counts with the regressors as columns, or drop them."
            )
    mapping |= regressors
    wanted = [v for v in mapping.values() if v is not None]
    wanted += [name for name in keep if name not in wanted]
    missing = [name for name in wanted if name not in raw.columns]
    if missing:
        hints = [f"data.columns.{k}=<column>" for k, v in mapping.items() if v in missing]
        fix = f"Map yours with {' '.join(hints)}." if hints else "Add them or drop them from the config."
        raise DataValidationError(
            f"{source}: missing column(s) {missing}; the file has {list(raw.columns)}. {fix}"
        )
    frame = raw[wanted].rename(columns={v: k for k, v in mapping.items() if v is not None})
    frame["unique_id"] = frame["unique_id"].astype(str) if mapping["unique_id"] else "all"
    if exclude_series:
        frame = frame[~frame["unique_id"].isin([str(s) for s in exclude_series])]
    if frame.empty:
        raise DataValidationError(f"{source}: no rows left to forecast (is every series excluded?)")

    dates = pd.to_datetime(frame["ds"], errors="coerce", format="mixed")
    bad = frame.index[dates.isna()]
    if len(bad):
        raise DataValidationError(
            f"{source}: {len(bad)} value(s) in date column {mapping['ds']!r} are not dates, e.g. "
            f"{frame.loc[bad[0], 'ds']!r} at {_file_rows(bad)}. Use ISO dates (YYYY-MM-DD)."
        )
    if records:
        frame = (
            pd.DataFrame({"unique_id": frame["unique_id"], "ds": dates.dt.normalize()})
            .groupby(["unique_id", "ds"], as_index=False)
            .size()
            .rename(columns={"size": "y"})
        )
    else:
        if (dates != dates.dt.normalize()).any():
            raise DataValidationError(
                f"{source}: column {mapping['ds']!r} holds times of day; daily counts need one row per "
                "day (for one row per call, set data.records=true to count calls per day)."
            )
        frame["ds"] = dates
        frame["y"] = _checked_counts(frame, mapping["y"], source)
    if train_end is not None:
        frame = frame[frame["ds"] <= pd.Timestamp(train_end)]
        if frame.empty:
            raise DataValidationError(f"{source}: no rows on or before data.train_end={train_end}")
    # After the cut: days held back as test data may lack values that are not known yet.
    for name in sorted(regressors):
        frame[name] = _checked_regressor(frame, name, regressors[name], source)

    duplicated = frame.index[frame.duplicated(["unique_id", "ds"], keep=False)]
    if len(duplicated):
        first = frame.loc[duplicated[0]]
        raise DataValidationError(
            f"{source}: {len(duplicated)} rows share a (series, date) with another row, e.g. "
            f"{first['unique_id']!r} on {first['ds']:%Y-%m-%d} at {_file_rows(duplicated)}. "
            "Keep one count per series and day (sum or remove the duplicates)."
        )

    frame = frame.sort_values(["unique_id", "ds"], ignore_index=True)
    if fill_missing is None:
        _check_no_missing_days(frame, source)
        frame.attrs["filled_days"] = 0
    else:
        frame = _fill_missing_days(frame, float(fill_missing), source)
    return frame


def _regressor_mapping(
    raw: pd.DataFrame, columns: Mapping[str, str | None], source: str, own: bool = True
) -> dict[str, str]:
    """Regressor name -> column in the file: the file's ``x_*`` columns (if ``own``), then the mapped ones."""
    unknown = [key for key in columns if key not in REQUIRED_COLUMNS and not key.startswith(REGRESSOR_PREFIX)]
    if unknown:
        raise DataValidationError(
            f"{source}: unknown key(s) {unknown} in data.columns: map unique_id, ds and y, and extra "
            f"regressors under names starting with {REGRESSOR_PREFIX!r}, e.g. "
            f"+data.columns.{REGRESSOR_PREFIX}{unknown[0]}=<column>"
        )
    mapped = {name: column for name, column in columns.items() if name.startswith(REGRESSOR_PREFIX)}
    # A file's x_* column renamed by the mapping is taken once, under its new name.
    found = {name: name for name in regressor_columns(raw) if own and name not in mapped.values()}
    return {name: column for name, column in (found | mapped).items() if column is not None}


def _checked_counts(frame: pd.DataFrame, column: str, source: str) -> pd.Series:
    counts = pd.to_numeric(frame["y"], errors="coerce")
    bad = frame.index[counts.isna()]
    if len(bad):
        raise DataValidationError(
            f"{source}: {len(bad)} value(s) in count column {column!r} are missing or not numbers, "
            f"e.g. {frame.loc[bad[0], 'y']!r} at {_file_rows(bad)}. Counts must be numbers >= 0."
        )
    bad = frame.index[counts < 0]
    if len(bad):
        raise DataValidationError(
            f"{source}: {len(bad)} negative count(s) in column {column!r}, e.g. "
            f"{counts[bad[0]]:g} at {_file_rows(bad)}. Counts must be >= 0."
        )
    return counts.astype(float)


def _checked_regressor(frame: pd.DataFrame, name: str, column: str, source: str) -> pd.Series:
    values = pd.to_numeric(frame[name], errors="coerce")
    bad = frame.index[values.isna()]
    if len(bad):
        origin = name if column == name else f"{name} (column {column!r})"
        raise DataValidationError(
            f"{source}: {len(bad)} value(s) of regressor {origin} are missing or not numbers, e.g. "
            f"{frame.loc[bad[0], name]!r} at {_file_rows(bad)}. A regressor needs a number on every day "
            "of history; fill the gaps in the file, or leave it out with "
            f"+data.columns.{name}=null."
        )
    return values.astype(float)


def _check_no_missing_days(frame: pd.DataFrame, source: str) -> None:
    gaps = frame.groupby("unique_id", sort=False)["ds"].diff().dt.days
    bad = frame.index[gaps > 1]
    if len(bad):
        first = bad[0]
        missing_days = int((gaps[bad] - 1).sum())
        after = frame.loc[first - 1, "ds"] + pd.Timedelta(days=1)
        raise DataValidationError(
            f"{source}: {missing_days} day(s) missing inside series, e.g. "
            f"{frame.loc[first, 'unique_id']!r} has no row for {after:%Y-%m-%d}. Add the missing days "
            "(with 0 if there were no calls), or set data.fill_missing=0 to fill them and log how many."
        )


def _fill_missing_days(frame: pd.DataFrame, value: float, source: str) -> pd.DataFrame:
    """Add the days missing inside each series with ``value``; count them in ``attrs``.

    Regressor values of a missing day are unknown, and inventing them would feed the models made-up
    weather (say), so a gap in a file with regressors stays an error.
    """
    spans = frame.groupby("unique_id")["ds"].agg(["min", "max"])
    full = pd.concat(
        [
            pd.DataFrame({"unique_id": uid, "ds": pd.date_range(lo, hi, freq="D")})
            for uid, (lo, hi) in spans.iterrows()
        ],
        ignore_index=True,
    )
    filled = full.merge(frame, on=["unique_id", "ds"], how="left")
    added = int(filled["y"].isna().sum())
    if added and (regressors := regressor_columns(frame)):
        first = filled[filled["y"].isna()].iloc[0]
        raise DataValidationError(
            f"{source}: {added} day(s) missing inside series, e.g. {first['unique_id']!r} on "
            f"{first['ds']:%Y-%m-%d}, and data.fill_missing cannot know their regressor values "
            f"{regressors}: add those days to the file with their counts and regressor values."
        )
    filled["y"] = filled["y"].fillna(value)
    filled.attrs["filled_days"] = added
    return filled


def series_end_dates(frame: pd.DataFrame) -> pd.Series:
    """Last observed date of each series."""
    return frame.groupby("unique_id")["ds"].max()


def future_dates(last_dates: pd.Series, horizon: int) -> pd.DataFrame:
    """Rows ``unique_id, ds`` for the ``horizon`` days after each series' last date."""
    if horizon < 1:
        raise ValueError("horizon must be at least 1 day")
    steps = np.arange(1, horizon + 1)
    return pd.DataFrame(
        {
            "unique_id": np.repeat(last_dates.index.to_numpy(), horizon),
            "ds": (last_dates.to_numpy()[:, None] + steps * np.timedelta64(1, "D")).ravel(),
        }
    )
