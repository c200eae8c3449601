"""Poisson or Tweedie regression of daily counts on the calendar, a trend and extra regressors."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.linear_model import TweedieRegressor

from forecasting.calendar import calendar_design
from forecasting.models.local import LocalForecaster
from forecasting.models.regressors import Standardizer

_EPOCH = np.datetime64("2000-01-01", "D")
ANNUAL_MIN_DAYS = 365  # history a series needs before its yearly Fourier terms are fitted


class CalendarGLM(LocalForecaster):
    """Log-link GLM per series: trend + weekday + holidays + festive days + annual Fourier terms.

    Extra ``x_*`` regressors (e.g. temperature) enter standardized over the fit window, so each
    coefficient is the change in log calls per standard deviation; the effect is log-linear (a
    threshold effect such as heat above some temperature is approximated by a straight line).
    ``predict`` then needs their values for the forecast days in ``future``.

    Intervals use the GLM's variance function: variance = phi * mean ** power, with phi the
    Pearson dispersion of the fit (quasi-Poisson for power 1), and normal quantiles (counts here
    are tens to hundreds a day).

    Parameters
    ----------
    power : float
        Tweedie power: 1 = Poisson, between 1 and 2 = compound Poisson-gamma.
    alpha : float
        L2 penalty (small: the design is well conditioned).
    annual_order : int
        Fourier pairs for the yearly cycle.
    nation : str
        UK nation whose bank holidays are regressors.
    window_days : int, optional
        Fit on this many most recent days.
    """

    uses_regressors = True

    def __init__(
        self,
        power: float = 1.0,
        alpha: float = 1e-6,
        annual_order: int = 4,
        nation: str = "england",
        window_days: int | None = 1095,
    ):
        self.power = power
        self.alpha = alpha
        self.annual_order = annual_order
        self.nation = nation
        self.window_days = window_days

    def _design(self, ds: pd.Series, centre: float, scaled: np.ndarray, order: int) -> np.ndarray:
        years = (pd.DatetimeIndex(ds).values.astype("datetime64[D]") - _EPOCH).astype(float) / 365.25
        return np.column_stack([years - centre, calendar_design(ds, self.nation, order), scaled])

    def _fit_series(self, ds: pd.Series, y: np.ndarray, exog: np.ndarray):
        years = (pd.DatetimeIndex(ds).values.astype("datetime64[D]") - _EPOCH).astype(float) / 365.25
        centre = float(years.mean())
        scaling = Standardizer.fit(exog)
        # The yearly cycle only from a year of history: on a few months its Fourier terms are
        # nearly collinear with the trend, and extrapolated they reached 1e26 calls a day.
        span = (pd.Timestamp(ds.max()) - pd.Timestamp(ds.min())).days + 1
        order = int(self.annual_order) if span >= ANNUAL_MIN_DAYS else 0
        design = self._design(ds, centre, scaling.transform(exog), order)
        glm = TweedieRegressor(
            power=self.power, link="log", alpha=self.alpha, solver="newton-cholesky", max_iter=200
        )
        glm.fit(design, y)
        fitted = glm.predict(design)
        variance = fitted**self.power
        dispersion = float(np.sum((y - fitted) ** 2 / variance) / max(len(y) - design.shape[1] - 1, 1))
        return glm, centre, max(dispersion, 1e-6), scaling, order

    def _forecast_series(
        self, state, ds: pd.Series, exog: np.ndarray, level: list[int]
    ) -> dict[str, np.ndarray]:
        glm, centre, dispersion, scaling, *order = state  # models saved before: no order kept
        order = order[0] if order else int(self.annual_order)
        mean = glm.predict(self._design(ds, centre, scaling.transform(exog), order))
        spread = np.sqrt(dispersion * mean**self.power)
        out = {"mean": mean}
        for lv in level:
            z = norm.ppf(0.5 + lv / 200)
            out[f"lo_{lv}"], out[f"hi_{lv}"] = mean - z * spread, mean + z * spread
        return out
