"""Daily counts in long format (``unique_id, ds, y``): loading, column mapping and validation.

Extra regressors follow one convention: every column whose name starts with ``x_`` (e.g.
``x_temperature``) is a numeric value known for past and future days, which models that use
regressors learn from. A file's own ``x_*`` columns are taken as they are; another column becomes
one through the mapping, e.g. ``columns={"x_temperature": "max_temp_c"}`` (on the command line
``+data.columns.x_temperature=max_temp_c``), and ``{"x_temperature": None}`` leaves one out.

Every problem a user's file can have is reported as one :class:`DataValidationError` that names
the problem, shows an example row and says what to fix. Dates are ISO unless the read options give
their format (:func:`mlops.tables.parse_dates` never guesses), and counts pass a plausibility
screen (:class:`CountChecks`) so that a typo such as 1e12 cannot train and register a model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlops.errors import ConfigError, DataValidationError
from mlops.tables import (
    ReadOptions,
    check_date_range,
    file_lines,
    near_misses,
    number_hint,
    parse_dates,
    read_table,
    separator_hint,
    shown,
)

REQUIRED_COLUMNS = ("unique_id", "ds", "y")
REGRESSOR_PREFIX = "x_"
LEAF_ID = "unique_id (from hierarchy.levels)"  # the column of joined level values, as messages name it


def regressor_columns(frame: pd.DataFrame) -> list[str]:
    """The extra-regressor columns of a frame (names starting with ``x_``), sorted."""
    return sorted(str(c) for c in frame.columns if str(c).startswith(REGRESSOR_PREFIX))


_file_rows = file_lines


@dataclass(frozen=True)
class CountChecks:
    """The plausibility screen for daily counts (the ``checks:`` block of a data config).

    A count is refused when it exceeds ``max_ratio_to_median * max(median, median_floor)`` of its
    own series. Real ambulance series stay within about 3x their median (SWAST's busiest day is
    1.8x, a sparse out-of-area series 3.7x), so the default 20 refuses only typos and unit
    mistakes (a 1e12, counts pasted in thousands). The floor keeps sparse series from being
    refused for an ordinary busy day: with a median of 0-2 calls a day, a day of 30 is plausible,
    and 20 x 5 = 100 still is not reached by chance (Poisson with mean 5 exceeds 30 with
    probability below 1e-12).

    Parameters
    ----------
    max_ratio_to_median : float or None
        None switches the screen off.
    median_floor : float
        Smallest median the ratio is applied to.
    """

    max_ratio_to_median: float | None = 20.0
    median_floor: float = 5.0

    @classmethod
    def from_config(cls, checks: Mapping | CountChecks | None, setting: str = "data.checks") -> CountChecks:
        """Check the ``checks`` block of a config, naming ``<setting>.<key>`` for a bad value."""
        if isinstance(checks, CountChecks):
            return checks
        given = dict(checks or {})
        unknown = sorted(set(map(str, given)) - {"max_ratio_to_median", "median_floor"})
        if unknown:
            raise ConfigError(
                f"{setting}: unknown key(s) {unknown}; the screen takes max_ratio_to_median and median_floor"
            )
        ratio = given.get("max_ratio_to_median", cls.max_ratio_to_median)
        floor = given.get("median_floor", cls.median_floor)
        try:
            ratio = None if ratio is None else float(ratio)
            floor = float(floor)
        except (TypeError, ValueError) as error:
            raise ConfigError(
                f"{setting}: max_ratio_to_median ({ratio!r}) and median_floor ({floor!r}) must be numbers "
                "(max_ratio_to_median=null switches the screen off)"
            ) from error
        if ratio is not None and not (np.isfinite(ratio) and ratio > 1):
            raise ConfigError(
                f"{setting}.max_ratio_to_median={ratio:g} must be a number above 1, or null to switch the "
                "screen off"
            )
        if not (np.isfinite(floor) and floor >= 0):
            raise ConfigError(f"{setting}.median_floor={floor:g} must be a number >= 0")
        return cls(ratio, floor)


def load_daily_counts(
    path: str | os.PathLike,
    columns: Mapping[str, str | None] | None = None,
    keep: Sequence[str] = (),
    exclude_series: Sequence[str] = (),
    *,
    records: bool = False,
    train_end: str | None = None,
    fill_missing: float | None = None,
    read: Mapping | ReadOptions | None = None,
    checks: Mapping | CountChecks | None = None,
    setting: str = "data",
) -> pd.DataFrame:
    """Read a file of daily counts (or of call records) and return a validated long-format frame.

    Parameters
    ----------
    path : path-like
        CSV or Parquet file.
    columns, keep, exclude_series, records, train_end, fill_missing, checks, setting
        See :func:`validate_daily_counts`.
    read : mapping or ReadOptions, optional
        Reader options (the config's ``<setting>.read``; see :func:`mlops.tables.read_table`).
    """
    options = ReadOptions.from_config(read, f"{setting}.read")
    raw = read_table(path, options)
    return validate_daily_counts(
        raw,
        columns=columns,
        keep=keep,
        exclude_series=exclude_series,
        source=str(path),
        records=records,
        train_end=train_end,
        fill_missing=fill_missing,
        date_format=options.date_format,
        checks=checks,
        setting=setting,
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
    date_format: str | None = None,
    checks: Mapping | CountChecks | None = None,
    setting: str = "data",
    exclude_fix: str | None = None,
) -> pd.DataFrame:
    """Map columns, parse and check a table of daily counts.

    Checks, each failing with its own message: required columns present, dates ISO (or in
    ``date_format``), counts are finite non-negative numbers, no series all zeros, no count beyond
    the plausibility screen, one row per series and day, and no day missing inside a series.

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
    date_format : str, optional
        ``strftime`` format of the dates (e.g. ``%d/%m/%Y``); None: ISO only.
    checks : mapping or CountChecks, optional
        The plausibility screen; None uses the defaults.
    setting : str
        Config key of this table (``data``, ``history``), named in the fixes messages suggest.
    exclude_fix : str, optional
        How to leave an all-zero series out, with ``{uid}`` for its name; default
        ``<setting>.exclude_series``.

    Returns
    -------
    DataFrame
        ``unique_id`` (str), ``ds`` (datetime64), ``y`` (float), the ``x_*`` regressors (float) and
        the ``keep`` columns, sorted by ``unique_id`` and ``ds``.
    """
    mapping = {name: (columns or {}).get(name, name) for name in REQUIRED_COLUMNS}
    if isinstance(mapping["unique_id"], list | tuple):  # leaves of a hierarchy: named by several columns
        raw, mapping["unique_id"] = _joined_ids(raw, [str(c) for c in mapping["unique_id"]], source), LEAF_ID
    if not raw.index.is_unique:  # rows are named by index (= file line - 2): make them distinct
        raw = raw.reset_index(drop=True)
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
            f"{near_misses(missing, raw.columns)}{separator_hint(raw, f'{setting}.read')}"
        )
    frame = raw[wanted].rename(columns={v: k for k, v in mapping.items() if v is not None})
    if mapping["unique_id"]:
        unnamed = frame.index[frame["unique_id"].isna()]
        if len(unnamed):
            raise DataValidationError(
                f"{source}: {len(unnamed)} row(s) have no series name in column {mapping['unique_id']!r} "
                f"(missing or empty) at {_file_rows(unnamed)}; name their series or remove those rows"
            )
    frame["unique_id"] = frame["unique_id"].astype(str) if mapping["unique_id"] else "all"
    if exclude_series:
        unknown = sorted({str(s) for s in exclude_series} - set(frame["unique_id"]))
        if unknown:
            have = sorted(frame["unique_id"].unique())
            raise DataValidationError(
                f"{source}: {setting}.exclude_series names series {unknown} that the file does not have; it "
                f"has {have[:12]}{' ...' if len(have) > 12 else ''}. Check the spelling"
            )
        frame = frame[~frame["unique_id"].isin([str(s) for s in exclude_series])]
    if frame.empty:
        raise DataValidationError(f"{source}: no rows left to forecast (is every series excluded?)")

    checks = CountChecks.from_config(checks, f"{setting}.checks")
    what = f"date column {mapping['ds']!r}"
    dates = parse_dates(frame["ds"], date_format, what=what, source=source, setting=f"{setting}.read")
    bad = frame.index[dates.isna()]
    if len(bad):
        raise DataValidationError(
            f"{source}: {len(bad)} value(s) in {what} are missing (not dates) at {_file_rows(bad)}; "
            "every row needs its day: fill them in or remove those rows"
        )
    fix = f"fix them in the file (or their format, {setting}.read.date_format)"
    check_date_range(dates, frame["ds"], what=what, source=source, fix=fix)
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
        frame["y"] = _checked_counts(frame, mapping["y"], source, setting)
    if train_end is not None:
        try:
            cut = pd.Timestamp(str(train_end))
        except ValueError as error:
            raise ConfigError(
                f"{setting}.train_end={train_end!r} is not a date; write it as YYYY-MM-DD"
            ) from error
        frame = frame[frame["ds"] <= cut]
        if frame.empty:
            raise DataValidationError(f"{source}: no rows on or before data.train_end={train_end}")
    exclude_fix = (
        exclude_fix or f"leave it out with '{setting}.exclude_series=[{{uid}}]' (beside any already excluded)"
    )
    _screen_counts(frame, checks, source, setting, exclude_fix, records)
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


def _joined_ids(raw: pd.DataFrame, id_columns: list[str], source: str) -> pd.DataFrame:
    """``raw`` with a series name per row: the values of ``id_columns`` joined by ``/`` (``city/C2``)."""
    missing = [c for c in id_columns if c not in raw.columns]
    if missing:
        raise DataValidationError(
            f"{source}: missing column(s) {missing} named in hierarchy.levels; the file has "
            f"{list(raw.columns)}{near_misses(missing, raw.columns)}"
        )
    blank = raw.index[raw[id_columns].isna().any(axis=1)]
    if len(blank):
        raise DataValidationError(
            f"{source}: {len(blank)} row(s) have no value in {id_columns} at {_file_rows(blank)}; every "
            "row of a hierarchy needs its value of each level column"
        )
    values = [raw[c].astype(str) for c in id_columns]
    return raw.assign(**{LEAF_ID: values[0].str.cat(values[1:], sep="/") if values[1:] else values[0]})


def _checked_counts(frame: pd.DataFrame, column: str, source: str, setting: str = "data") -> pd.Series:
    counts = pd.to_numeric(frame["y"], errors="coerce")
    bad = frame.index[counts.isna()]
    if len(bad):
        example = frame.loc[bad[0], "y"]
        hint = number_hint(example, f"{setting}.read")
        raise DataValidationError(
            f"{source}: {len(bad)} value(s) in count column {column!r} are missing or not numbers, "
            f"e.g. {shown(example)} at {_file_rows(bad)}. Counts must be numbers >= 0{hint or '.'}"
        )
    bad = frame.index[counts < 0]
    if len(bad):
        raise DataValidationError(
            f"{source}: {len(bad)} negative count(s) in column {column!r}, e.g. "
            f"{counts[bad[0]]:g} at {_file_rows(bad)}. Counts must be >= 0."
        )
    bad = frame.index[~np.isfinite(counts.to_numpy(dtype=float))]
    if len(bad):
        raise DataValidationError(
            f"{source}: {len(bad)} infinite count(s) in column {column!r}, e.g. "
            f"{shown(frame.loc[bad[0], 'y'])} at {_file_rows(bad)}. Counts must be finite numbers >= 0."
        )
    return counts.astype(float)


def _screen_counts(
    frame: pd.DataFrame, checks: CountChecks, source: str, setting: str, exclude_fix: str, records: bool
) -> None:
    """Refuse all-zero series and counts far above their series' median (see :class:`CountChecks`).

    ``frame`` still has the file's row numbers as index unless the counts came from call records.
    """
    by_series = frame.groupby("unique_id", sort=True)["y"]
    totals = by_series.sum()
    if (totals == 0).any():
        uid = totals.index[totals == 0][0]
        days = int((frame["unique_id"] == uid).sum())
        raise DataValidationError(
            f"{source}: series {uid!r} is all zeros ({days} days); it cannot be forecast or scored. "
            f"Check the file, or {exclude_fix.format(uid=uid)}"
        )
    if checks.max_ratio_to_median is None:
        return
    median = by_series.transform("median")
    limit = checks.max_ratio_to_median * np.maximum(median, checks.median_floor)
    bad = frame.index[frame["y"] > limit]
    if len(bad):
        row = frame.loc[bad[0]]
        where = "counted from call records" if records else _file_rows(bad[:1])
        raise DataValidationError(
            f"{source}: implausible count {row['y']:g} for series {row['unique_id']!r} on "
            f"{row['ds']:%Y-%m-%d} ({where}): above {checks.max_ratio_to_median:g} x the series' median "
            f"({median[bad[0]]:g}, at least {checks.median_floor:g}) = {limit[bad[0]]:g}"
            f"{f'; {len(bad)} such count(s) in all' if len(bad) > 1 else ''}. Fix the value, or relax the "
            f"screen with {setting}.checks.max_ratio_to_median=<larger> ({setting}.checks."
            "max_ratio_to_median=null switches it off)"
        )


def _checked_regressor(frame: pd.DataFrame, name: str, column: str, source: str) -> pd.Series:
    values = pd.to_numeric(frame[name], errors="coerce")
    bad = frame.index[values.isna()]
    if len(bad):
        origin = name if column == name else f"{name} (column {column!r})"
        raise DataValidationError(
            f"{source}: {len(bad)} value(s) of regressor {origin} are missing or not numbers, e.g. "
            f"{shown(frame.loc[bad[0], name])} at {_file_rows(bad)}. A regressor needs a number on every day "
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
