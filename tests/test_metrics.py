"""Metrics against examples computed by hand."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from forecasting.backtest import rolling_origin_backtest
from forecasting.comparison import block_bootstrap_interval, diebold_mariano, overlap_lags, per_origin_loss
from forecasting.config_checks import check_config
from forecasting.metrics import (
    band_summary,
    coverage,
    mae,
    mase,
    mase_scale,
    mean_deviation_scale,
    metrics_by_band,
    metrics_by_horizon,
    rmse,
    seasonal_naive_scale,
    summary_metrics,
)
from forecasting.models import SeasonalNaive
from forecasting.pipeline import train
from mlops.errors import ConfigError
from tests.conftest import compose_config, fast_forecast_overrides


def test_point_errors():
    y, y_hat = [10, 12, 8], [11, 10, 8]  # errors -1, 2, 0
    assert mae(y, y_hat) == pytest.approx(1.0)
    assert rmse(y, y_hat) == pytest.approx(np.sqrt(5 / 3))


def test_seasonal_naive_scale_and_mase():
    # Period 2: differences y[t] - y[t-2] = (3-1, 4-2, 7-3) = (2, 2, 4): mean 8/3.
    assert seasonal_naive_scale([1, 2, 3, 4, 7], season_length=2) == pytest.approx(8 / 3)
    assert mase([10, 10], [12, 6], scale=2.0) == pytest.approx((2 / 2 + 4 / 2) / 2)
    with pytest.raises(ValueError, match="more than 7"):
        seasonal_naive_scale([1, 2, 3], season_length=7)


def test_coverage_counts_bounds_as_inside():
    assert coverage([1, 5, 9, 10], lo=[1, 0, 0, 0], hi=[2, 4, 9, 9]) == pytest.approx(0.5)


def test_metrics_by_horizon_pool_series_and_origins():
    backtest = pd.DataFrame(
        {
            "unique_id": ["a", "a", "b", "b"],
            "h": [1, 2, 1, 2],
            "y": [10.0, 10.0, 20.0, 20.0],
            "mean": [12.0, 10.0, 20.0, 26.0],
            "lo_80": [11.0, 9.0, 19.0, 21.0],
            "hi_80": [13.0, 11.0, 21.0, 27.0],
            "scale": [2.0, 2.0, 4.0, 4.0],
            "y_expected": [11.0, 10.0, 21.0, 20.0],
        }
    )
    by_h = metrics_by_horizon(backtest, [80]).set_index("h")
    assert by_h.loc[1, "mae"] == pytest.approx(1.0)  # |10-12|, |20-20|
    assert by_h.loc[2, "mase"] == pytest.approx((0 / 2 + 6 / 4) / 2)
    assert by_h.loc[1, "coverage_80"] == pytest.approx(0.5)
    assert by_h.loc[1, "oracle_mae"] == pytest.approx(1.0)
    overall = summary_metrics(backtest, [80])
    assert overall["mae"] == pytest.approx(2.0)
    assert overall["mae_vs_oracle"] == pytest.approx(2.0 / 0.5)


def test_interval_and_probabilistic_scores():
    from forecasting.metrics import crps_from_quantiles, pinball, quantile_columns, smape, winkler

    assert smape([100, 0], [50, 0]) == pytest.approx(100 * (2 * 50 / 150) / 2)
    # q = 0.9: under-forecast by 10 costs 9, over-forecast by 10 costs 1.
    assert pinball([10, 10], [0, 20], 0.9) == pytest.approx((9 + 1) / 2)
    # 80 % interval: alpha = 0.2, a miss by 1 costs 2 / 0.2 = 10 on top of the width 4.
    assert winkler([5, 11], [2, 2], [6, 6], 80) == pytest.approx((4 + 4 + 5 * 10) / 2)
    assert list(quantile_columns([80])) == [0.1, 0.5, 0.9]
    # A perfect point forecast at every quantile has zero CRPS; a wider spread costs more.
    y = np.array([10.0, 12.0])
    assert crps_from_quantiles(y, {0.1: y, 0.5: y, 0.9: y}) == 0
    narrow = crps_from_quantiles(y, {0.1: y - 1, 0.5: y, 0.9: y + 1})
    wide = crps_from_quantiles(y, {0.1: y - 5, 0.5: y, 0.9: y + 5})
    assert 0 < narrow < wide


def test_metrics_within_horizon_accumulate_days():
    from forecasting.metrics import metrics_within_horizon

    backtest = pd.DataFrame(
        {
            "h": [1, 2, 3],
            "y": [10.0, 10.0, 10.0],
            "mean": [10.0, 12.0, 16.0],
            "lo_80": [9.0, 11.0, 9.0],  # the second day falls below its interval
            "hi_80": [11.0, 13.0, 17.0],
            "scale": [2.0] * 3,
        }
    )
    within = metrics_within_horizon(backtest, [80], [1, 3]).set_index("h")
    assert within.loc[1, "mae"] == 0 and within.loc[3, "mae"] == pytest.approx(8 / 3)
    assert within.loc[1, "coverage_80"] == 1 and within.loc[3, "coverage_80"] == pytest.approx(2 / 3)


def test_mean_deviation_scale_is_the_mean_absolute_deviation_from_the_mean():
    # mean 4: deviations 3, 2, 1, 6 -> 3
    assert mean_deviation_scale([1, 2, 3, 10]) == pytest.approx(3.0)
    assert mase_scale([1, 2, 3, 10], "mean_deviation") == pytest.approx(3.0)
    assert mase_scale([1, 2, 3, 4, 7], "seasonal_naive", season_length=2) == pytest.approx(8 / 3)
    with pytest.raises(ValueError, match="mean_deviation"):
        mase_scale([1, 2, 3], "naive")


def test_horizon_bands_score_only_their_days():
    backtest = pd.DataFrame(
        {
            "h": [1, 2, 3, 4],
            "y": [10.0, 10.0, 10.0, 10.0],
            "mean": [11.0, 12.0, 14.0, 18.0],  # errors 1, 2, 4, 8
            "lo_80": [9.0] * 4,
            "hi_80": [11.0] * 4,
            "scale": [2.0] * 4,
        }
    )
    by_band = metrics_by_band(backtest, [80], [[1, 2], [3, 4]]).set_index("band")
    assert by_band.loc["h1_2", "mae"] == pytest.approx(1.5)
    assert by_band.loc["h3_4", "mase"] == pytest.approx(6 / 2)
    flat = band_summary(by_band.reset_index())
    assert flat["mae_h3_4"] == pytest.approx(6.0) and flat["coverage_80_h1_2"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no forecasts"):
        metrics_by_band(backtest, [80], [[5, 8]])
    with pytest.raises(ValueError, match="first <= last"):
        metrics_by_band(backtest, [80], [[3, 2]])


def test_backtest_scales_mase_by_the_chosen_denominator(small_counts):
    data = small_counts[["unique_id", "ds", "y"]]
    args = dict(horizon=7, n_origins=1, step=7, progress=False)
    naive = rolling_origin_backtest(SeasonalNaive(), data, **args)
    deviation = rolling_origin_backtest(SeasonalNaive(), data, mase_scale="mean_deviation", **args)
    cutoff = naive["cutoff"].iloc[0]
    train = data[(data["ds"] <= cutoff) & (data["unique_id"] == "city/C2")]["y"]
    row = deviation[deviation["unique_id"] == "city/C2"].iloc[0]
    assert row["scale"] == pytest.approx(float((train - train.mean()).abs().mean()))
    assert not np.allclose(naive["scale"], deviation["scale"])
    assert (naive["mean"] == deviation["mean"]).all()  # only the denominator differs
    with pytest.raises(ConfigError, match="backtest.mase_scale=naive"):
        rolling_origin_backtest(SeasonalNaive(), data, mase_scale="naive", **args)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["backtest.mase_scale=naive"], "backtest.mase_scale=naive: must be one of"),
        (["backtest.horizon_bands=[[1,20]]"], "backtest.horizon_bands=[[1,20]]: each band"),
        (["backtest.horizon_bands=[[5,3]]"], "first <= last"),
        (["backtest.horizon_bands=[[1]]"], "backtest.horizon_bands=[[1]]: must be a list of [first, last]"),
        (["backtest.horizon_bands=7"], "backtest.horizon_bands=7: must be a list"),
    ],
)
def test_metric_options_are_checked_before_any_data_is_read(overrides, message):
    cfg = compose_config("forecast", ["backtest.horizon=14", *overrides])
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_config(cfg)


def test_published_protocol_options_pass_the_config_check():
    cfg = compose_config(
        "forecast",
        [
            "backtest.horizon=84",
            "backtest.mase_scale=mean_deviation",
            "backtest.horizon_bands=[[1,42],[43,84]]",
        ],
    )
    check_config(cfg)


def test_training_run_logs_band_scores(tmp_path, small_counts_csv):
    overrides = fast_forecast_overrides(small_counts_csv, tmp_path / "store", "seasonal_naive")
    cfg = compose_config("forecast", [*overrides, "backtest.horizon_bands=[[1,7],[8,14]]"])
    result = train(cfg, tmp_path / "out")
    assert {"mase_h1_7", "mase_h8_14", "crps_h8_14"} <= set(result.metrics)
    by_band = pd.read_csv(tmp_path / "out" / "metrics_by_band.csv").set_index("band")
    assert by_band.loc["h8_14", "mase"] == pytest.approx(result.metrics["mase_h8_14"])


def test_overlap_of_forecast_windows():
    assert overlap_lags(84, 7) == 11  # an 84-day window shares days with the next 11 weekly origins
    assert overlap_lags(7, 7) == 0 and overlap_lags(84, 28) == 2


def test_per_origin_loss_pools_series_within_each_origin():
    backtest = pd.DataFrame(
        {
            "cutoff": pd.to_datetime(["2019-01-01"] * 4 + ["2019-01-08"] * 4),
            "h": [1, 2, 1, 2] * 2,
            "y": [10.0] * 8,
            "mean": [12.0, 14.0, 10.0, 10.0, 11.0, 11.0, 11.0, 30.0],
            "scale": [2.0] * 8,
            "lo_80": [0.0] * 8,
            "hi_80": [50.0] * 8,
        }
    )
    mase_1 = per_origin_loss(backtest, "mase", horizon=1)
    assert mase_1.tolist() == pytest.approx([(1 + 0) / 2, (0.5 + 0.5) / 2])
    assert per_origin_loss(backtest, "mae", horizon=2).tolist() == pytest.approx([1.5, 5.75])
    assert len(per_origin_loss(backtest, "crps", horizon=2, level=[80])) == 2
    with pytest.raises(ValueError, match="unknown loss"):
        per_origin_loss(backtest, "mape", horizon=2)


def test_block_bootstrap_interval_covers_the_mean_and_widens_with_dependence():
    rng = np.random.default_rng(1)
    independent = rng.normal(1.0, 0.1, 200)
    low, high = block_bootstrap_interval(independent, block=1)
    assert low < independent.mean() < high and high - low < 0.05
    assert block_bootstrap_interval(independent, block=1) == (low, high)  # seeded
    # A persistent series: short blocks understate the spread of its mean, longer ones do not.
    persistent = np.cumsum(rng.normal(0, 0.1, 200)) * 0.1 + 1
    short = np.subtract(*block_bootstrap_interval(persistent, block=1)[::-1])
    long = np.subtract(*block_bootstrap_interval(persistent, block=20)[::-1])
    assert long > 1.5 * short


def test_diebold_mariano_finds_a_real_difference_and_not_a_spurious_one():
    rng = np.random.default_rng(2)
    base = rng.gamma(5, 0.1, 41)
    same = diebold_mariano(base + rng.normal(0, 0.02, 41), base + rng.normal(0, 0.02, 41), lags=0)
    assert same.p_value > 0.05
    better = diebold_mariano(base, base + 0.05 + rng.normal(0, 0.02, 41), lags=0)
    assert better.mean_difference < 0 and better.statistic < 0 and better.p_value < 0.001
    # Overlapping windows: the same differences are less conclusive with their autocorrelation.
    drift = np.repeat(rng.normal(0.01, 0.03, 5), 8)[:40]
    assert (
        diebold_mariano(drift, np.zeros(40), lags=7).p_value
        > diebold_mariano(drift, np.zeros(40), lags=0).p_value
    )
    equal = diebold_mariano(base, base, lags=3)
    assert equal.p_value == 1.0 and equal.mean_difference == 0
    with pytest.raises(ValueError, match="at least 3"):
        diebold_mariano([1.0, 2.0], [1.0, 1.0], lags=0)


def test_diebold_mariano_matches_the_hln_formula_without_autocorrelation():
    d = np.array([0.1, -0.2, 0.3, 0.05, 0.15, -0.05, 0.2, 0.1])
    result = diebold_mariano(d, np.zeros_like(d), lags=0)
    n = len(d)
    plain = d.mean() / np.sqrt(np.mean((d - d.mean()) ** 2) / n)
    assert result.statistic == pytest.approx(plain * np.sqrt((n - 1) / n))  # HLN with h = 1
    assert result.p_value == pytest.approx(2 * stats.t.sf(abs(result.statistic), n - 1))
