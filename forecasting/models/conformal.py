"""Intervals recalibrated on the model's own backtest errors, horizon by horizon.

A model's own intervals can be too narrow or too wide out of sample: the errors of a forecast made
weeks ahead include level shifts and seasonal misfit that in-sample residuals do not show. This
wrapper refits the model at a few earlier origins, measures its errors on the days that followed,
and sets the interval bounds from those errors (split conformal prediction by horizon). The mean
forecast is the wrapped model's, fitted on all the data.

Errors are pooled across series on a common scale, by default as Pearson residuals,
(y - mean) / sqrt(mean), which puts a series of 30 calls a day and one of 300 on one scale (count
noise grows with the square root of the mean), or as relative errors (y - mean) / mean, and across
neighbouring horizons (+-``band`` days) so that each quantile rests on enough errors.

:class:`IntervalSettings` and :func:`with_interval_settings` apply one recalibration setting to
any model (the forecasting job's ``intervals`` config): the model is wrapped in
:class:`BacktestConformal`, except an :class:`~forecasting.models.AutoForecaster`, which
recalibrates its winner on its own inner errors with the same rule, and a model already wrapped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone

from forecasting.models.base import Forecaster
from mlops.errors import ConfigError

HORIZON_BAND = 3  # days either side of h whose errors also calibrate h (the default band)
SCALES = ("pearson", "relative")  # how errors of series of different size share one quantile
RECALIBRATE = ("auto", "always", "never")  # the modes of IntervalSettings.recalibrate
# Fewest windows `recalibrate=auto` checks coverage on (auto's inner origins are 2 by default);
# with fewer the decision would rest on one origin's errors.
MIN_WINDOWS = 2


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
    scale : {"pearson", "relative"}
        Errors divided by sqrt(mean) (count noise) or by the mean (errors proportional to level).
    band : int
        Days either side of each horizon whose errors also calibrate it.
    min_windows : int, optional
        Fewest windows to fall back to when the history is too short for ``n_windows`` (the
        forecasting job's default, so that a short data set still trains): the most windows that
        fit, at least this many, are used, and with fewer the model keeps its own intervals
        (``recalibrated_`` None: not checked). None (default): too short a history is an error.
        The count depends only on the data given, so a backtest still has no look-ahead.
    """

    def __init__(
        self,
        model: Forecaster,
        n_windows: int = 4,
        step: int = 28,
        horizon: int = 84,
        coverage_tolerance: float | None = None,
        levels: Sequence[int] = (80, 95),
        scale: str = "pearson",
        band: int = HORIZON_BAND,
        min_windows: int | None = None,
    ):
        self.model = model
        self.n_windows = n_windows
        self.step = step
        self.horizon = horizon
        self.coverage_tolerance = coverage_tolerance
        self.levels = levels
        self.scale = scale
        self.band = band
        self.min_windows = min_windows

    def min_history_days(self) -> int:
        if self.min_windows is not None:  # fewer windows (or none) on a shorter history
            return self.model.min_history_days()
        # Its own backtest: the wrapped model's history (at least the backtest's minimum) at the
        # oldest calibration origin, then n_windows origins and a horizon after it.
        from forecasting.backtest import MIN_TRAIN_DAYS

        first = max(MIN_TRAIN_DAYS, self.model.min_history_days())
        return first + int(self.horizon) + int(self.step) * (int(self.n_windows) - 1)

    def windows_that_fit(self, df: pd.DataFrame) -> int:
        """How many calibration windows ``df`` allows: ``n_windows``, or with ``min_windows`` set
        the most that every series has the history for (0 when fewer than ``min_windows``)."""
        if self.min_windows is None:
            return int(self.n_windows)
        from forecasting.backtest import backtest_cutoffs, check_history

        last = df["ds"].max()
        for windows in range(int(self.n_windows), max(int(self.min_windows), 1) - 1, -1):
            cutoffs = backtest_cutoffs(last, int(self.horizon), windows, int(self.step), None)
            try:
                check_history(
                    df,
                    cutoffs,
                    int(self.horizon),
                    windows,
                    int(self.step),
                    model_days=self.model.min_history_days(),
                )
            except ConfigError:
                continue
            return windows
        return 0

    def fit(self, df: pd.DataFrame) -> BacktestConformal:
        if int(self.n_windows) < 1 or int(self.step) < 1 or int(self.horizon) < 1:
            raise ValueError("n_windows, step and horizon must each be at least 1")
        check_scale(self.scale, self.band)
        self._remember_history(df)
        self.windows_used_ = self.windows_that_fit(df)
        if self.windows_used_ == 0:  # too short to check: the model's own intervals, said so
            self.recalibrated_ = None
            self.model_ = clone(self.model).fit(df)
            self.regressors_ = self.model_.fitted_regressors
            return self
        # Imported here: forecasting.backtest itself imports the models package.
        from forecasting.backtest import rolling_origin_backtest

        try:
            folds = rolling_origin_backtest(
                self.model,
                df,
                int(self.horizon),
                self.windows_used_,
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
            raise ValueError(
                f"too little history before the oldest calibration origin: {error} (or set "
                "intervals.recalibrate=never, or fewer intervals.n_windows)"
            ) from None
        self.residuals_by_h_ = residuals_by_horizon(folds, int(self.horizon), self.scale, int(self.band))
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
        return conformal_bounds(forecast, self.last_dates_, self.residuals_by_h_, level, self.scale)


@dataclass(frozen=True)
class IntervalSettings:
    """One recalibration setting for every model (the forecasting job's ``intervals`` config).

    ``recalibrate``: ``auto`` recalibrates a model's intervals only when its own coverage at the
    earlier origins misses a level by more than ``tolerance``; ``always``; ``never`` keeps every
    model's own intervals. ``n_windows`` earlier origins ``step`` days apart, errors on ``scale``
    pooled over +-``band`` days of horizon (see :class:`BacktestConformal`).
    """

    recalibrate: str = "auto"  # the defaults are conf/forecast.yaml's, chosen on SWAST 2017-2018
    n_windows: int = 8
    step: int = 28
    tolerance: float = 0.025
    scale: str = "relative"
    band: int = HORIZON_BAND

    def __post_init__(self):
        if self.recalibrate not in RECALIBRATE:
            raise ValueError(f"recalibrate must be one of {list(RECALIBRATE)}, got {self.recalibrate!r}")
        check_scale(self.scale, self.band)


def with_interval_settings(
    model: Forecaster, settings: IntervalSettings, horizon: int, levels: Sequence[int]
) -> Forecaster:
    """``model`` with ``settings`` applied to its intervals, calibrated up to ``horizon`` days.

    A model already wrapped in :class:`BacktestConformal` keeps its own wrapper (the user chose its
    settings). An :class:`~forecasting.models.AutoForecaster` is not wrapped (that would refit the
    whole choice at every window): it recalibrates its winner on its own inner errors, with this
    mode and tolerance and its own error scale and band (Pearson residuals: the wrapped models'
    relative errors made auto worse on SWAST 2017-2018, experiments/results/swast.md). Any other
    model is wrapped, unless ``recalibrate`` is never; with ``auto``, a history too short for
    ``n_windows`` uses as many windows as fit (at least 2) or, with fewer, the model's own intervals.
    """
    from forecasting.models.auto import AutoForecaster  # auto imports this module

    if isinstance(model, BacktestConformal):
        return model
    if isinstance(model, AutoForecaster):
        return clone(model).set_params(
            recalibrate=settings.recalibrate, coverage_tolerance=settings.tolerance
        )
    if settings.recalibrate == "never":
        return model
    return BacktestConformal(
        model,
        n_windows=settings.n_windows,
        step=settings.step,
        horizon=int(horizon),
        coverage_tolerance=None if settings.recalibrate == "always" else settings.tolerance,
        levels=sorted({int(lv) for lv in levels}),
        scale=settings.scale,
        band=settings.band,
        # Recalibrate where it can: a short history falls back to fewer windows, never to an error
        # the user did not ask for; `always` keeps the full windows (an explicit request).
        min_windows=MIN_WINDOWS if settings.recalibrate == "auto" else None,
    )


def recalibration_state(model: Forecaster) -> str:
    """What a fitted model did with its intervals: ``recalibrated``, ``own`` or ``not checked``
    (a model no recalibration wraps)."""
    recalibrated = getattr(model, "recalibrated_", None)
    if recalibrated is None:
        return "not checked"
    return "recalibrated" if recalibrated else "own"


def check_scale(scale: str, band: int) -> None:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {list(SCALES)}, got {scale!r}")
    if int(band) < 0:
        raise ValueError(f"band must be a whole number of days >= 0, got {band}")


def interval_coverage(folds: pd.DataFrame, levels: Sequence[int]) -> dict[int, float]:
    """Share of actuals inside each level's interval in backtest ``folds`` (``y, lo_L, hi_L``)."""
    coverage = {}
    for lv in sorted({int(lv) for lv in levels}):
        inside = (folds["y"] >= folds[f"lo_{lv}"]) & (folds["y"] <= folds[f"hi_{lv}"])
        coverage[lv] = float(inside.mean())
    return coverage


def residuals_by_horizon(
    folds: pd.DataFrame, horizon: int, scale: str = "pearson", band: int = HORIZON_BAND
) -> dict[int, np.ndarray]:
    """Sorted scaled errors of backtest ``folds`` (``h, y, mean``) for each horizon 1..horizon.

    Each horizon pools the errors of its neighbours within ``band`` days and of all series.
    """
    mean = np.maximum(folds["mean"].to_numpy(dtype=float), 1e-6)
    errors = (folds["y"].to_numpy() - mean) / _spread(mean, scale)
    pooled = pd.DataFrame({"h": folds["h"].to_numpy(), "z": errors})
    return {
        h: np.sort(pooled.loc[(pooled["h"] - h).abs() <= int(band), "z"].to_numpy())
        for h in range(1, int(horizon) + 1)
    }


def _spread(mean: np.ndarray, scale: str) -> np.ndarray:
    """What an error is divided by on ``scale``: sqrt(mean) (Pearson) or the mean (relative)."""
    mean = np.maximum(mean, 0.0)
    return np.sqrt(mean) if scale == "pearson" else mean


def conformal_bounds(
    forecast: pd.DataFrame,
    last_dates: pd.Series,
    residuals: dict[int, np.ndarray],
    level: list[int],
    scale: str = "pearson",
) -> pd.DataFrame:
    """Set ``lo_L, hi_L`` of ``forecast`` (``unique_id, ds, mean``) from residual quantiles by horizon.

    Days beyond the longest calibrated horizon reuse its quantiles. Returns ``forecast`` with the
    bounds (re)written; lower bounds are cut at zero.
    """
    longest = max(residuals)
    days_ahead = (forecast["ds"] - forecast["unique_id"].map(last_dates)).dt.days.to_numpy()
    calibrated = np.clip(days_ahead, 1, longest)
    mean = forecast["mean"].to_numpy(dtype=float)
    spread = _spread(mean, scale)
    for lv in level:
        tail = (1 - lv / 100) / 2
        lo = np.array([conformal_quantile(residuals[d], tail) for d in range(1, longest + 1)])
        hi = np.array([conformal_quantile(residuals[d], 1 - tail) for d in range(1, longest + 1)])
        forecast[f"lo_{lv}"] = np.maximum(mean + lo[calibrated - 1] * spread, 0.0)
        forecast[f"hi_{lv}"] = mean + hi[calibrated - 1] * spread
    return forecast


def conformal_quantile(sorted_residuals: np.ndarray, q: float) -> float:
    """Split-conformal quantile with the finite-sample correction ((n + 1) q / n)."""
    n = len(sorted_residuals)
    if q >= 0.5:
        rank = min(int(np.ceil((n + 1) * q)), n)
    else:
        rank = max(int(np.floor((n + 1) * q)), 1)
    return float(sorted_residuals[rank - 1])
