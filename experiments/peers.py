"""The libraries a data scientist would otherwise pick, run on exactly our backtest protocol.

Nixtla statsforecast (AutoETS, AutoARIMA, MSTL) and mlforecast (a global LightGBM) through their
own ``cross_validation``, and Prophet refit per series and origin, each configured as its
documentation suggests for daily data. They get the calendar our models get (``calendar=True``,
the default): England's bank holidays from ``holidays`` (the England subdivision of GB) and the
ten festive days 24 Dec - 2 Jan, as exogenous columns in AutoARIMA and mlforecast (with the
annual Fourier terms our ARIMA gets) and as holidays in Prophet. AutoETS takes no regressors;
MSTL keeps its documented ETS trend, which takes none (see ``_statsforecast_model``).
Each returns a frame in the layout of :func:`forecasting.backtest.rolling_origin_backtest`
(``unique_id, cutoff, ds, h, y, mean, lo_L, hi_L, scale``), so one set of metrics scores all.

These libraries come only with the optional ``bench`` extra (``pip install -e .[bench]``); the
toolkit itself never imports them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import holidays
import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from forecasting.backtest import backtest_cutoffs, origin_scales
from forecasting.calendar import FESTIVE_DAYS, fourier_terms

STATSFORECAST_MODELS = ("AutoETS", "AutoARIMA", "MSTL")
PEERS = (*STATSFORECAST_MODELS, "Prophet", "MLForecast")
# Calendar inputs by peer: which columns of :func:`calendar_regressors` each one takes.
TAKES_FOURIER = ("AutoARIMA", "MLForecast")  # the annual cycle; MSTL has its own 365-day season
TAKES_REGRESSORS = ("AutoARIMA", "MLForecast")
ANNUAL_ORDER = 3  # Fourier pairs of the yearly cycle, as our ARIMA (conf/model/arima.yaml)


def england_bank_holidays(years: Sequence[int]) -> dict:
    """England's bank holidays by date and name, from ``holidays`` with the England subdivision.

    ``holidays.UK()`` without a subdivision has only the days common to all four nations (6 a year
    in the pinned version: no Easter Monday, no late-August holiday).
    """
    return dict(holidays.country_holidays("GB", subdiv="ENG", years=list(years)))


def calendar_regressors(ds: pd.Series, fourier: bool) -> pd.DataFrame:
    """Exogenous calendar columns for dates ``ds``: bank holiday, one dummy per festive day and,
    with ``fourier``, the annual sine/cosine pairs."""
    dates = pd.DatetimeIndex(ds)
    bank = england_bank_holidays(range(dates.year.min(), dates.year.max() + 1))
    out = {"bank_holiday": np.isin(dates.date, list(bank)).astype(float)}
    labels = dates.strftime("%m-%d")
    for day in FESTIVE_DAYS:
        out[f"festive_{day.replace('-', '_')}"] = (labels == day).astype(float)
    if fourier:
        terms = fourier_terms(dates, 365.25, ANNUAL_ORDER)
        for k in range(ANNUAL_ORDER):
            out[f"annual_sin{k + 1}"] = terms[:, k]
            out[f"annual_cos{k + 1}"] = terms[:, ANNUAL_ORDER + k]
    return pd.DataFrame(out, index=ds.index)


def prophet_holidays(years: Sequence[int]) -> pd.DataFrame:
    """Prophet's ``holidays`` frame: England's bank holidays by name and each festive day."""
    rows = [{"holiday": name, "ds": pd.Timestamp(day)} for day, name in england_bank_holidays(years).items()]
    for year in years:
        rows += [{"holiday": f"festive {day}", "ds": pd.Timestamp(f"{year}-{day}")} for day in FESTIVE_DAYS]
    return pd.DataFrame(rows)


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
    calendar: bool = True,
    mase_scale: str = "seasonal_naive",
) -> pd.DataFrame:
    """Backtest peer ``name`` at the same origins as our models and return our backtest layout.

    With ``calendar`` (the default) the peer gets England's bank holidays and the festive days
    (and the annual Fourier terms where noted above), as our models do.
    """
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; choose from {list(PEERS)}")
    cutoffs = backtest_cutoffs(data["ds"].max(), horizon, n_origins, step, first_cutoff)
    history = data[["unique_id", "ds", "y"]]
    if calendar and name in TAKES_REGRESSORS:
        history = pd.concat([history, calendar_regressors(history["ds"], name in TAKES_FOURIER)], axis=1)
    if name == "AutoARIMA" and calendar:
        forecasts = _arima_regression_backtest(history, cutoffs, horizon, step, level)
    elif name in STATSFORECAST_MODELS:
        forecasts = _statsforecast_backtest(name, history, cutoffs, horizon, step, level, n_jobs)
    elif name == "MLForecast":
        forecasts = _mlforecast_backtest(history, cutoffs, horizon, step, level, n_jobs)
    else:
        forecasts = _prophet_backtest(history, cutoffs, horizon, level, n_jobs, calendar)
    return _with_truth_and_scale(forecasts, data, season_length, mase_scale)


def _statsforecast_model(name: str):
    from statsforecast.models import MSTL, AutoARIMA, AutoETS

    if name == "AutoETS":
        return AutoETS(season_length=7)
    if name == "AutoARIMA":
        # approximation=True (CSS instead of exact likelihood during the order search) is what R's
        # auto.arima does for series longer than 150 points; statsforecast defaults to the exact
        # search, which took 64 s per origin for the 7 SWAST areas here against 11 s. With
        # exogenous columns it is a regression with ARIMA errors, as our ArimaRegression.
        return AutoARIMA(season_length=7, approximation=True)
    # Weekly and annual seasonality, trend by ETS without season: the library's documented setup.
    # An AutoARIMA trend would take the calendar regressors, but its order search with them costs
    # what AutoARIMA's does (below), more than this run could afford; MSTL gets no calendar.
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
    return _in_our_columns(result, name, cutoffs, level, "statsforecast")


def _in_our_columns(
    result: pd.DataFrame, model: str, cutoffs: list[pd.Timestamp], level: Sequence[int], library: str
) -> pd.DataFrame:
    """A Nixtla cross-validation table in our backtest's columns, after checking it used our origins."""
    found = sorted(pd.to_datetime(result["cutoff"].unique()))
    if found != list(cutoffs):
        raise AssertionError(f"{library} origins {found[:2]}... differ from ours {cutoffs[:2]}...")
    renamed = {model: "mean"}
    for lv in level:
        renamed |= {f"{model}-lo-{lv}": f"lo_{lv}", f"{model}-hi-{lv}": f"hi_{lv}"}
    return result.rename(columns=renamed)[["unique_id", "cutoff", "ds", *renamed.values()]]


