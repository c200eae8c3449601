"""The Monte Carlo: seeded, centred on the expected values, with fans and peaks in a sensible order."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.projection.population import scale_to_areas
from forecasting.projection.simulate import central_by_band, simulate_area
from forecasting.projection.summaries import annual_fan, daily_fan, growth_ratios, peak_days

YEARS = np.arange(2024, 2036)


@pytest.fixture(scope="module")
def trust(ons_population):
    return scale_to_areas(ons_population, {"trust": 1_000_000}, 2025)


def _simulate(fitted, trust, seed=3, trend=None, n=300, population_sd=0.1):
    rates, shape = fitted
    rng = np.random.default_rng(seed)
    return simulate_area(rates, shape, "trust", trust, YEARS, trend, n, rng, population_sd)


def test_seeded_paths_repeat_and_centre_on_the_expected_values(fitted, trust):
    sim = _simulate(fitted, trust)
    assert np.array_equal(sim.counts, _simulate(fitted, trust).counts)
    central = central_by_band(fitted[0], "trust", trust, YEARS, None).groupby("year")["calls"].sum()
    mean = sim.annual_counts.mean(axis=0)
    assert mean == pytest.approx(central.to_numpy(), rel=0.01)
    assert sim.counts.shape == (300, len(sim.days)) and sim.days[0].year == 2024 and sim.days[-1].year == 2035


def test_fans_widen_with_the_horizon_and_stay_ordered(fitted, trust):
    sim = _simulate(fitted, trust)
    fan = annual_fan(sim, [0.1, 0.5, 0.9])
    width = (fan["p90"] - fan["p10"]) / fan["mean"]
    assert width.iloc[-1] > width.iloc[0]
    assert (fan["p10"] <= fan["p50"]).all() and (fan["p50"] <= fan["p90"]).all()
    daily = daily_fan(sim, [0.1, 0.9])
    assert (daily["p10"] < daily["mean"]).all() and (daily["mean"] < daily["p90"]).all()


def test_flat_rates_without_population_change_stay_flat(fitted, trust):
    frozen = trust.copy()
    start = frozen[frozen["year"] == 2023].set_index("age_band")["population"]
    frozen["population"] = frozen["age_band"].map(start)
    sim = _simulate(fitted, frozen, trend=0.0, population_sd=0.0)
    ratio = growth_ratios(sim, 2025)
    assert np.median(ratio) == pytest.approx(1.0, abs=0.01)


def test_peak_statistics_are_ordered(fitted, trust):
    sim = _simulate(fitted, trust, n=100)
    peaks = peak_days(sim, [0.1, 0.5, 0.9], day_quantile=0.95).set_index(["year", "statistic"])["mean"]
    average_day = sim.annual_counts.mean(axis=0)[-1] / 365
    final = peaks.loc[2035]
    assert average_day < final["peak_day"] < final["busiest_day"]
    assert 7 * average_day < final["busiest_week"] < 7 * final["busiest_day"]
