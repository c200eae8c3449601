"""Intervals recalibrated on the model's own backtest errors keep its mean and fix its coverage."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.base import clone

from forecasting.backtest import rolling_origin_backtest
from forecasting.metrics import summary_metrics
from forecasting.models import BacktestConformal, CalendarGLM, SeasonalNaive, interval_columns

LEVELS = [80, 95]


def test_keeps_the_wrapped_mean_and_returns_ordered_bounds(small_counts):
    wrapped = BacktestConformal(CalendarGLM(), n_windows=2, step=28, horizon=28)
    assert clone(wrapped).get_params()["model"].get_params() == CalendarGLM().get_params()
    forecast = wrapped.fit(small_counts).predict(35, LEVELS)  # beyond the calibrated 28 days too
    plain = CalendarGLM().fit(small_counts).predict(35, LEVELS)
    assert list(forecast.columns) == ["unique_id", "ds", "mean", *interval_columns(LEVELS)]
    pd.testing.assert_series_equal(forecast["mean"], plain["mean"])
    assert (forecast["lo_95"] <= forecast["lo_80"]).all() and (forecast["lo_80"] <= forecast["mean"]).all()
    assert (forecast["mean"] <= forecast["hi_80"]).all() and (forecast["hi_80"] <= forecast["hi_95"]).all()
    assert (forecast["lo_95"] >= 0).all()


def test_brings_a_badly_calibrated_model_near_nominal_coverage(small_counts):
    # The seasonal naive's own intervals widen with sqrt(weeks ahead) and over-cover at 4 weeks.
    protocol = dict(horizon=28, n_origins=4, step=28, level=LEVELS)
    plain = summary_metrics(rolling_origin_backtest(SeasonalNaive(), small_counts, **protocol), LEVELS)
    conformal = BacktestConformal(SeasonalNaive(), n_windows=6, step=14, horizon=28)
    calibrated = summary_metrics(rolling_origin_backtest(conformal, small_counts, **protocol), LEVELS)
    assert calibrated["mase"] == pytest.approx(plain["mase"])  # same point forecasts
    assert abs(calibrated["coverage_80"] - 0.80) < abs(plain["coverage_80"] - 0.80)
    assert abs(calibrated["coverage_80"] - 0.80) < 0.06


def test_refuses_calibration_origins_before_the_data(small_counts):
    with pytest.raises(ValueError, match="too little history before the oldest calibration origin"):
        BacktestConformal(SeasonalNaive(), n_windows=200, step=28, horizon=28).fit(small_counts)


def test_model_group_wraps_any_model_from_the_command_line():
    from forecasting.models import ETS, GlobalLightGBM
    from forecasting.pipeline import build_forecaster
    from tests.conftest import compose_config

    default = build_forecaster(compose_config("forecast", ["model=conformal"]).model)
    assert isinstance(default, BacktestConformal) and isinstance(default.model, GlobalLightGBM)
    tuned = build_forecaster(
        compose_config("forecast", ["model=conformal", "model.model.n_estimators=7"]).model
    )
    assert tuned.model.n_estimators == 7
    cfg = compose_config("forecast", ["model=conformal", "model@model.model=ets"])
    assert isinstance(build_forecaster(cfg.model).model, ETS)


def test_recalibrates_only_where_the_own_intervals_miss_on_earlier_origins(small_counts):
    # The seasonal naive over-covers at four weeks: recalibrated at a 2.5-point tolerance ...
    naive = BacktestConformal(SeasonalNaive(), n_windows=4, step=14, horizon=28, coverage_tolerance=0.025)
    naive.fit(small_counts)
    assert naive.recalibrated_ and naive.own_coverage_[80] > 0.825
    # ... and kept when any miss is tolerated: then the forecast is the model's own.
    kept = BacktestConformal(SeasonalNaive(), n_windows=4, step=14, horizon=28, coverage_tolerance=1.0)
    kept.fit(small_counts)
    assert not kept.recalibrated_
    pd.testing.assert_frame_equal(
        kept.predict(28, LEVELS), SeasonalNaive().fit(small_counts).predict(28, LEVELS)
    )
    assert not naive.predict(28, LEVELS)["hi_80"].equals(kept.predict(28, LEVELS)["hi_80"])
