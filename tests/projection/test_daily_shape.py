"""The daily shape learnt from history matches the synthetic world's calendar, and years keep their totals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.projection.daily_shape import DailyShape, spread_over_days
from mlops.errors import DataValidationError
from tests.conftest import ROOT


def test_weekday_profile_and_noise_match_the_world(fitted):
    import yaml

    world = yaml.safe_load((ROOT / "conf" / "generate.yaml").read_text())["world"]
    truth = pd.Series(world["weekday_factor"])
    truth /= truth.mean()
    _, shape = fitted
    assert shape.weekday_profile().to_numpy() == pytest.approx(truth.to_numpy(), abs=0.01)
    days = pd.date_range("2030-12-20", "2031-01-05")
    multiplier = pd.Series(shape.multiplier(days), index=days)
    assert multiplier.idxmax() == pd.Timestamp("2031-01-01")  # New Year's Day is the peak


def test_expected_daily_calls_track_the_truth(synthetic_daily):
    area = synthetic_daily[synthetic_daily["area"] == "coast"]
    shape = DailyShape().fit(area)
    days = pd.DatetimeIndex(area["ds"])
    annual = area.groupby(area["ds"].dt.year)["y_expected"].sum()
    projected = spread_over_days(annual, shape.multiplier(days), days)
    error = np.abs(projected / area["y_expected"].to_numpy() - 1)
    # Festive days are seen once a year, so their effects carry a few per cent of estimation noise.
    assert error.mean() < 0.01 and error.max() < 0.1
    # A single area (~250 calls a day) has visible extra-Poisson noise: the world's shape is 400.
    assert 200 < shape.dispersion_shape_ < 800


def test_spreading_keeps_each_years_total_and_has_no_new_year_jump():
    days = pd.date_range("2030-01-01", "2032-12-31")
    annual = pd.Series([365_000.0, 380_000.0, 410_000.0], index=[2030, 2031, 2032])
    flat = spread_over_days(annual, np.ones(len(days)), days)
    totals = pd.Series(flat).groupby(days.year).sum()
    assert totals.to_numpy() == pytest.approx(annual.to_numpy())
    step = flat[days.get_loc("2031-01-01")] / flat[days.get_loc("2030-12-31")] - 1
    assert abs(step) < 0.005  # growth is spread through the year, not added on 1 January


def test_too_short_history_is_refused():
    days = pd.date_range("2020-01-01", periods=100)
    with pytest.raises(DataValidationError, match="needs a year or more"):
        DailyShape().fit(pd.DataFrame({"area": "a", "ds": days, "y": 10.0}))
