"""The rates model recovers known per-capita rates and trends, with honest uncertainty."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.projection.rates import AgeRateModel
from mlops.errors import ConfigError, DataValidationError
from tests.projection.conftest import poisson_calls, tiny_population

RATES = {"0-64": 0.1, "65-84": 0.3, "85+": 1.0}  # calls per resident a year in 2020
POPULATION = {"0-64": 800_000.0, "65-84": 150_000.0, "85+": 30_000.0}
YEARS = tuple(range(2016, 2024))
TREND = np.log(1.01)


def _world(areas=("A", "B", "C"), by_band=False, seed=0):
    population = pd.concat([tiny_population(POPULATION, YEARS, area) for area in areas], ignore_index=True)
    population["population"] *= 1 + 0.02 * (population["year"] - 2016)  # growing areas
    expected = population.assign(
        expected=population["population"]
        * population["age_band"].map(RATES)
        * np.exp(TREND * (population["year"] - 2020))
    )
    calls = poisson_calls(expected, seed)
    if not by_band:
        calls = calls.groupby(["area", "year"], as_index=False)["calls"].sum()
    return calls, population


def test_ratio_mode_recovers_level_and_trend():
    calls, population = _world()
    ratio = {band: rate / RATES["0-64"] for band, rate in RATES.items()}
    model = AgeRateModel(ratio).fit(calls, population)
    assert model.trend_ == pytest.approx(TREND, abs=0.002)
    low, high = model.trend_interval()
    assert low < np.expm1(TREND) < high
    draws = model.draw("A", 1)
    at_2020 = np.exp(draws.log_rate[0] + draws.trend[0] * (2020 - model.ref_year_))
    assert at_2020 == pytest.approx(list(RATES.values()), rel=0.01)
    assert model.dispersion_ < 3 and model.last_year_ == 2023


def test_band_mode_estimates_each_band_when_history_carries_age():
    calls, population = _world(by_band=True)
    model = AgeRateModel().fit(calls, population)
    draws = model.draw("B", 1)
    at_2020 = np.exp(draws.log_rate[0] + draws.trend[0] * (2020 - model.ref_year_))
    assert at_2020 == pytest.approx(list(RATES.values()), rel=0.02)


def test_draws_spread_like_the_estimate_and_are_seeded():
    calls, population = _world()
    model = AgeRateModel(dict.fromkeys(RATES, 1.0)).fit(calls, population)
    first = model.draw("A", 4000, np.random.default_rng(1))
    again = model.draw("A", 4000, np.random.default_rng(1))
    assert np.array_equal(first.trend, again.trend)
    assert first.trend.std() == pytest.approx(np.sqrt(model.cov_[-1, -1]), rel=0.1)


def test_area_effects_give_a_new_area_the_weighted_mean_level():
    calls, population = _world()
    calls.loc[calls["area"] == "C", "calls"] *= 2  # area C calls twice as often per person
    ratio = {band: rate / RATES["0-64"] for band, rate in RATES.items()}
    model = AgeRateModel(ratio, area_effects=True).fit(calls, population)
    level = {area: model.draw(area, 1).log_rate[0, 0] for area in ("A", "C", "new")}
    assert level["C"] - level["A"] == pytest.approx(np.log(2), abs=0.01)
    assert level["A"] < level["new"] < level["C"]


def test_config_rates_reproduce_the_stated_calls_per_1000():
    population = tiny_population(POPULATION, (2023,))
    ratio = {band: rate / RATES["0-64"] for band, rate in RATES.items()}
    model = AgeRateModel.from_config(ratio, 155.0, 0.005, population, 2023)
    rate = np.exp(model.draw("any", 1).log_rate[0])
    calls = (rate * np.array(list(POPULATION.values()))).sum()
    assert calls / sum(POPULATION.values()) * 1000 == pytest.approx(155.0)
    assert not np.any(model.cov_)


def test_history_problems_are_user_errors():
    calls, population = _world()
    with pytest.raises(DataValidationError, match="history area 'A' has calls in 2016 but no population"):
        AgeRateModel(dict.fromkeys(RATES, 1.0)).fit(calls, population[population["year"] > 2016])
    with pytest.raises(DataValidationError, match="too few"):
        AgeRateModel(dict.fromkeys(RATES, 1.0)).fit(calls[calls["year"] == 2020], population)
    with pytest.raises(ConfigError, match="rate_ratio bands"):
        AgeRateModel({"0-64": 1.0}).fit(calls, population)
    with pytest.raises(ConfigError, match="no age_band column"):
        AgeRateModel().fit(calls, population)
