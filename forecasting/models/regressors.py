"""Extra regressors (``x_*`` columns): their future values at forecast time, and their scaling.

A model fitted on history with ``x_*`` columns (see :mod:`forecasting.data`) needs the same columns
for every day it forecasts. :func:`future_frame` lines them up with the days to forecast and
refuses, with a message that says what to send, when any value is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.data import future_dates


class FutureRegressorError(ValueError):
    """``predict`` lacks future values of the regressors the model was fitted with."""


def future_frame(
    last_dates: pd.Series, h: int, regressors: Sequence[str], future: pd.DataFrame | None
) -> pd.DataFrame:
    """Rows ``unique_id, ds`` for the ``h`` days after each series' last date, with the regressors.

    Parameters
    ----------
    last_dates : Series
        Last observed date of each series to forecast.
    regressors : sequence of str
        Regressor columns the model was fitted with; none means ``future`` is not needed.
    future : DataFrame, optional
        ``unique_id, ds`` and the regressors; rows for other series or days are ignored.

    Raises
    ------
    FutureRegressorError
        The model has regressors and ``future`` is missing, lacks a column, or lacks a number for a
        (series, day) to forecast.
    """
    frame = future_dates(last_dates, h)
    regressors = list(regressors)
    if not regressors:
        return frame

    def needs(uid: str) -> str:
        return (
            f"this model was fitted with regressor(s) {regressors} and needs rows unique_id, ds, "
            f"{', '.join(regressors)} with a number for every series and each of the {h} day(s) after "
            f"its data (e.g. {uid!r}: {_span(last_dates[uid], h)})"
        )

    if future is None:
        raise FutureRegressorError(
            f"no future values given: {needs(last_dates.index[0])}; pass them as future="
        )
    missing = [column for column in ("unique_id", "ds", *regressors) if column not in future.columns]
    if missing:
        raise FutureRegressorError(f"future values lack column(s) {missing}: {needs(last_dates.index[0])}")
    given = _parsed(future, regressors, frame["ds"].dtype)
    merged = frame.merge(given, on=["unique_id", "ds"], how="left")
    if len(merged) > len(frame):
        clash = merged[merged.duplicated(["unique_id", "ds"], keep=False)].iloc[0]
        raise FutureRegressorError(
            f"two different values of {regressors} for {clash['unique_id']!r} on {clash['ds']:%Y-%m-%d}: "
            "send one row per series and day"
        )
    lacking = merged[regressors].isna().any(axis=1).to_numpy()
    if lacking.any():
        row = merged[lacking].iloc[0]
        raise FutureRegressorError(
            f"no number for {regressors} on {int(lacking.sum())} of the {len(frame)} (series, day) rows to "
            f"forecast, e.g. {row['unique_id']!r} on {row['ds']:%Y-%m-%d}: {needs(row['unique_id'])}"
        )
    return merged


def _parsed(future: pd.DataFrame, regressors: list[str], dtype) -> pd.DataFrame:
    """The future rows with parsed keys and numbers (unparseable values become missing)."""
    given = pd.DataFrame({"unique_id": future["unique_id"].astype(str).to_numpy()})
    dates = pd.to_datetime(pd.Series(future["ds"].to_numpy()), errors="coerce").dt.normalize()
    given["ds"] = dates.astype(dtype).to_numpy()
    for name in regressors:
        given[name] = pd.to_numeric(pd.Series(future[name].to_numpy()), errors="coerce").to_numpy(float)
    # The same row sent twice is harmless; two different values for one day are not.
    return given.dropna(subset=["ds"]).drop_duplicates()


def _span(last: pd.Timestamp, h: int) -> str:
    return f"{last + pd.Timedelta(days=1):%Y-%m-%d} to {last + pd.Timedelta(days=h):%Y-%m-%d}"


@dataclass(frozen=True)
class Standardizer:
    """Centre and scale regressor columns as seen in a fit window, dropping those that never vary.

    A regressor constant over the window (e.g. a flag never set in it) has no estimable effect, and
    on the scale of its standard deviation coefficients are comparable and solvers well conditioned.
    """

    mean: np.ndarray
    scale: np.ndarray
    varying: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray) -> Standardizer:
        values = np.asarray(values, dtype=float).reshape(len(values), -1)
        scale = values.std(axis=0) if len(values) else np.zeros(values.shape[1])
        return cls(values.mean(axis=0) if len(values) else scale, scale, scale > 1e-12)

    def transform(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float).reshape(len(values), -1)[:, self.varying]
        return (values - self.mean[self.varying]) / self.scale[self.varying]
