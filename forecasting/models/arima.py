"""Regression on calendar effects with ARIMA errors (statsmodels), one model per series.

This is the family of the NHS benchmark (Monks et al. 2023: ARIMA(1,1,3)(1,0,1)7 errors with a
New Year dummy). Here weekday, bank holiday, Christmas/New Year and annual Fourier terms enter as
regressors, with any extra ``x_*`` regressors (e.g. temperature) beside them, and the ARIMA part
captures the local level and short-term correlation.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from statsmodels.tsa.arima.model import ARIMA
from statsmodels.tsa.statespace.kalman_filter import (
    MEMORY_NO_FILTERED,
    MEMORY_NO_GAIN,
    MEMORY_NO_LIKELIHOOD,
    MEMORY_NO_PREDICTED,
    MEMORY_NO_SMOOTHING,
    MEMORY_NO_STD_FORECAST,
)
from statsmodels.tsa.statespace.sarimax import SARIMAX

from forecasting.calendar import calendar_design
from forecasting.models.glm import ANNUAL_MIN_DAYS
from forecasting.models.local import LocalForecaster

# What forecasting needs of the fitted filter is its last state: storing every day's filtered,
# predicted and smoothed state (26 x 26 covariances a day) took 2.7 GB for 28 series.
_FORECAST_ONLY = (
    MEMORY_NO_FILTERED
    | MEMORY_NO_GAIN
    | MEMORY_NO_LIKELIHOOD
    | MEMORY_NO_PREDICTED
    | MEMORY_NO_SMOOTHING
    | MEMORY_NO_STD_FORECAST
)

# Feasible GLS stops once no coefficient moves by more than this (calls a day): statsmodels'
# default, 1e-8, took twice the iterations for forecasts within 1e-4 calls a day of these.
_GLS_TOLERANCE = 1e-3


class ArimaRegression(LocalForecaster):
    """Linear regression on the calendar and extra regressors with ARIMA(p, d, q) errors.

    Extra ``x_*`` regressors enter linearly on the scale of the counts (calls per unit, e.g. per
    degree), so ``predict`` needs their values for the forecast days in ``future``.

    Parameters
    ----------
    order : tuple of int
        ARIMA (p, d, q) of the errors; d = 1 lets the level wander.
    annual_order : int
        Fourier pairs for the yearly cycle.
    nation : str
        UK nation whose bank holidays are regressors.
    window_days : int, optional
        Fit on this many most recent days (state-space fits grow with length).
    method : {"statespace", "innovations_mle"}
        How the model is estimated; the forecasts come from the same state-space form either way.
        ``statespace``: joint maximum likelihood with the regression coefficients in the state
        vector (``SARIMAX``), so intervals also carry their uncertainty. ``innovations_mle``:
        Gaussian maximum likelihood of the ARMA part of the differenced errors by the innovations
        algorithm, the regression by feasible GLS (statsmodels ``ARIMA``): 1.5 (SWAST) to 3
        (synthetic) times faster. Alone it was as accurate on development years (3-4 origins
        each, 84 days: MASE 0.758 / 0.750 against 0.772 / 0.765 on SWAST 2017 / 2018, 0.713 /
        0.719 against 0.713 / 0.718 on synthetic 2021 / 2022), but inside ``auto`` (SWAST, 6
        origins a year) its narrower intervals cost coverage: 80 % coverage 0.777 / 0.757
        against 0.779 / 0.797 (MASE 0.723 / 0.744 against 0.724 / 0.740), so the default stays
        ``statespace``.
    """

    uses_regressors = True

    def __init__(
        self,
        order: tuple[int, int, int] = (1, 1, 1),
        annual_order: int = 3,
        nation: str = "england",
        window_days: int | None = 1095,
        method: str = "statespace",
    ):
        self.order = order
        self.annual_order = annual_order
        self.nation = nation
        self.window_days = window_days
        self.method = method

    def _design(self, ds: pd.Series, exog: np.ndarray) -> np.ndarray:
        return np.column_stack([calendar_design(ds, self.nation, self.annual_order).to_numpy(), exog])

    def _fit_series(self, ds: pd.Series, y: np.ndarray, exog: np.ndarray):
        design = self._design(ds, exog)
        # A regressor that never varies in the window (e.g. no 1 January in it) cannot be estimated.
        varying = design.std(axis=0) > 0
        # Nor can a yearly cycle from less than a year: its Fourier terms, nearly collinear with
        # the rest on a few months, extrapolated to 1e10 calls a day (a real short data set).
        if (pd.Timestamp(ds.max()) - pd.Timestamp(ds.min())).days + 1 < ANNUAL_MIN_DAYS:
            names = calendar_design(ds[:1], self.nation, self.annual_order).columns
            varying[: len(names)] &= ~names.str.startswith("annual_")
        # Nor a column that the earlier ones add up to in the window (in a short one the only bank
        # holidays can be 1-2 January, already festive days): its coefficient's variance in the
        # state made 95 % bounds of 1e5 calls on every later bank holiday.
        kept: list[int] = []
        for j in np.flatnonzero(varying):
            if np.linalg.matrix_rank(design[:, [*kept, j]]) > len(kept):
                kept.append(j)
            else:
                varying[j] = False
        if self.method not in ("innovations_mle", "statespace"):
            raise ValueError(f"method must be statespace or innovations_mle, got {self.method!r}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", UserWarning)
            if self.method == "innovations_mle":
                model = ARIMA(y.astype(float), exog=design[:, varying], order=tuple(self.order))
                # No parameter covariance: forecasting does not use it (and it cost a third).
                gls = {"tolerance": _GLS_TOLERANCE}
                return model.fit(method="innovations_mle", cov_type="none", gls_kwargs=gls), varying
            # Regression coefficients go into the state vector rather than the likelihood
            # search: four times faster with the same forecasts.
            model = SARIMAX(
                y.astype(float), exog=design[:, varying], order=tuple(self.order), mle_regression=False
            )
            # The parameters' covariance (a numerical Hessian) and the smoother are not needed to
            # forecast: fit the parameters, then filter once keeping only what forecasting uses.
            params = model.fit(disp=False, cov_type="none", return_params=True)
            return model.filter(params, cov_type="none", conserve_memory=_FORECAST_ONLY), varying

    def _forecast_series(
        self, state, ds: pd.Series, exog: np.ndarray, level: list[int]
    ) -> dict[str, np.ndarray]:
        result, columns = state
        forecast = result.get_forecast(len(ds), exog=self._design(ds, exog)[:, columns])
        out = {"mean": np.asarray(forecast.predicted_mean)}
        for lv in level:
            bounds = np.asarray(forecast.conf_int(alpha=1 - lv / 100))
            out[f"lo_{lv}"], out[f"hi_{lv}"] = bounds[:, 0], bounds[:, 1]
        return out
