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
    initialization : {"heuristic", "estimated"}
        Initial level, trend and season: from the first seasons of the window (``heuristic``) or
        estimated with the smoothing parameters (``estimated``: 12 parameters instead of 4, so
        a numerical-gradient fit costs 5-10 times as much). In backtests on development years
        (4 origins each, 84 days) they were as accurate: MASE 0.853 / 0.963 against
        0.854 / 0.961 (SWAST 2017 / 2018), 0.719 / 0.725 against 0.715 / 0.722 (synthetic
        2021 / 2022); after three years of smoothing the start hardly matters.
    """

    def __init__(
        self,
        season_length: int = 7,
        damped_trend: bool = True,
        window_days: int | None = 1095,
        initialization: str = "heuristic",
    ):
        self.season_length = season_length
        self.damped_trend = damped_trend
        self.window_days = window_days
        self.initialization = initialization

    def _fit_series(self, ds: pd.Series, y: np.ndarray, exog: np.ndarray):
        model = ETSModel(
            pd.Series(y.astype(float)),
            error="add",
            trend="add",
            damped_trend=self.damped_trend,
            seasonal="add",
            seasonal_periods=self.season_length,
            initialization_method=self._initialization(len(y)),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return model.fit(disp=False, maxiter=200)

    def _initialization(self, n_days: int) -> str:
        # statsmodels' heuristic needs 10 + 2 x (season // 2) days; a shorter window estimates.
        if self.initialization not in ("heuristic", "estimated"):
            raise ValueError(f"initialization must be heuristic or estimated, got {self.initialization!r}")
        enough = n_days >= 10 + 2 * (int(self.season_length) // 2)
        return self.initialization if enough else "estimated"

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
