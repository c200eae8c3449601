"""Workforce: Erlang C and Erlang A staffing, ambulance hours, vehicles and crews by hour, and the
profile learnt from call timestamps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from forecasting.projection.erlang import agents_needed, erlang_a, erlang_c, mean_wait, service_level
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


def _birth_death(agents: int, lam: float, service: float, patience: float, states: int = 400):
    """M/M/c+M by brute force: the stationary chance an arrival waits, and the mean queue."""
    n = np.arange(states)
    deaths = np.minimum(n[1:], agents) / service + np.maximum(n[1:] - agents, 0) / patience
    pi = np.concatenate([[1.0], np.cumprod(lam / deaths)])
    pi /= pi.sum()
    return pi[agents:].sum(), (np.maximum(n - agents, 0) * pi).sum()


@pytest.mark.parametrize(("agents", "rate", "patience"), [(1, 0.04, 10.0), (4, 0.2, 5.0), (12, 0.5, 30.0)])
def test_erlang_a_agrees_with_the_birth_death_chain(agents, rate, patience):
    waits, queue = _birth_death(agents, rate, 20.0, patience)
    answered_now, hung_up = erlang_a(agents, rate, 20.0, 0.0, patience)
    assert float(answered_now) == pytest.approx(1 - waits, abs=1e-9)  # within 0 min: found a free clinician
    assert float(hung_up) == pytest.approx(queue / patience / rate, abs=1e-9)  # hang-ups = queue / patience
    answered_ever, _ = erlang_a(agents, rate, 20.0, 1e4, patience)
    assert float(answered_ever + hung_up) == pytest.approx(1.0, abs=1e-9)  # everyone is answered or hangs up
    in_ten = float(erlang_a(agents, rate, 20.0, 10.0, patience)[0])
    assert float(answered_now) < in_ten < float(answered_ever)


def test_erlang_a_staffing_is_the_fewest_meeting_the_target_and_tends_to_erlang_c():
    rates = np.array([0.0, 0.1, 0.5, 2.0, 6.0])
    need = agents_needed(rates, 20.0, 10.0, 0.8, patience_min=5.0)
    assert need[0] == 0
    for lam, c in zip(rates[1:], need[1:], strict=True):
        assert erlang_a(c, lam, 20.0, 10.0, 5.0)[0] >= 0.8 > erlang_a(c - 1, lam, 20.0, 10.0, 5.0)[0]
    # Callers who all but never hang up: Erlang C again.
    assert float(erlang_a(12, 0.5, 20.0, 10.0, 1e4)[0]) == pytest.approx(
        float(service_level(12, 0.5, 20.0, 10.0)), abs=2e-3
    )
    assert (
        agents_needed(rates, 20.0, 10.0, 0.8, patience_min=1e4) == agents_needed(rates, 20.0, 10.0, 0.8)
    ).all()


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


def test_hub_patience_staffs_by_erlang_a(staffed):
    projection, labour = staffed
    conf = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "workforce" / "default.yaml"))
    conf["hub"]["patience_min"] = 5.0
    patient = WorkforceSettings.from_dict(conf, labour.settings.hour_profile)
    hung_up = projection_workforce(projection, patient).by_hour
    hub = patient.hub
    some = hung_up[(hung_up["statistic"] == "p90") & (hung_up["year"] == 2035)]
    expected = agents_needed(
        some["hub_calls"].to_numpy() / 60, hub.assessment_min, hub.answer_within_min, hub.target, 5.0
    )
    assert (some["clinicians"].to_numpy() == expected).all()
    assert (hung_up["vehicles"].to_numpy() == labour.by_hour["vehicles"].to_numpy()).all()
    conf["hub"]["patience_min"] = 0.0
    with pytest.raises(ConfigError, match="workforce.hub.patience_min"):
        WorkforceSettings.from_dict(conf)


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
