"""Forecasters follow the interface and the global LightGBM beats the seasonal naive baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from forecasting.backtest import backtest_cutoffs, rolling_origin_backtest
from forecasting.metrics import summary_metrics
from forecasting.models import GlobalLightGBM, SeasonalNaive, interval_columns
from mlops.errors import ConfigError

LEVELS = [80, 95]


def _check_forecast_frame(forecast: pd.DataFrame, history: pd.DataFrame, h: int) -> None:
    assert list(forecast.columns) == ["unique_id", "ds", "mean", *interval_columns(LEVELS)]
    assert len(forecast) == history["unique_id"].nunique() * h
    first = forecast.groupby("unique_id")["ds"].min()
    last_seen = history.groupby("unique_id")["ds"].max()
    assert (first == last_seen + pd.Timedelta(days=1)).all()
    assert (forecast["lo_95"] <= forecast["lo_80"]).all()
    assert (forecast["lo_80"] <= forecast["mean"]).all() and (forecast["mean"] <= forecast["hi_80"]).all()
    assert (forecast["hi_80"] <= forecast["hi_95"]).all() and (forecast["lo_95"] >= 0).all()


def test_seasonal_naive_repeats_last_week_and_widens(small_counts):
    forecast = SeasonalNaive().fit(small_counts).predict(14, LEVELS)
    _check_forecast_frame(forecast, small_counts, 14)
    series = small_counts[small_counts["unique_id"] == "city/C2"]
    mine = forecast[forecast["unique_id"] == "city/C2"]
    np.testing.assert_array_equal(mine["mean"].to_numpy()[:7], series["y"].to_numpy()[-7:])
    np.testing.assert_array_equal(mine["mean"].to_numpy()[7:], series["y"].to_numpy()[-7:])
    width = (mine["hi_80"] - mine["mean"]).to_numpy()
    assert width[7] == pytest.approx(width[0] * np.sqrt(2))


def test_lightgbm_follows_interface_and_is_reproducible(small_counts):
    model = GlobalLightGBM(n_estimators=50, calibration_days=91)
    assert clone(model).get_params() == model.get_params()
    first = model.fit(small_counts).predict(21, LEVELS)
    _check_forecast_frame(first, small_counts, 21)
    again = clone(model).fit(small_counts).predict(21, LEVELS)
    pd.testing.assert_frame_equal(first, again)


def test_lightgbm_beats_seasonal_naive_and_nears_the_oracle(small_counts):
    results = {}
    for name, model in {"naive": SeasonalNaive(), "lgbm": GlobalLightGBM(n_estimators=150)}.items():
        backtest = rolling_origin_backtest(
            model, small_counts, horizon=28, n_origins=3, step=28, level=LEVELS, progress=False
        )
        results[name] = summary_metrics(backtest, LEVELS)
    assert results["lgbm"]["mase"] < 0.85 * results["naive"]["mase"]
    assert results["lgbm"]["mae_vs_oracle"] < 1.08
    assert 0.70 < results["lgbm"]["coverage_80"] < 0.90


def test_backtest_frame_and_origins(small_counts):
    backtest = rolling_origin_backtest(
        SeasonalNaive(), small_counts, horizon=7, n_origins=3, step=5, level=LEVELS, progress=False
    )
    last = small_counts["ds"].max()
    expected = [last - pd.Timedelta(days=7 + 5 * k) for k in (2, 1, 0)]
    assert sorted(backtest["cutoff"].unique()) == expected
    assert set(backtest["h"]) == set(range(1, 8))
    assert len(backtest) == 3 * 7 * small_counts["unique_id"].nunique()
    assert (backtest["scale"] > 0).all() and backtest["y_expected"].notna().all()


def test_backtest_rejects_impossible_protocol(small_counts):
    with pytest.raises(ConfigError, match="n_origins"):
        backtest_cutoffs(small_counts["ds"].max(), 7, 0, 7)
    with pytest.raises(ConfigError, match="training data"):
        rolling_origin_backtest(
            SeasonalNaive(), small_counts, horizon=7, n_origins=400, step=7, progress=False
        )
