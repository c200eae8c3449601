"""Answering forecast requests from other services: which series and days, checked before use."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecasting.models.base import Forecaster, interval_columns
from forecasting.models.regressors import FutureRegressorError
from mlops.errors import UserInputError

REQUEST_COLUMNS = ("unique_id", "ds")


class ForecastRequestError(UserInputError, ValueError):
    """A request names an unknown series, a date out of range, or lacks columns.

    Messages name columns, row positions and the model's own series and days, never a value the
    request sent: the HTTP server (``mlops.serve``) shows them to clients because of ``client_safe``.
    """

    client_safe = True


MAX_LISTED = 20  # known series listed in a message; the rest are in the model's metadata


def _rows(positions: np.ndarray) -> str:
    """``rows 0, 3, 7`` (first five): positions in the request, never its values."""
    shown = ", ".join(str(int(p)) for p in positions[:5])
    return f"row{'s' if len(positions) > 1 else ''} {shown}{', ...' if len(positions) > 5 else ''}"


def _listed(values: Sequence[str]) -> str:
    values = sorted(values)
    if len(values) <= MAX_LISTED:
        return str(values)
    return f"{values[:MAX_LISTED]} and {len(values) - MAX_LISTED} more (all in the model's metadata)"


def forecast_for_requests(
    forecaster: Forecaster, requests: pd.DataFrame, max_horizon: int, level: Sequence[int]
) -> pd.DataFrame:
    """Forecast exactly the (series, day) rows asked for.

    Parameters
    ----------
    requests : DataFrame
        Columns ``unique_id`` and ``ds``: days after the training data, at most ``max_horizon``
        days after each series' last observed day. When the model was fitted with ``x_*``
        regressors the rows also carry them, and for each series asked for there must be a row
        with their values for every day from the day after its data to the furthest day asked
        (the model forecasts day by day from there); values are never filled in.

    Returns
    -------
    DataFrame
        The request rows in their order with ``mean`` and ``lo_L`` / ``hi_L`` columns.
    """
    missing = [column for column in REQUEST_COLUMNS if column not in requests.columns]
    if missing:
        raise ForecastRequestError(
            f"request lacks column(s) {missing}: send rows with `unique_id` (series) and `ds` (date)"
        )
    if requests.empty:
        raise ForecastRequestError("request has no rows: send at least one (unique_id, ds)")
    asked = pd.DataFrame({"unique_id": requests["unique_id"].astype(str).to_numpy()})
    asked["ds"] = pd.to_datetime(requests["ds"], errors="coerce").dt.normalize().to_numpy()
    if asked["ds"].isna().any():
        bad = np.flatnonzero(asked["ds"].isna().to_numpy())
        raise ForecastRequestError(
            f"`ds` holds {len(bad)} value(s) that are not dates ({_rows(bad)}): "
            "send ISO dates, e.g. 2024-01-31"
        )
    last = forecaster.last_dates_
    unknown = np.flatnonzero(
        ~asked["unique_id"].isin(last.index).to_numpy() | requests["unique_id"].isna().to_numpy()
    )
    if len(unknown):
        # A hierarchy's nodes follow a scheme (leaves, '<column>=<value>' totals, 'total'): say it.
        naming = getattr(forecaster, "node_naming", None)
        raise ForecastRequestError(
            f"unknown series: `unique_id` in {len(unknown)} row(s) ({_rows(unknown)}) is not a series "
            f"of this model; it forecasts {_listed(list(last.index))}"
            + (f" (the nodes of its hierarchy: {naming})" if naming else "")
        )
    ahead = (asked["ds"] - asked["unique_id"].map(last)).dt.days
    out_of_range = ((ahead < 1) | (ahead > max_horizon)).to_numpy()
    if out_of_range.any():
        bad = np.flatnonzero(out_of_range)
        series_last = last[asked["unique_id"].iloc[bad[0]]]
        first = series_last + pd.Timedelta(days=1)
        final = series_last + pd.Timedelta(days=max_horizon)
        span = f"{first:%Y-%m-%d} to {final:%Y-%m-%d}"
        which = "every series" if last.nunique() == 1 else f"the series of row {int(bad[0])}"
        raise ForecastRequestError(
            f"`ds` out of range in {len(bad)} row(s) ({_rows(bad)}): this model forecasts 1 to {max_horizon} "
            f"days after its data ({span} for {which})"
        )
    furthest = ahead.groupby(asked["unique_id"].to_numpy()).max()
    forecast = _forecast(forecaster, requests, asked, furthest, level)
    columns = ["mean", *interval_columns(level)]
    return asked.merge(forecast[["unique_id", "ds", *columns]], on=["unique_id", "ds"], how="left")


def _forecast(
    forecaster: Forecaster,
    requests: pd.DataFrame,
    asked: pd.DataFrame,
    furthest: pd.Series,
    level: Sequence[int],
) -> pd.DataFrame:
    """Forecasts for the series asked for, each up to its furthest day asked."""
    regressors = forecaster.fitted_regressors
    if not regressors:
        return forecaster.predict(int(furthest.max()), level, series=list(furthest.index))
    missing = [column for column in regressors if column not in requests.columns]
    if missing:
        raise ForecastRequestError(
            f"request lacks regressor column(s) {missing}: this model was trained with {regressors}, so "
            "each series asked for needs a row with their values for every day from the day after its "
            "data to the furthest day asked"
        )
    for name in regressors:
        values = pd.to_numeric(requests[name], errors="coerce").to_numpy(dtype=float)
        not_numbers = np.flatnonzero(np.isnan(values) & requests[name].notna().to_numpy())
        if len(not_numbers):
            raise ForecastRequestError(
                f"column {name!r} must hold numbers; {len(not_numbers)} value(s) are not "
                f"({_rows(not_numbers)})"
            )
        infinite = np.flatnonzero(np.isinf(values))
        if len(infinite):
            raise ForecastRequestError(
                f"column {name!r} holds {len(infinite)} infinite value(s) ({_rows(infinite)}): "
                "send finite numbers"
            )
    future = asked.assign(**{name: requests[name].to_numpy() for name in regressors})
    parts = []
    # Series asked up to the same day share one call; each needs values only up to its own day.
    for h, group in furthest.groupby(furthest):
        try:
            parts.append(forecaster.predict(int(h), level, future=future, series=list(group.index)))
        except FutureRegressorError:
            # Its message quotes series and days from the request: this one does not.
            raise ForecastRequestError(
                f"no number for {regressors} on some day a series asked for must be forecast: each such "
                "series needs one row with a number in each regressor column for every day from the day "
                "after its data to the furthest day asked for it"
            ) from None
    return pd.concat(parts, ignore_index=True)
