"""Exponential smoothing (ETS) with a weekly season, from statsmodels' state-space ETSModel."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from statsmodels.tsa.exponential_smoothing.ets import ETSModel

from forecasting.models.local import LocalForecaster


class ETS(LocalForecaster):
    """Additive-error ETS with a damped additive trend and additive weekly seasonality.

    Intervals are the model's own (simulation-free analytic intervals of the state-space form).
    ETS has no regressors, so holidays are not modelled: it is here as the classical baseline.
    Extra ``x_*`` regressors in the history are ignored, and so is ``predict``'s ``future``.

    Parameters
    ----------
    season_length : int
        Seasonal period in days.
    damped_trend : bool
        Damp the trend so long forecasts flatten (usually more accurate).
    window_days : int, optional
        Fit on this many most recent days (None: all history).
    """

    def __init__(self, season_length: int = 7, damped_trend: bool = True, window_days: int | None = 1095):
        self.season_length = season_length
        self.damped_trend = damped_trend
        self.window_days = window_days

    def _fit_series(self, ds: pd.Series, y: np.ndarray, exog: np.ndarray):
        model = ETSModel(
            pd.Series(y.astype(float)),
            error="add",
            trend="add",
            damped_trend=self.damped_trend,
            seasonal="add",
            seasonal_periods=self.season_length,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return model.fit(disp=False, maxiter=200)

    def _forecast_series(
        self, state, ds: pd.Series, exog: np.ndarray, level: list[int]
    ) -> dict[str, np.ndarray]:
        n_obs = int(state.nobs)
        prediction = state.get_prediction(start=n_obs, end=n_obs + len(ds) - 1)
        out = {"mean": np.asarray(prediction.predicted_mean)}
        for lv in level:
            frame = prediction.summary_frame(alpha=1 - lv / 100)
            out[f"lo_{lv}"] = frame["pi_lower"].to_numpy()
            out[f"hi_{lv}"] = frame["pi_upper"].to_numpy()
        return out