def _arima_regression_backtest(
    history: pd.DataFrame, cutoffs: list[pd.Timestamp], horizon: int, step: int, level: Sequence[int]
) -> pd.DataFrame:
    """AutoARIMA with the calendar regressors (regression with ARIMA errors), per series.

    The order is searched by AutoARIMA, regressors included, at the first origin of the backtest;
    that order is refitted (CSS-ML, the library's default) at every origin. With 17 regressors the
    search took 50-100 s per series on this (shared) machine, so searching again at each of 41
    origins x 7 areas was out of reach; the coefficients are re-estimated at every origin, on data
    up to it only.
    """
    from statsforecast import StatsForecast
    from statsforecast.models import ARIMA, AutoARIMA

    end = cutoffs[-1] + pd.Timedelta(days=horizon)
    regressors = [c for c in history.columns if c not in ("unique_id", "ds", "y")]
    frames = []
    for _, frame in history[history["ds"] <= end].groupby("unique_id"):
        first = frame[frame["ds"] <= cutoffs[0]]
        search = AutoARIMA(season_length=7, approximation=True)
        search.fit(first["y"].to_numpy(float), first[regressors].to_numpy(float))
        p, q, seasonal_p, seasonal_q, period, d, seasonal_d = search.model_["arma"]
        coefficients = search.model_["coef"]
        model = ARIMA(
            order=(p, d, q),
            season_length=max(int(period), 1),
            seasonal_order=(seasonal_p, seasonal_d, seasonal_q),
            include_mean="intercept" in coefficients,
            include_drift="drift" in coefficients,
            method="CSS-ML",  # CSS alone lost the regression here (forecasts near zero)
            alias="AutoARIMA",
        )
        engine = StatsForecast(models=[model], freq="D", n_jobs=1)
        frames.append(
            engine.cross_validation(
                df=frame, h=horizon, n_windows=len(cutoffs), step_size=step, level=list(level), refit=True
            )
        )
    result = pd.concat(frames, ignore_index=True)
    return _in_our_columns(result, "AutoARIMA", cutoffs, level, "statsforecast")


