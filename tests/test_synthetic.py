"""The synthetic world is reproducible and shows the calendar and mix it was configured with."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from forecasting.io import read_population
from forecasting.synthetic import World, area_population, simulate_daily_counts
from mlops.errors import ConfigError
from tests.conftest import CONF_DIR, ROOT


@pytest.fixture(scope="module")
def world_spec() -> dict:
    cfg = OmegaConf.load(CONF_DIR / "generate.yaml")
    spec = OmegaConf.to_container(cfg.world, resolve=True)
    spec["areas"] = spec["areas"][:2]
    spec["end"] = "2020-12-31"
    return spec


@pytest.fixture(scope="module")
def national():
    return read_population(ROOT / "data/external/ons_population/england_npp2018_principal_5yr.csv")


@pytest.fixture(scope="module")
def counts(world_spec, national) -> pd.DataFrame:
    return simulate_daily_counts(World.from_dict(world_spec), national)


def test_same_seed_same_world_other_seed_other_noise(world_spec, national, counts):
    again = simulate_daily_counts(World.from_dict(world_spec), national)
    pd.testing.assert_frame_equal(counts, again)
    other = simulate_daily_counts(World.from_dict({**world_spec, "seed": 1}), national)
    np.testing.assert_allclose(other["y_expected"], counts["y_expected"])
    assert (other["y"] != counts["y"]).mean() > 0.5


def test_long_format_with_truth(counts):
    assert list(counts.columns) == ["unique_id", "area", "category", "ds", "y", "y_expected"]
    assert counts["unique_id"].nunique() == 2 * 4
    assert counts.groupby("unique_id").size().nunique() == 1
    assert (counts["y"] >= 0).all() and (counts["y_expected"] > 0).all()


def test_category_mix_matches_config(counts, world_spec):
    share = counts.groupby("category")["y"].sum() / counts["y"].sum()
    for category, expected in world_spec["category_mix"].items():
        assert share[category] == pytest.approx(expected, abs=0.004)


def test_saturday_busiest_and_december_peak(counts, world_spec):
    daily = counts.groupby("ds")["y"].sum()
    by_weekday = daily.groupby(daily.index.day_of_week).mean()
    assert by_weekday.idxmax() == 5  # Saturday
    factors = world_spec["weekday_factor"]
    assert by_weekday[5] / by_weekday[2] == pytest.approx(factors["Sat"] / factors["Wed"], rel=0.02)
    by_month = daily.groupby(daily.index.month).mean()
    assert by_month.idxmax() == 12
    december_over_summer = by_month[12] / by_month[[6, 7, 8]].mean() - 1
    assert 0.06 < december_over_summer < 0.11  # AmbSYS: ~8-9 % (DOMAIN.md)


def test_new_years_day_is_the_peak_day_of_the_year(counts):
    expected = counts.groupby("ds")["y_expected"].sum()
    for year in (2019, 2020):
        in_year = expected[expected.index.year == year]
        assert in_year.idxmax() == pd.Timestamp(f"{year}-01-01")


def test_demand_grows_with_ageing_and_trend(counts):
    expected = counts.groupby("ds")["y_expected"].sum()
    yearly = expected.groupby(expected.index.year).mean()
    growth = yearly.pct_change().dropna()
    assert ((growth > 0.005) & (growth < 0.03)).all()


def test_older_areas_call_more_per_head(world_spec, national):
    spec = {
        **world_spec,
        "areas": [
            {"name": "young", "population": 5e5, "older_tilt": 0.7},
            {"name": "old", "population": 5e5, "older_tilt": 1.5},
        ],
    }
    counts = simulate_daily_counts(World.from_dict(spec), national)
    per_area = counts.groupby("area")["y_expected"].sum()
    assert per_area["old"] > 1.2 * per_area["young"]
    population = area_population(World.from_dict(spec), national)
    first_year = population[population["year"] == 2018].groupby("area")["population"].sum()
    assert first_year.to_dict() == pytest.approx({"young": 5e5, "old": 5e5})


def test_counts_are_overdispersed(counts):
    area_day = counts.groupby(["area", "ds"])[["y", "y_expected"]].sum()
    pearson = (area_day["y"] - area_day["y_expected"]) / np.sqrt(area_day["y_expected"])
    assert pearson.var() > 1.2  # Poisson would give 1


@pytest.mark.parametrize(
    "change, message",
    [
        ({"category_mix": {"C1": 0.5, "C2": 0.5, "C3": 0.5, "C4": 0.0}}, "sum to 1"),
        ({"end": "2017-01-01"}, "must be after"),
        ({"dispersion_shape": 0}, "dispersion_shape"),
    ],
)
def test_impossible_world_is_rejected(world_spec, change, message):
    with pytest.raises(ConfigError, match=message):
        World.from_dict({**world_spec, **change})


def test_committed_world_matches_its_config(synthetic_counts):
    """data/synthetic holds exactly what conf/generate.yaml makes (regenerate if this fails)."""
    saved = OmegaConf.to_container(OmegaConf.load(ROOT / "data/synthetic/world.yaml").world)
    current = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "generate.yaml").world)
    # Disabled weather changes nothing in the data, so a world saved before the block existed matches.
    for world in (saved, current):
        if not world.get("temperature", {}).get("enabled", False):
            world.pop("temperature", None)
    assert saved == current
    assert synthetic_counts["unique_id"].nunique() == 28


def test_weather_is_off_by_default_and_changes_only_the_truth_when_on(world_spec, national, counts):
    assert not world_spec["temperature"]["enabled"] and "x_temperature" not in counts.columns
    temperature = {**world_spec["temperature"], "enabled": True}
    hot = simulate_daily_counts(World.from_dict({**world_spec, "temperature": temperature}), national)
    assert list(hot.columns) == [*counts.columns, "x_temperature"]
    daily = hot.groupby("ds")["x_temperature"].agg(["min", "max"])
    assert (daily["min"] == daily["max"]).all()  # one temperature for the whole trust each day
    by_month = daily["max"].groupby(daily.index.month).mean()
    assert by_month.idxmax() in (7, 8) and by_month[1] < 10 < 20 < by_month[7]
    excess = np.maximum(hot["x_temperature"] - temperature["heat_threshold_c"], 0)
    np.testing.assert_allclose(
        hot["y_expected"] / counts["y_expected"], 1 + temperature["heat_effect_per_c"] * excess
    )
    assert excess.gt(0).mean() > 0.05  # some hot days in three years, so the effect is visible


def test_impossible_weather_is_rejected(world_spec):
    bad = {**world_spec["temperature"], "autocorrelation": 1.0}
    with pytest.raises(ConfigError, match="autocorrelation"):
        World.from_dict({**world_spec, "temperature": bad})


def _with_events(spec: dict, **events) -> dict:
    merged = {name: dict(part) for name, part in spec["events"].items()}
    for name, settings in events.items():
        merged[name] = {**merged[name], "enabled": True, **settings}
    return {**spec, "events": merged}


def test_calendar_is_the_generators_own_not_the_models():
    source = (ROOT / "forecasting" / "synthetic.py").read_text()
    assert "forecasting.calendar" not in source and "forecasting.models" not in source


def test_named_holidays_day_after_and_other_days_take_their_own_factors(world_spec, national, counts):
    spec = {
        **world_spec,
        "holiday_factors": {"Easter Monday": 1.2},
        "day_after_holiday_factor": 1.1,
        "other_days": {"11-05": 1.3},
    }
    changed = simulate_daily_counts(World.from_dict(spec), national)
    ratio = (changed["y_expected"] / counts["y_expected"]).groupby(changed["ds"]).mean()
    bank_holiday = world_spec["bank_holiday_factor"]
    assert ratio[pd.Timestamp("2019-04-22")] == pytest.approx(1.2 / bank_holiday)  # Easter Monday
    assert ratio[pd.Timestamp("2019-04-19")] == pytest.approx(1.0)  # Good Friday keeps the default
    assert ratio[pd.Timestamp("2019-04-23")] == pytest.approx(1.1)  # the day after Easter Monday
    assert ratio[pd.Timestamp("2019-11-05")] == pytest.approx(1.3)
    assert ratio[pd.Timestamp("2019-03-12")] == pytest.approx(1.0)


def test_every_event_is_off_by_default_and_the_world_unchanged(world_spec):
    assert not any(part["enabled"] for part in world_spec["events"].values())


def test_level_shift_and_pandemic_move_the_truth_where_and_when_configured(world_spec, national, counts):
    area = world_spec["areas"][1]["name"]
    spec = _with_events(
        world_spec,
        level_shift={"area": area, "date": "2019-06-01", "factor": 0.9},
        pandemic={"start": "2020-03-16", "trough_factor": 0.8, "drop_days": 14, "rebound_days": 100},
    )
    changed = simulate_daily_counts(World.from_dict(spec), national)
    ratio = (changed["y_expected"] / counts["y_expected"]).groupby([changed["area"], changed["ds"]]).mean()
    other = world_spec["areas"][0]["name"]
    assert ratio[(area, pd.Timestamp("2019-05-31"))] == pytest.approx(1.0)
    assert ratio[(area, pd.Timestamp("2019-06-01"))] == pytest.approx(0.9)
    assert ratio[(other, pd.Timestamp("2019-06-01"))] == pytest.approx(1.0)
    assert ratio[(other, pd.Timestamp("2020-03-30"))] == pytest.approx(0.8)  # the trough
    assert ratio[(other, pd.Timestamp("2020-05-19"))] == pytest.approx(0.9)  # half way back
    assert ratio[(other, pd.Timestamp("2020-08-01"))] == pytest.approx(1.0)


def test_persistent_deviations_are_autocorrelated_and_in_the_truth(world_spec, national, counts):
    spec = _with_events(world_spec, ar_deviation={"sd": 0.05, "autocorrelation": 0.8})
    changed = simulate_daily_counts(World.from_dict(spec), national)
    area = world_spec["areas"][0]["name"]
    rows = changed["area"] == area
    log_ratio = (
        np.log(changed.loc[rows, "y_expected"] / counts.loc[rows, "y_expected"])
        .groupby(changed.loc[rows, "ds"])
        .mean()
    )
    assert log_ratio.std() == pytest.approx(0.05, rel=0.2)
    assert log_ratio.autocorr(1) == pytest.approx(0.8, abs=0.08)
    assert np.exp(log_ratio).mean() == pytest.approx(1.0, abs=0.01)  # no change of level


def test_outages_heatwaves_and_capacity(world_spec, national, counts):
    spec = _with_events(
        world_spec,
        outages={"per_year": 3, "factor": 0.05},
        heatwaves={"per_year": 2, "length_days": 4, "effect": 0.1},
        capacity={"areas": [world_spec["areas"][0]["name"]], "headroom": 1.25},
    )
    changed = simulate_daily_counts(World.from_dict(spec), national)
    ratio = (changed["y_expected"] / counts["y_expected"]).round(6)
    # Outage days count 5 % of calls (10 % more in a heatwave), heatwave days 10 % more.
    assert set(ratio.unique()) <= {1.0, 1.1, 0.05, 0.055}
    outage_days = changed[ratio.isin([0.05, 0.055])].groupby("area")["ds"].nunique()
    assert 3 <= outage_days.mean() <= 25  # about 3 a year over three years
    heat = changed[ratio == 1.1]["ds"]
    assert heat.dt.month.isin([6, 7, 8, 9]).all() and heat.nunique() >= 3 * 2 * 3
    # The capped area's counts vary about 0.2 x their mean (binomial), far below Poisson.
    capped = changed[changed["area"] == world_spec["areas"][0]["name"]]
    pearson = (capped["y"] - capped["y_expected"]) / np.sqrt(capped["y_expected"])
    assert 0.1 < pearson.var() < 0.35
    assert capped["y"].mean() == pytest.approx(capped["y_expected"].mean(), rel=0.01)


@pytest.mark.parametrize(
    "events, message",
    [
        ({"level_shift": {"enabled": True, "area": "atlantis"}}, "world.events.level_shift.area=atlantis"),
        ({"pandemic": {"enabled": True, "trough_factor": 2}}, "world.events.pandemic.trough_factor=2"),
        ({"outages": {"enabled": "yes"}}, "world.events.outages.enabled=yes"),
        ({"heatwaves": {"enabled": True, "size": 3}}, "world.events.heatwaves.size is not a setting"),
        ({"tsunami": {}}, "world.events.tsunami is not a setting"),
    ],
)
def test_impossible_events_are_rejected(world_spec, events, message):
    with pytest.raises(ConfigError, match=message):
        World.from_dict({**world_spec, "events": events})
