"""Base for models fitted to each series on its own (ETS, ARIMA, GLM)."""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits  # installed with scikit-learn

from forecasting.models.base import Forecaster


class LocalForecaster(Forecaster):
    """Fits one model per series on the last ``window_days`` of history and stacks the forecasts.

    Subclasses implement :meth:`_fit_series` (returning any fitted state) and
    :meth:`_forecast_series` (returning mean and interval arrays for the future dates). Both get
    the regressors as an array with one column per ``x_*`` regressor (no columns when the model
    does not use them or was fitted without any).
    """

    window_days: int | None

    def fit(self, df: pd.DataFrame) -> LocalForecaster:
        self._remember_history(df)
        self.fitted_ = {}
        # One thread (BLAS and OpenMP): per-series problems are small, and threads on them mostly
        # spin (a statsmodels ARIMA fit took 5 times the CPU with two OpenBLAS threads on two
        # cores; the GLM's scikit-learn loss, OpenMP, 4 times the wall time beside other work).
        # A Dask worker runs the same fits with one thread too (its nanny sets OMP_NUM_THREADS=1).
        with threadpool_limits(1, user_api=None):
            for uid, rows in df.groupby("unique_id", sort=True):
                if self.window_days:
                    rows = rows[rows["ds"] > rows["ds"].max() - pd.Timedelta(days=self.window_days)]
                self.fitted_[uid] = self._fit_series(
                    rows["ds"].reset_index(drop=True), rows["y"].to_numpy(), self._exog(rows)
                )
        return self

    def _exog(self, rows: pd.DataFrame) -> np.ndarray:
        return rows[self.fitted_regressors].to_numpy(dtype=float).reshape(len(rows), -1)

    def _predict(self, frame: pd.DataFrame, h: int, level: list[int]) -> pd.DataFrame:
        parts = []
        with threadpool_limits(1, user_api=None):  # one thread, as in fit
            for uid, rows in frame.groupby("unique_id", sort=False):
                part = rows[["unique_id", "ds"]].reset_index(drop=True)
                columns = self._forecast_series(self.fitted_[uid], part["ds"], self._exog(rows), level)
                for name, values in columns.items():
                    part[name] = np.asarray(values, dtype=float)
                parts.append(part)
        out = pd.concat(parts, ignore_index=True)
        bounds = [c for c in out.columns if c.startswith("lo_")]
        out[bounds] = out[bounds].clip(lower=0.0)
        return out

    @abstractmethod
    def _fit_series(self, ds: pd.Series, y: np.ndarray, exog: np.ndarray) -> object: ...

    @abstractmethod
    def _forecast_series(
        self, state: object, ds: pd.Series, exog: np.ndarray, level: list[int]
    ) -> dict[str, np.ndarray]: ...
