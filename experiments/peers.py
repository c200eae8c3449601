"""The libraries a data scientist would otherwise pick, run on exactly our backtest protocol.

Nixtla statsforecast (AutoETS, AutoARIMA, MSTL) through its own ``cross_validation``, and Prophet
refit per series and origin, both configured as their documentation suggests for daily data.
Each returns a frame in the layout of :func:`forecasting.backtest.rolling_origin_backtest`
(``unique_id, cutoff, ds, h, y, mean, lo_L, hi_L, scale``), so one set of metrics scores all.

These libraries come only with the optional ``bench`` extra (``pip install -e .[bench]``); the
toolkit itself never imports them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from forecasting.backtest import backtest_cutoffs, origin_scales

STATSFORECAST_MODELS = ("AutoETS", "AutoARIMA", "MSTL")
PEERS = (*STATSFORECAST_MODELS, "Prophet")


def peer_backtest(
    name: str,
    data: pd.DataFrame,
    horizon: int,
    n_origins: int,
    step: int,
    level: Sequence[int],
    first_cutoff: str | None = None,
    season_length: int = 7,
    n_jobs: int = 2,
) -> pd.DataFrame:
    """Backtest peer ``name`` at the same origins as our models and return our backtest layout."""
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; choose from {list(PEERS)}")
    cutoffs = backtest_cutoffs(data["ds"].max(), horizon, n_origins, step, first_cutoff)
    history = data[["unique_id", "ds", "y"]]
    if name in STATSFORECAST_MODELS:
        forecasts = _statsforecast_backtest(name, history, cutoffs, horizon, step, level, n_jobs)
    else:
        forecasts = _prophet_backtest(history, cutoffs, horizon, level, n_jobs)
    return _with_truth_and_scale(forecasts, data, season_length)


def _statsforecast_model(name: str):
    from statsforecast.models import MSTL, AutoARIMA, AutoETS

    if name == "AutoETS":
        return AutoETS(season_length=7)
    if name == "AutoARIMA":
        # approximation=True (CSS instead of exact likelihood during the order search) is what R's
        # auto.arima does for series longer than 150 points; statsforecast defaults to the exact
        # search, which took 64 s per origin for the 7 SWAST areas here against 11 s.
        return AutoARIMA(season_length=7, approximation=True)
    # Weekly and annual seasonality, trend by ETS without season: the library's documented setup.
    return MSTL(season_length=[7, 365], trend_forecaster=AutoETS(model="ZZN"))


def _statsforecast_backtest(
    name: str,
    history: pd.DataFrame,
    cutoffs: list[pd.Timestamp],
    horizon: int,
    step: int,
    level: Sequence[int],
    n_jobs: int,
) -> pd.DataFrame:
    from statsforecast import StatsForecast

    # cross_validation counts its windows back from the end of the data, so end the data where
    # our newest origin's horizon ends: the windows then start exactly at our origins.
    end = cutoffs[-1] + pd.Timedelta(days=horizon)
    engine = StatsForecast(models=[_statsforecast_model(name)], freq="D", n_jobs=n_jobs)
    result = engine.cross_validation(
        df=history[history["ds"] <= end],
        h=horizon,
        n_windows=len(cutoffs),
        step_size=step,
        level=list(level),
        refit=True,
    )
    found = sorted(pd.to_datetime(result["cutoff"].unique()))
    if found != list(cutoffs):
        raise AssertionError(f"statsforecast origins {found[:2]}... differ from ours {cutoffs[:2]}...")
    renamed = {name: "mean"}
    for lv in level:
        renamed |= {f"{name}-lo-{lv}": f"lo_{lv}", f"{name}-hi-{lv}": f"hi_{lv}"}
    return result.rename(columns=renamed)[["unique_id", "cutoff", "ds", *renamed.values()]]


def _prophet_backtest(
    history: pd.DataFrame, cutoffs: list[pd.Timestamp], horizon: int, level: Sequence[int], n_jobs: int
) -> pd.DataFrame:
    logging.getLogger("cmdstanpy").setLevel(logging.WARNING)  # one INFO line per fit otherwise
    tasks = [(series, cutoff) for cutoff in cutoffs for series in sorted(history["unique_id"].unique())]
    by_series = {series: frame for series, frame in history.groupby("unique_id")}
    forecasts = Parallel(n_jobs=n_jobs)(
        delayed(_prophet_forecast)(by_series[series], series, cutoff, horizon, tuple(level))
        for series, cutoff in tqdm(tasks, desc="Prophet fits", leave=False)
    )
    return pd.concat(forecasts, ignore_index=True)


def _prophet_forecast(
    series_history: pd.DataFrame, series: str, cutoff: pd.Timestamp, horizon: int, level: tuple[int, ...]
) -> pd.DataFrame:
    """Prophet with UK bank holidays, yearly and weekly seasonality; quantiles from its samples."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
    from prophet import Prophet

    np.random.seed(0)  # Prophet draws its predictive samples from numpy's global generator
    train = series_history[series_history["ds"] <= cutoff][["ds", "y"]]
    model = Prophet(yearly_seasonality=True, weekly_seasonality=True, daily_seasonality=False)
    model.add_country_holidays(country_name="UK")
    model.fit(train)
    future = pd.DataFrame({"ds": pd.date_range(cutoff + pd.Timedelta(days=1), periods=horizon, freq="D")})
    samples = model.predictive_samples(future)["yhat"]  # (days, uncertainty_samples)
    out = pd.DataFrame({"unique_id": series, "cutoff": cutoff, "ds": future["ds"]})
    out["mean"] = samples.mean(axis=1)
    for lv in level:
        tail = (100 - lv) / 200
        out[f"lo_{lv}"] = np.quantile(samples, tail, axis=1)
        out[f"hi_{lv}"] = np.quantile(samples, 1 - tail, axis=1)
    return out


def _with_truth_and_scale(forecasts: pd.DataFrame, data: pd.DataFrame, season_length: int) -> pd.DataFrame:
    """Add the actuals, days ahead and each origin's MASE scale, as our own backtest does."""
    forecasts = forecasts.assign(
        cutoff=pd.to_datetime(forecasts["cutoff"]), ds=pd.to_datetime(forecasts["ds"])
    )
    merged = forecasts.merge(data, on=["unique_id", "ds"], how="inner", validate="many_to_one")
    merged["h"] = (merged["ds"] - merged["cutoff"]).dt.days
    scales = {
        cutoff: origin_scales(data[data["ds"] <= cutoff], season_length)
        for cutoff in merged["cutoff"].unique()
    }
    merged["scale"] = [
        scales[cutoff][series] for series, cutoff in zip(merged["unique_id"], merged["cutoff"], strict=True)
    ]
    return merged.sort_values(["cutoff", "unique_id", "ds"], ignore_index=True)
