"""Metrics against examples computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.metrics import (
    coverage,
    mae,
    mase,
    metrics_by_horizon,
    rmse,
    seasonal_naive_scale,
    summary_metrics,
)


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
