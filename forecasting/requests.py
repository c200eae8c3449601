"""Answering forecast requests from other services: which series and days, checked before use."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from forecasting.models.base import Forecaster, interval_columns
from forecasting.models.regressors import FutureRegressorError
from mlops.errors import UserInputError

REQUEST_COLUMNS = ("unique_id", "ds")


class ForecastRequestError(UserInputError, ValueError):
    """A request names an unknown series, a date out of range, or lacks columns."""


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
    asked = pd.DataFrame({"unique_id": requests["unique_id"].astype(str)})
    asked["ds"] = pd.to_datetime(requests["ds"], errors="coerce").dt.normalize().to_numpy()
    if asked["ds"].isna().any():
        bad = requests.loc[asked["ds"].isna().to_numpy(), "ds"].iloc[0]
        raise ForecastRequestError(f"request has a value in `ds` that is not a date: {bad!r}")
    last = forecaster.last_dates_
    unknown = sorted(set(asked["unique_id"]) - set(last.index))
    if unknown:
        raise ForecastRequestError(f"unknown series {unknown[:5]}; this model forecasts {sorted(last.index)}")
    ahead = (asked["ds"] - asked["unique_id"].map(last)).dt.days
    out_of_range = (ahead < 1) | (ahead > max_horizon)
    if out_of_range.any():
        row = asked[out_of_range].iloc[0]
        first = last[row["unique_id"]] + pd.Timedelta(days=1)
        final = last[row["unique_id"]] + pd.Timedelta(days=max_horizon)
        raise ForecastRequestError(
            f"{row['ds']:%Y-%m-%d} is out of range for {row['unique_id']!r}: this model forecasts "
            f"{first:%Y-%m-%d} to {final:%Y-%m-%d} (1 to {max_horizon} days after its data)"
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
    future = asked.assign(**{name: requests[name].to_numpy() for name in regressors})
    parts = []
    # Series asked up to the same day share one call; each needs values only up to its own day.
    for h, group in furthest.groupby(furthest):
        try:
            parts.append(forecaster.predict(int(h), level, future=future, series=list(group.index)))
        except FutureRegressorError as error:
            raise ForecastRequestError(f"request rows: {error}") from error
    return pd.concat(parts, ignore_index=True)