def _mlforecast_backtest(
    history: pd.DataFrame,
    cutoffs: list[pd.Timestamp],
    horizon: int,
    step: int,
    level: Sequence[int],
    n_jobs: int,
) -> pd.DataFrame:
    """A global LightGBM over all series, recursive, with the library's conformal intervals."""
    import lightgbm as lgb
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean
    from mlforecast.utils import PredictionIntervals

    # Set up as the library's guide for daily data suggests: weekly lags, rolling means of the
    # last week and month, the day of the week and month; LightGBM at its defaults. One thread, as
    # our own LightGBM inside auto: on a few thousand rows a second OpenMP thread mostly spins on a
    # shared machine (SWAST 2017: 510 s wall, 251 s CPU for 11 origins with two threads).
    model = lgb.LGBMRegressor(n_estimators=300, learning_rate=0.05, verbosity=-1, n_jobs=1, random_state=0)
    engine = MLForecast(
        models={"MLForecast": model},
        freq="D",
        lags=[1, 7, 14, 28],
        lag_transforms={1: [RollingMean(window_size=7), RollingMean(window_size=28)]},
        date_features=["dayofweek", "month"],
    )
    end = cutoffs[-1] + pd.Timedelta(days=horizon)
    result = engine.cross_validation(
        df=history[history["ds"] <= end],
        n_windows=len(cutoffs),
        h=horizon,
        step_size=step,
        static_features=[],
        refit=True,
        prediction_intervals=PredictionIntervals(n_windows=2, h=horizon),
        level=list(level),
    )
    return _in_our_columns(result, "MLForecast", cutoffs, level, "mlforecast")


def _prophet_backtest(
    history: pd.DataFrame,
    cutoffs: list[pd.Timestamp],
    horizon: int,
    level: Sequence[int],
    n_jobs: int,
    calendar: bool = True,
) -> pd.DataFrame:
    logging.getLogger("cmdstanpy").setLevel(logging.WARNING)  # one INFO line per fit otherwise
    tasks = [(series, cutoff) for cutoff in cutoffs for series in sorted(history["unique_id"].unique())]
    by_series = {series: frame for series, frame in history.groupby("unique_id")}
    years = range(history["ds"].dt.year.min(), cutoffs[-1].year + horizon // 365 + 2)
    calendar_days = prophet_holidays(years) if calendar else None
    forecasts = Parallel(n_jobs=n_jobs)(
        delayed(_prophet_forecast)(by_series[series], series, cutoff, horizon, tuple(level), calendar_days)
        for series, cutoff in tqdm(tasks, desc="Prophet fits", leave=False)
    )
    return pd.concat(forecasts, ignore_index=True)


def _prophet_forecast(
    series_history: pd.DataFrame,
    series: str,
    cutoff: pd.Timestamp,
    horizon: int,
    level: tuple[int, ...],
    calendar_days: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Prophet with England's bank holidays and the festive days, yearly and weekly seasonality;
    quantiles from its samples."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
    from prophet import Prophet

    np.random.seed(0)  # Prophet draws its predictive samples from numpy's global generator
    train = series_history[series_history["ds"] <= cutoff][["ds", "y"]]
    model = Prophet(
        yearly_seasonality=True, weekly_seasonality=True, daily_seasonality=False, holidays=calendar_days
    )
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


def _with_truth_and_scale(
    forecasts: pd.DataFrame, data: pd.DataFrame, season_length: int, mase_scale: str = "seasonal_naive"
) -> pd.DataFrame:
    """Add the actuals, days ahead and each origin's MASE scale, as our own backtest does."""
    forecasts = forecasts.assign(
        cutoff=pd.to_datetime(forecasts["cutoff"]), ds=pd.to_datetime(forecasts["ds"])
    )
    merged = forecasts.merge(data, on=["unique_id", "ds"], how="inner", validate="many_to_one")
    merged["h"] = (merged["ds"] - merged["cutoff"]).dt.days
    scales = {
        cutoff: origin_scales(data[data["ds"] <= cutoff], season_length, mase_scale)
        for cutoff in merged["cutoff"].unique()
    }
    merged["scale"] = [
        scales[cutoff][series] for series, cutoff in zip(merged["unique_id"], merged["cutoff"], strict=True)
    ]
    return merged.sort_values(["cutoff", "unique_id", "ds"], ignore_index=True)
