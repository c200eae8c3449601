"""The daily shape of demand inside a year, and its day-to-day noise, estimated from daily history.

The shape uses the forecasting library's calendar (weekday, annual Fourier terms, bank holidays, the
festive fortnight). It is fitted as a Poisson GLM with one level per area and year, so growth between
years never leaks into the shape; the extra-Poisson day-to-day spread is then measured as a
negative-binomial shape ``k`` (variance ``mu + mu**2 / k``) by the method of moments.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.calendar import FESTIVE_DAYS, calendar_features
from forecasting.projection.glm import fit_poisson
from mlops.errors import DataValidationError

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class DailyShape:
    """Relative demand by day of the calendar, and day-to-day noise.

    Parameters
    ----------
    nation : str
        UK nation whose bank holidays apply.
    annual_order : int
        Fourier pairs of the yearly cycle (4 follows December's peak and the summer trough).
    """

    def __init__(self, nation: str = "england", annual_order: int = 4):
        self.nation = nation
        self.annual_order = annual_order

    def fit(self, daily: pd.DataFrame) -> DailyShape:
        """Fit on daily calls ``area, ds, y`` (whole years are best; any length over a year works)."""
        if daily["ds"].nunique() < 365:
            raise DataValidationError(
                f"the daily history covers {daily['ds'].nunique()} days; the daily shape needs a year or more"
            )
        frame = daily.reset_index(drop=True)
        calendar = self._calendar(frame["ds"])
        level = pd.get_dummies(frame["area"].astype(str) + "/" + frame["ds"].dt.year.astype(str), dtype=float)
        design = np.hstack([level.to_numpy(), calendar.to_numpy()])
        y = frame["y"].to_numpy(dtype=float)
        result = fit_poisson(y, design)
        self.columns_ = list(calendar.columns)
        self.coef_ = pd.Series(np.asarray(result.params)[level.shape[1] :], index=self.columns_)
        mu = np.asarray(result.mu)
        excess = np.sum((y - mu) ** 2 - mu) / np.sum(mu**2)
        # No extra-Poisson spread at all is possible (tiny areas); k = inf then means plain Poisson.
        self.dispersion_shape_ = float(1 / excess) if excess > 0 else float("inf")
        self.residual_cv_ = float(np.std(y / mu - 1))
        return self

    def multiplier(self, days: pd.DatetimeIndex) -> np.ndarray:
        """Relative demand of each day (unnormalised; only ratios between days matter)."""
        return np.exp(self._calendar(pd.Series(days)).to_numpy() @ self.coef_.to_numpy())

    def weekday_profile(self) -> pd.Series:
        """Demand by weekday relative to the weekly mean, for the report."""
        logs = np.array([0.0] + [self.coef_[f"dow_{d}"] for d in WEEKDAY_NAMES[1:]])
        values = np.exp(logs)
        return pd.Series(values / values.mean(), index=WEEKDAY_NAMES)

    def _calendar(self, ds: pd.Series) -> pd.DataFrame:
        features = calendar_features(ds, self.nation, self.annual_order)
        columns = {
            f"dow_{name}": (features["dow"] == i).astype(float) for i, name in enumerate(WEEKDAY_NAMES) if i
        }
        # Festive days have their own effects; Christmas and New Year are also bank holidays, so the
        # bank-holiday flag is cleared there to keep the two effects separate.
        festive = features["festive_day"].to_numpy()
        columns["bank_holiday"] = np.where(festive > 0, 0.0, features["bank_holiday"].to_numpy(dtype=float))
        for code, label in enumerate(FESTIVE_DAYS, start=1):
            columns[f"festive_{label}"] = (festive == code).astype(float)
        frame = pd.DataFrame(columns, index=features.index)
        fourier = features.filter(like="annual_")
        return pd.concat([frame, fourier.astype(float)], axis=1)


def spread_over_days(annual: pd.Series, multiplier: np.ndarray, days: pd.DatetimeIndex) -> np.ndarray:
    """Expected calls per day whose yearly sums equal ``annual`` (indexed by year).

    Inside a year, demand follows the calendar multiplier and a smooth level that grows from one
    mid-year to the next (log-linear between years, extended at the ends), so there is no jump at
    New Year beyond what the calendar itself puts there.
    """
    years = annual.index.to_numpy(dtype=int)
    level = np.log(annual.to_numpy(dtype=float) / np.array([days_in_year(y) for y in years]))
    mid_year = pd.to_datetime([f"{y}-07-02" for y in years]).values.astype("datetime64[D]").astype(float)
    t = days.values.astype("datetime64[D]").astype(float)
    if len(years) > 1:
        slope_start = (level[1] - level[0]) / (mid_year[1] - mid_year[0])
        slope_end = (level[-1] - level[-2]) / (mid_year[-1] - mid_year[-2])
        smooth = np.interp(t, mid_year, level)
        smooth = np.where(t < mid_year[0], level[0] + slope_start * (t - mid_year[0]), smooth)
        smooth = np.where(t > mid_year[-1], level[-1] + slope_end * (t - mid_year[-1]), smooth)
    else:
        smooth = np.full(len(t), level[0])
    raw = np.exp(smooth) * multiplier
    day_year = days.year.to_numpy()
    totals = pd.Series(raw).groupby(day_year).sum()
    if set(totals.index) - set(years):
        raise ValueError(
            f"days fall in years without an annual total: {sorted(set(totals.index) - set(years))}"
        )
    return raw * (annual.reindex(day_year).to_numpy() / totals.reindex(day_year).to_numpy())


def days_in_year(year: int) -> int:
    """365 or 366."""
    return pd.Timestamp(year=int(year), month=12, day=31).day_of_year
