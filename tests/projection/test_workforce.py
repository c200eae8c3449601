"""Workforce: Erlang C staffing, ambulance hours, vehicles and crews by hour, and the profile learnt
from call timestamps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from forecasting.projection.erlang import agents_needed, erlang_c, mean_wait, service_level
from forecasting.projection.population import scale_to_areas
from forecasting.projection.projector import ProjectionSettings, project_scenarios
from forecasting.projection.workforce import (
    WorkforceSettings,
    heatmap_table,
    hour_profile_from_calls,
    hour_profile_from_shares,
    projection_workforce,
)
from mlops.errors import ConfigError, DataValidationError
from tests.conftest import ROOT
from tests.projection.conftest import scenario


def test_erlang_c_staffing_is_the_fewest_clinicians_meeting_the_target():
    rates = np.array([0.0, 0.1, 0.5, 2.0, 6.0])  # calls a minute
    need = agents_needed(rates, 20.0, 10.0, 0.8)
    assert need[0] == 0
    for lam, c in zip(rates[1:], need[1:], strict=True):
        assert service_level(c, lam, 20.0, 10.0) >= 0.8
        assert c - 1 <= lam * 20 or service_level(c - 1, lam, 20.0, 10.0) < 0.8
    # Textbook values: one server is M/M/1 (wait probability = utilisation), and 2 servers at load 1
    # wait with probability 1/3.
    assert float(erlang_c(1, 0.6)) == pytest.approx(0.6)
    assert float(erlang_c(2, 1.0)) == pytest.approx(1 / 3)
    assert float(mean_wait(1, 0.03, 20.0)) == pytest.approx(0.6 * 20 / 0.4)
    assert float(service_level(3, 0.2, 20.0, 5.0)) == 0.0  # load 4 on 3 servers: never in time


@pytest.fixture(scope="module")
def staffed(fitted, ons_population):
    rates, shape = fitted
    trust = scale_to_areas(ons_population, {"trust": 4_600_000}, 2025)
    lever = scenario("lever", remote_closure={"start_share": 0.2, "end_share": 0.3, "end_year": 2035})
    settings = ProjectionSettings(base_year=2025, horizon_years=10, n_paths=100, seed=4)
    projection = project_scenarios(rates, shape, trust, [scenario(), lever], settings)
    conf = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "workforce" / "default.yaml"))
    ws = WorkforceSettings.from_dict(conf, hour_profile_from_shares(conf["profile"]["hour_shares"]))
    return projection, projection_workforce(projection, ws)


def test_vehicles_follow_job_cycles_and_utilisation(staffed):
    projection, labour = staffed
    s = labour.settings
    hour = labour.by_hour
    principal = hour[(hour["scenario"] == "principal") & (hour["statistic"] == "mean")]
    sc = projection.scenarios[0]
    minutes = sum(sc.category_mix[c] * s.job_cycle.minutes(c, 0.68) for c in sc.category_mix)
    assert np.allclose(principal["vehicles_busy"], principal["incidents"] * minutes / 60)
    assert (principal["vehicles"] >= principal["vehicles_busy"] / s.utilisation - 1e-9).all()
    assert (principal["vehicles"] < principal["vehicles_busy"] / s.utilisation + 1).all()
    assert (principal["crew"] == 2 * principal["vehicles"]).all()
    # The winter week's calls are the projected winter days, spread over the hours.
    day = principal.groupby(["year", "weekday"])["calls"].sum()
    daily = projection.daily[(projection.daily["scenario"] == "principal")]
    winter = daily[daily["ds"].dt.month.isin([1, 2])]
    monday_2030 = winter[(winter["year"] == 2030) & (winter["ds"].dt.weekday == 0)]["mean"].mean()
    assert day.loc[(2030, 0)] == pytest.approx(monday_2030, rel=0.05)
    # Busiest hours late morning, quietest before dawn (the profile), every weekday.
    table = heatmap_table(hour, "trust", "principal", 2035, "vehicles")
    assert (table[11] > table[4]).all()


def test_more_remote_closure_needs_more_clinicians_and_fewer_ambulances(staffed):
    _, labour = staffed
    assert list(dict.fromkeys(labour.by_year["scenario"])) == ["principal", "lever"]  # as projected
    final = labour.by_year[(labour.by_year["year"] == 2035)].set_index(["scenario", "measure"])["mean"]
    assert final[("lever", "clinicians_peak_hour")] > final[("principal", "clinicians_peak_hour")]
    assert final[("lever", "vehicles_peak_hour")] < final[("principal", "vehicles_peak_hour")]
    assert final[("lever", "ambulance_hours")] < final[("principal", "ambulance_hours")]
    by_year = labour.by_year.set_index(["scenario", "year", "measure"])
    lows, highs = by_year["p10"], by_year["p90"]
    assert (lows <= by_year["mean"] + 1).all() and (by_year["mean"] <= highs + 1).all()
    parts = sum(final[("principal", f"incidents_C{i}")] for i in range(1, 5))
    assert parts == pytest.approx(final[("principal", "incidents_face_to_face")])


def test_hour_profile_learnt_from_call_timestamps_and_bad_inputs_refused():
    calls = pd.read_parquet(ROOT / "data" / "synthetic" / "calls.parquet", columns=["call_time"])
    profile = hour_profile_from_calls(calls["call_time"], "calls.parquet")
    assert profile.shape == (7, 24) and np.allclose(profile.sum(axis=1), 1.0)
    assert profile[:, 11].min() > profile[:, 4].max()
    with pytest.raises(DataValidationError, match="too few"):
        hour_profile_from_calls(calls["call_time"].iloc[:1000], "few.csv")
    with pytest.raises(DataValidationError, match="not date-times"):
        hour_profile_from_calls(pd.Series(["yesterday"] * 5000), "bad.csv")
    with pytest.raises(ConfigError, match="24"):
        hour_profile_from_shares([1.0] * 23)
    with pytest.raises(ConfigError, match="workforce.utilisation"):
        WorkforceSettings(utilisation=1.5)


def test_call_timestamps_file_read_with_the_shared_reader_options(tmp_path):
    from forecasting.projection.pipeline import workforce_settings
    from tests.conftest import compose_config

    calls = pd.read_parquet(ROOT / "data" / "synthetic" / "calls.parquet", columns=["call_time"]).iloc[
        :20_000
    ]
    path = tmp_path / "cad.csv"
    calls.rename(columns={"call_time": "received"}).to_csv(path, sep=";", index=False)
    overrides = [f"workforce.profile.calls_path={path}", "workforce.read.sep=';'"]
    settings = workforce_settings(
        compose_config("project", [*overrides, "workforce.profile.time_column=received"])
    )
    assert settings.hour_profile.shape == (7, 24) and np.allclose(settings.hour_profile.sum(axis=1), 1)
    with pytest.raises(DataValidationError, match="no column 'call_time'"):
        workforce_settings(compose_config("project", overrides))
