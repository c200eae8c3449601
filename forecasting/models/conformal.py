"""Intervals recalibrated on the model's own backtest errors, horizon by horizon.

A model's own intervals can be too narrow or too wide out of sample: the errors of a forecast made
weeks ahead include level shifts and seasonal misfit that in-sample residuals do not show. This
wrapper refits the model at a few earlier origins, measures its errors on the days that followed,
and sets the interval bounds from those errors (split conformal prediction by horizon). The mean
forecast is the wrapped model's, fitted on all the data.

Errors are pooled across series as Pearson residuals, (y - mean) / sqrt(mean), which puts a
series of 30 calls a day and one of 300 on one scale (count noise grows with the square root of
the mean), and across neighbouring horizons (+-3 days) so that each quantile rests on enough
errors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone

from forecasting.models.base import Forecaster
from mlops.errors import ConfigError

HORIZON_BAND = 3  # days either side of h whose errors also calibrate h


class BacktestConformal(Forecaster):
    """Wrap ``model`` so its intervals come from its errors at ``n_windows`` earlier origins.

    Parameters
    ----------
    model : Forecaster
        The model whose mean is kept and whose intervals are recalibrated.
    n_windows : int
        Earlier origins to refit at (each costs one more fit of ``model``).
    step : int
        Days between those origins; the newest leaves ``horizon`` days before the last date.
    horizon : int
        Longest horizon calibrated; later days reuse its quantiles.
    coverage_tolerance : float, optional
        Recalibrate only when the model's own intervals, on those earlier origins, miss a nominal
        level in ``levels`` by more than this (a fraction); otherwise keep them. None (default):
        always recalibrate. The decision uses the same earlier origins, so no look-ahead.
    levels : sequence of int
        Levels whose coverage decides, with ``coverage_tolerance``.
    """

    def __init__(
        self,
        model: Forecaster,
        n_windows: int = 4,
        step: int = 28,
        horizon: int = 84,
        coverage_tolerance: float | None = None,
        levels: Sequence[int] = (80, 95),
    ):
        self.model = model
        self.n_windows = n_windows
        self.step = step
        self.horizon = horizon
        self.coverage_tolerance = coverage_tolerance
        self.levels = levels

    def min_history_days(self) -> int:
        # Its own backtest: the wrapped model's history (at least the backtest's minimum) at the
        # oldest calibration origin, then n_windows origins and a horizon after it.
        from forecasting.backtest import MIN_TRAIN_DAYS

        first = max(MIN_TRAIN_DAYS, self.model.min_history_days())
        return first + int(self.horizon) + int(self.step) * (int(self.n_windows) - 1)

    def fit(self, df: pd.DataFrame) -> BacktestConformal:
        if int(self.n_windows) < 1 or int(self.step) < 1 or int(self.horizon) < 1:
            raise ValueError("n_windows, step and horizon must each be at least 1")
        self._remember_history(df)
        # Imported here: forecasting.backtest itself imports the models package.
        from forecasting.backtest import rolling_origin_backtest

        try:
            folds = rolling_origin_backtest(
                self.model,
                df,
                int(self.horizon),
                int(self.n_windows),
                int(self.step),
                level=sorted({int(lv) for lv in self.levels}),
                progress=False,
                setting_names={
                    "horizon": "the conformal model's horizon",
                    "n_origins": "n_windows",
                    "step": "step",
                },
            )
        except ConfigError as error:
            raise ValueError(f"too little history before the oldest calibration origin: {error}") from None
        self.residuals_by_h_ = residuals_by_horizon(folds, int(self.horizon))
        self.own_coverage_ = interval_coverage(folds, self.levels)
        misses = max((abs(c - lv / 100) for lv, c in self.own_coverage_.items()), default=float("inf"))
        tolerance = self.coverage_tolerance
        self.recalibrated_ = tolerance is None or misses > float(tolerance)
        self.model_ = clone(self.model).fit(df)
        self.regressors_ = self.model_.fitted_regressors
        return self

    def _predict(self, frame: pd.DataFrame, h: int, level: list[int]) -> pd.DataFrame:
        series = frame["unique_id"].unique().tolist()
        if not getattr(self, "recalibrated_", True):  # its own intervals were within tolerance
            return self.model_.predict(h, level, future=frame, series=series)
        forecast = self.model_.predict(h, [], future=frame, series=series)
        return conformal_bounds(forecast, self.last_dates_, self.residuals_by_h_, level)


def interval_coverage(folds: pd.DataFrame, levels: Sequence[int]) -> dict[int, float]:
    """Share of actuals inside each level's interval in backtest ``folds`` (``y, lo_L, hi_L``)."""
    coverage = {}
    for lv in sorted({int(lv) for lv in levels}):
        inside = (folds["y"] >= folds[f"lo_{lv}"]) & (folds["y"] <= folds[f"hi_{lv}"])
        coverage[lv] = float(inside.mean())
    return coverage


def residuals_by_horizon(folds: pd.DataFrame, horizon: int) -> dict[int, np.ndarray]:
    """Sorted Pearson residuals of backtest ``folds`` (``h, y, mean``) for each horizon 1..horizon.

    Each horizon pools the errors of its neighbours within ``HORIZON_BAND`` days and of all series.
    """
    mean = np.maximum(folds["mean"].to_numpy(dtype=float), 1e-6)
    pooled = pd.DataFrame({"h": folds["h"].to_numpy(), "z": (folds["y"].to_numpy() - mean) / np.sqrt(mean)})
    return {
        h: np.sort(pooled.loc[(pooled["h"] - h).abs() <= HORIZON_BAND, "z"].to_numpy())
        for h in range(1, int(horizon) + 1)
    }


def conformal_bounds(
    forecast: pd.DataFrame,
    last_dates: pd.Series,
    residuals: dict[int, np.ndarray],
    level: list[int],
) -> pd.DataFrame:
    """Set ``lo_L, hi_L`` of ``forecast`` (``unique_id, ds, mean``) from residual quantiles by horizon.

    Days beyond the longest calibrated horizon reuse its quantiles. Returns ``forecast`` with the
    bounds (re)written; lower bounds are cut at zero.
    """
    longest = max(residuals)
    days_ahead = (forecast["ds"] - forecast["unique_id"].map(last_dates)).dt.days.to_numpy()
    calibrated = np.clip(days_ahead, 1, longest)
    mean = forecast["mean"].to_numpy(dtype=float)
    root = np.sqrt(np.maximum(mean, 0.0))
    for lv in level:
        tail = (1 - lv / 100) / 2
        lo = np.array([conformal_quantile(residuals[d], tail) for d in range(1, longest + 1)])
        hi = np.array([conformal_quantile(residuals[d], 1 - tail) for d in range(1, longest + 1)])
        forecast[f"lo_{lv}"] = np.maximum(mean + lo[calibrated - 1] * root, 0.0)
        forecast[f"hi_{lv}"] = mean + hi[calibrated - 1] * root
    return forecast


def conformal_quantile(sorted_residuals: np.ndarray, q: float) -> float:
    """Split-conformal quantile with the finite-sample correction ((n + 1) q / n)."""
    n = len(sorted_residuals)
    if q >= 0.5:
        rank = min(int(np.ceil((n + 1) * q)), n)
    else:
        rank = max(int(np.floor((n + 1) * q)), 1)
    return float(sorted_residuals[rank - 1])
