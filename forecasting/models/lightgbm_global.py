"""One LightGBM model across all series, on top of an explicit per-series level and trend.

Trees cannot extrapolate, so each series' level and trend come from a Poisson regression on time
(with weekday and annual terms so the seasons do not bias the slope); LightGBM then learns the
calendar's multiplicative effect on that baseline, shared across series, with a Poisson objective
whose starting score is the log baseline. Every feature is known in advance, so any horizon is
valid without recursive lags. Real series shift level (a new contract, a changed boundary), so a
final per-series factor rescales the model to the ratio of actual to fitted calls over the most
recent ``level_window_days``: the local level that differenced models such as ARIMA track.

Extra ``x_*`` regressors (e.g. temperature) are tree features beside the calendar: their effect is
multiplicative on the baseline and may be non-linear (heat above a threshold), but, like any tree
feature, it is flat beyond the range seen in training (a record heatwave counts as the hottest
day seen). In the Poisson trend they are controls only, as the weekday and annual terms are, so an
unusually hot or cold stretch does not tilt the slope; the extrapolated baseline is time alone.

Intervals are split-conformal: the model is first fitted without the last ``calibration_days`` of
each series, its Pearson residuals (y - mu) / sqrt(mu) on those days are kept per series, and
their empirical quantiles around the final model's mean give the bounds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from forecasting.calendar import calendar_features, fourier_terms
from forecasting.models.base import Forecaster
from forecasting.models.conformal import conformal_quantile
from forecasting.models.regressors import Standardizer

_EPOCH = np.datetime64("2000-01-01", "D")


def allowed_threads(n_jobs: int) -> int:
    """``n_jobs``, capped by ``OMP_NUM_THREADS`` when the process was given one.

    A Dask worker (its nanny sets ``OMP_NUM_THREADS=1``) or a batch job that sets it says how many
    threads its process may use; LightGBM's explicit ``num_threads`` would override that, and two
    such fits on two shared cores slowed each other several-fold (OpenMP threads spin while they
    wait). With ``deterministic`` and row-wise histograms the fits compared at 1 and 2 threads were
    identical (tests/engine/test_engine_backtest.py compares the cluster's tables with the loop's)."""
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return min(int(n_jobs), int(limit)) if limit.isdigit() and int(limit) > 0 and int(n_jobs) > 0 else n_jobs


def _years_since_epoch(ds: pd.Series) -> np.ndarray:
    return (ds.to_numpy().astype("datetime64[D]") - _EPOCH).astype(float) / 365.25


def _trend_design(ds: pd.Series, exog: np.ndarray) -> np.ndarray:
    """Time plus weekday, annual and regressor controls; only the time column is kept as the baseline."""
    dates = pd.DatetimeIndex(ds)
    weekday = np.eye(7)[dates.day_of_week][:, 1:]
    controls = Standardizer.fit(exog).transform(exog)  # on one scale, for a well-conditioned solve
    return np.column_stack([_years_since_epoch(ds), weekday, fourier_terms(dates, 365.25, 3), controls])


@dataclass
class _SeriesTrend:
    intercept: float
    slope: float
    centre: float

    def log_level(self, ds: pd.Series) -> np.ndarray:
        return self.intercept + self.slope * (_years_since_epoch(ds) - self.centre)


def _poisson_regression(design: np.ndarray, y: np.ndarray, max_iter: int = 50) -> np.ndarray:
    """Coefficients (intercept first) of a log-link Poisson regression by Newton's method (IRLS).

    A dozen columns and a few years of days: a direct solve per step is 30 times faster than a
    general-purpose GLM solver, which matters when fitting hundreds of series at every origin.
    """
    X = np.column_stack([np.ones(len(y)), design])
    beta = np.zeros(X.shape[1])
    beta[0] = np.log(max(y.mean(), 1e-9))
    ridge = 1e-8 * np.eye(X.shape[1])
    for _ in range(max_iter):
        eta = X @ beta
        mu = np.exp(eta)
        weighted = X.T * mu
        step = np.linalg.solve(weighted @ X + ridge, X.T @ (y - mu))
        beta += step
        if np.max(np.abs(step)) < 1e-9:
            break
    return beta


def _fit_trend(ds: pd.Series, y: np.ndarray, exog: np.ndarray) -> _SeriesTrend:
    if y.sum() <= 0:
        return _SeriesTrend(np.log(1e-3), 0.0, 0.0)
    design = _trend_design(ds, exog)
    centre = design[:, 0].mean()
    design[:, 0] -= centre
    beta = _poisson_regression(design, y.astype(float))
    # The intercept absorbs the average calendar (and regressor) effect, so exp(log_level) is the
    # typical day.
    calendar_mean = np.log(np.mean(np.exp(design[:, 1:] @ beta[2:])))
    return _SeriesTrend(beta[0] + calendar_mean, beta[1], centre)


def _features(
    frame: pd.DataFrame, series: pd.CategoricalDtype, nation: str, order: int, regressors: tuple[str, ...]
) -> pd.DataFrame:
    features = calendar_features(frame["ds"], nation, order)
    features.insert(0, "series", pd.Categorical(frame["unique_id"].to_numpy(), dtype=series))
    for name in regressors:
        features[name] = frame[name].to_numpy(dtype=float)
    return features


def _log_baseline(frame: pd.DataFrame, trends: dict[str, _SeriesTrend]) -> np.ndarray:
    out = np.empty(len(frame))
    for uid, rows in frame.groupby("unique_id", sort=False).indices.items():
        out[rows] = trends[uid].log_level(frame["ds"].iloc[rows])
    return out


@dataclass
class _MeanModel:
    """Fitted pieces that map (series, date) to an expected count."""

    trends: dict[str, _SeriesTrend]
    booster: lgb.Booster
    series: pd.CategoricalDtype
    nation: str
    annual_order: int
    regressors: tuple[str, ...] = ()
    recent_level: dict[str, float] | None = None

    def mean(self, frame: pd.DataFrame) -> np.ndarray:
        features = _features(frame, self.series, self.nation, self.annual_order, self.regressors)
        raw = self.booster.predict(features, raw_score=True)
        mean = np.exp(raw + _log_baseline(frame, self.trends))
        if self.recent_level:
            mean *= frame["unique_id"].map(self.recent_level).to_numpy()
        return mean


class GlobalLightGBM(Forecaster):
    """LightGBM across series with explicit trend and conformal intervals.

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves, min_child_samples, feature_fraction, lambda_l2
        LightGBM hyperparameters.
    annual_order : int
        Number of Fourier pairs for the yearly cycle given to the trees.
    trend_window_days : int
        History used to estimate each series' level and trend (recent years matter most).
    level_window_days : int
        Recent days whose actual-to-fitted ratio rescales each series (0 turns this off).
    calibration_days : int
        Days held out at the end of each series to measure residuals for the intervals.
    nation : str
        UK nation whose bank holidays are features.
    n_jobs : int
        Threads for LightGBM (at most ``OMP_NUM_THREADS`` when that is set: see
        :func:`allowed_threads`).
    random_state : int
        Seed, for reproducible fits.
    """

    uses_regressors = True

    def __init__(
        self,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 7,
        min_child_samples: int = 50,
        feature_fraction: float = 0.9,
        lambda_l2: float = 1.0,
        annual_order: int = 4,
        trend_window_days: int = 1095,
        level_window_days: int = 91,
        calibration_days: int = 182,
        nation: str = "england",
        n_jobs: int = 2,
        random_state: int = 0,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.lambda_l2 = lambda_l2
        self.annual_order = annual_order
        self.trend_window_days = trend_window_days
        self.level_window_days = level_window_days
        self.calibration_days = calibration_days
        self.nation = nation
        self.n_jobs = n_jobs
        self.random_state = random_state

    def min_history_days(self) -> int:
        return 2 * int(self.calibration_days) + 28

    def fit(self, df: pd.DataFrame) -> GlobalLightGBM:
        """Fit on long-format history; needs more than ``2 * calibration_days`` days per series."""
        lengths = df.groupby("unique_id").size()
        needed = 2 * self.calibration_days + 28
        if (short := lengths[lengths < needed]).size:
            raise ValueError(
                f"LightGBM needs at least {needed} days per series (2 x calibration_days + 28); "
                f"{short.index[0]!r} has {short.iloc[0]}: lower model.calibration_days, add history or "
                f"leave the series out with data.exclude_series=[{short.index[0]}]"
            )
        self._remember_history(df)
        df = df[["unique_id", "ds", "y", *self.regressors_]].reset_index(drop=True)
        cut = df["unique_id"].map(self.last_dates_) - pd.Timedelta(days=self.calibration_days)
        holdout = df["ds"] > cut
        inner = self._fit_mean_model(df[~holdout])
        held = df[holdout].reset_index(drop=True)
        mu = inner.mean(held)
        pearson = (held["y"].to_numpy() - mu) / np.sqrt(np.maximum(mu, 1e-6))
        self.calibration_residuals_ = {
            uid: np.sort(pearson[rows]) for uid, rows in held.groupby("unique_id").indices.items()
        }
        self.mean_model_ = self._fit_mean_model(df)
        return self

    def _fit_mean_model(self, df: pd.DataFrame) -> _MeanModel:
        regressors = tuple(self.regressors_)
        trends = {}
        for uid, rows in df.groupby("unique_id"):
            recent = rows[rows["ds"] > rows["ds"].max() - pd.Timedelta(days=self.trend_window_days)]
            exog = recent[list(regressors)].to_numpy(dtype=float)
            trends[uid] = _fit_trend(recent["ds"], recent["y"].to_numpy(), exog)
        series = pd.CategoricalDtype(self.series_)
        data = lgb.Dataset(
            _features(df, series, self.nation, self.annual_order, regressors),
            label=df["y"].to_numpy(),
            init_score=_log_baseline(df, trends),
            categorical_feature=["series"],
        )
        params = {
            "objective": "poisson",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "lambda_l2": self.lambda_l2,
            "num_threads": allowed_threads(self.n_jobs),
            "seed": self.random_state,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }
        booster = lgb.train(params, data, num_boost_round=self.n_estimators)
        model = _MeanModel(trends, booster, series, self.nation, self.annual_order, regressors)
        if self.level_window_days > 0:
            recent = df[
                df["ds"]
                > df["unique_id"].map(df.groupby("unique_id")["ds"].max())
                - pd.Timedelta(days=self.level_window_days)
            ].reset_index(drop=True)
            fitted = recent.assign(fitted=model.mean(recent)).groupby("unique_id")[["y", "fitted"]].sum()
            model.recent_level = (fitted["y"] / fitted["fitted"].clip(lower=1e-9)).to_dict()
        return model

    def _predict(self, frame: pd.DataFrame, h: int, level: list[int]) -> pd.DataFrame:
        mean = self.mean_model_.mean(frame)
        frame = frame[["unique_id", "ds"]].copy()
        frame["mean"] = mean
        root = np.sqrt(mean)
        for lv in level:
            tail = (1 - lv / 100) / 2
            bounds = {
                uid: (conformal_quantile(z, tail), conformal_quantile(z, 1 - tail))
                for uid, z in self.calibration_residuals_.items()
            }
            lo, hi = np.array([bounds[uid] for uid in frame["unique_id"]]).T
            frame[f"lo_{lv}"] = np.maximum(mean + lo * root, 0.0)
            frame[f"hi_{lv}"] = mean + hi * root
        return frame
