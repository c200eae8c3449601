"""Daily history for projections: calls per area and day, and annual totals of complete years."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from forecasting.data import CountChecks, validate_daily_counts
from forecasting.projection.daily_shape import days_in_year
from mlops.errors import DataValidationError
from mlops.tables import ReadOptions, file_lines, near_misses, parse_dates, separator_hint, shown

HISTORY_COLUMNS = ("area", "ds", "y")


def daily_history(
    raw: pd.DataFrame,
    columns: Mapping[str, str] | None = None,
    areas: Sequence[str] = (),
    source: str = "history",
    read: Mapping | ReadOptions | None = None,
    checks: Mapping | CountChecks | None = None,
) -> pd.DataFrame:
    """Calls per area and day, ``area, ds, y``, summing rows that share an area and day (e.g. categories).

    Parameters
    ----------
    raw : DataFrame
        The user's table.
    columns : mapping, optional
        Names in the table for ``area``, ``ds`` and ``y``.
    areas : sequence of str
        Areas to keep (empty keeps all), e.g. to leave out a trust total stored beside its areas.
    read : mapping or ReadOptions, optional
        The reader options the table was read with (``history.read``): its ``date_format``.
    checks : mapping or CountChecks, optional
        The plausibility screen (``history.checks``), applied to the summed daily counts.
    """
    mapping = {name: (columns or {}).get(name, name) for name in HISTORY_COLUMNS}
    missing = [column for column in mapping.values() if column not in raw.columns]
    if missing:
        hints = " ".join(f"history.columns.{k}=<column>" for k, v in mapping.items() if v in missing)
        raise DataValidationError(
            f"{source}: missing column(s) {missing}; the file has {list(raw.columns)}. Map yours with {hints}"
            f"{near_misses(missing, raw.columns)}{separator_hint(raw, 'history.read')}"
        )
    frame = raw[list(mapping.values())].set_axis(list(mapping), axis=1)
    frame["area"] = frame["area"].astype(str)
    if areas:
        unknown = sorted(set(map(str, areas)) - set(frame["area"]))
        if unknown:
            raise DataValidationError(
                f"{source}: no rows for area(s) {unknown}; it has {sorted(frame['area'].unique())}"
            )
        frame = frame[frame["area"].isin([str(a) for a in areas])]
    counts = pd.to_numeric(frame["y"], errors="coerce")
    bad = frame.index[counts.isna() | (counts < 0) | counts.isin([np.inf, -np.inf])]
    if len(bad):
        raise DataValidationError(
            f"{source}: calls must be finite numbers >= 0, found {shown(frame.loc[bad[0], 'y'])} in column "
            f"{mapping['y']!r} at {file_lines(bad)}"
        )
    # Dates are parsed here, before rows are summed, so that a bad one is reported with its line.
    options = ReadOptions.from_config(read, "history.read")
    what = f"date column {mapping['ds']!r}"
    dates = parse_dates(frame["ds"], options.date_format, what=what, source=source, setting="history.read")
    if dates.isna().any():
        bad = frame.index[dates.isna()]
        raise DataValidationError(f"{source}: {len(bad)} value(s) in {what} are missing at {file_lines(bad)}")
    # Each summed day keeps the line of its largest row: where an implausible count comes from.
    by_day = frame.assign(y=counts, ds=dates).groupby(["area", "ds"])["y"]
    frame = by_day.sum().reset_index().set_axis(by_day.idxmax().to_numpy())
    daily = validate_daily_counts(
        frame,
        columns={"unique_id": "area"},
        source=source,
        checks=checks,
        setting="history",
        exclude_fix="leave it out by listing only the other areas in history.areas",
    )
    return daily.rename(columns={"unique_id": "area"})


def annual_history(daily: pd.DataFrame) -> pd.DataFrame:
    """Calls per area and complete calendar year, ``area, year, calls``.

    A year counts only if the area has every one of its days: a part year would look like a fall
    in demand and bend the trend.
    """
    year = daily["ds"].dt.year
    frame = (
        daily.assign(year=year)
        .groupby(["area", "year"], as_index=False)
        .agg(calls=("y", "sum"), days=("y", "size"))
    )
    full = frame["days"] == frame["year"].map(days_in_year)
    if not full.any():
        raise DataValidationError("the history has no complete calendar year; the rates need whole years")
    return frame.loc[full, ["area", "year", "calls"]].reset_index(drop=True)
