"""The projection job from a composed config: planner outputs, MLflow run, registry and champion policy."""

from __future__ import annotations

import re

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from forecasting.projection.pipeline import (
    fit_rates,
    fit_shape,
    load_projection_population,
    project,
    read_history,
)
from mlops.errors import ConfigError, DataValidationError
from tests.conftest import ROOT, compose_config

MODEL = "demand-projection-ons-england"


def fast_overrides(store) -> list[str]:
    """Absolute data paths (tests may run from anywhere) and few paths, so a run takes seconds."""
    data = ROOT / "data"
    return [
        f"tracking.store_dir={store}",
        f"history.counts_path={data / 'synthetic' / 'daily_counts.csv'}",
        f"history.population_path={data / 'synthetic' / 'population.csv'}",
        f"backtest.counts_path={data / 'synthetic' / 'daily_counts.csv'}",
        f"backtest.population_path={data / 'synthetic' / 'population.csv'}",
        f"population.path={data / 'external' / 'ons_population' / 'england_npp2020_principal_5yr.csv'}",
        "n_paths=100",
    ]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("projection")
    cfg = compose_config("project", fast_overrides(tmp / "store"))
    return project(cfg, tmp / "out", command="python -m forecasting.project"), tmp


def test_outputs_for_planners(first_run):
    result, _ = first_run
    out = result.output_dir
    by_year = pd.read_csv(out / "projection_by_year.csv")
    assert set(by_year["scenario"]) == {
        "principal",
        "high_ageing",
        "low_ageing",
        "flat_rates",
        "more_remote_closure",
    }
    assert {"calls", "C1", "C4", "hear_and_treat", "needs_ambulance"} <= set(by_year["measure"])
    assert by_year["year"].max() == 2035
    assert {"age_band", "calls"} <= set(pd.read_csv(out / "projection_by_age_band.csv").columns)
    assert set(pd.read_csv(out / "peak_days.csv")["statistic"]) == {"peak_day", "busiest_day", "busiest_week"}
    assert (out / "scenarios_trust.png").stat().st_size > 10_000
    html = result.report_path.read_text()
    # Self-contained: every image is embedded, nothing is fetched from elsewhere.
    assert re.findall(r'src="([^"]{0,22})', html) and all(
        src.startswith("data:image/png;base64,") for src in re.findall(r'src="([^"]{0,22})', html)
    )
    assert (out / "projection.xlsx").stat().st_size > 10_000 and 'href="projection.xlsx"' in html
    assert "http" not in html.replace("https://", "").lower() or "<link" not in html
    for phrase in ("Assumptions, in plain words", "with and without more remote closure", "Peak day",
                   "Open Government Licence", "more_remote_closure", "in 2035"):  # fmt: skip
        assert phrase in html
    growth = pd.read_csv(out / "growth.csv").set_index(["scenario", "measure"])["mean"]
    assert growth["high_ageing", "calls"] > growth["principal", "calls"] > growth["flat_rates", "calls"]
    assert growth["more_remote_closure", "needs_ambulance"] < growth["principal", "needs_ambulance"]
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_run_is_logged_and_first_version_is_champion(first_run):
    result, tmp = first_run
    client = MlflowClient(f"sqlite:///{tmp / 'store' / 'mlflow.db'}")
    run = client.get_run(result.run_id)
    assert run.data.metrics["backtest_annual_mape"] < 2.0
    assert "growth_calls.trust.principal" in run.data.metrics
    assert run.data.params["compare.high_ageing.ageing.85plus"] == "1.46"
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert str(champion.version) == result.version == "1" and result.promoted
    # The contract it serves travels with the model (what a what-if run for other areas is compared on).
    mlflow.set_tracking_uri(f"sqlite:///{tmp / 'store' / 'mlflow.db'}")
    metadata = mlflow.models.get_model_info(f"models:/{MODEL}/1").metadata
    assert metadata["kind"] == "projection" and metadata["areas"] == ["trust"]
    assert metadata["final_year"] == 2035 and "principal" in metadata["scenarios"]


def test_champion_moves_only_when_the_backtest_is_no_worse(first_run):
    _, tmp = first_run
    overrides = fast_overrides(tmp / "store")
    same = project(compose_config("project", overrides), tmp / "out2")
    assert same.promoted and "no worse" in same.reason  # same method, newer inputs: serve them
    # Wrong rate ratios (no rise with age beyond 75) must not displace the champion.
    flat_ages = "rates.rate_ratio={75-79: 1.0, 80-84: 1.0, 85-89: 1.0, 90+: 1.0}"
    worse = project(compose_config("project", [*overrides, flat_ages]), tmp / "out3")
    assert not worse.promoted and "worse than champion v2" in worse.reason
    client = MlflowClient(f"sqlite:///{tmp / 'store' / 'mlflow.db'}")
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "2"
    assert str(client.get_model_version_by_alias(MODEL, "challenger").version) == "3"


# Two more full projections. In the default suite the corpus case projection-other-areas
# (tests/corpus/test_contracts.py) keeps a run for other areas from moving the champion, the
# registration gate checks the contract reason and its registry.model_name hint, and the test above
# the contract in the model's metadata.
@pytest.mark.slow
def test_what_if_for_other_areas_never_moves_the_champion(first_run):
    """A planner's run for other areas registers as challenger; its own name keeps both served."""
    _, tmp = first_run
    overrides = [*fast_overrides(tmp / "store"), "~population.areas", "+population.areas={north: 500000}"]
    what_if = project(compose_config("project", overrides), tmp / "out4")
    assert not what_if.promoted
    assert "contract differs from champion v2: areas ['north'] instead of ['trust']" in what_if.reason
    assert "registry.model_name=" in what_if.reason
    client = MlflowClient(f"sqlite:///{tmp / 'store' / 'mlflow.db'}")
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "2"
    metadata = mlflow.models.get_model_info(f"models:/{MODEL}@champion").metadata
    assert metadata["kind"] == "projection" and metadata["areas"] == ["trust"]
    assert metadata["final_year"] == 2035 and "principal" in metadata["scenarios"]
    own = project(compose_config("project", [*overrides, "registry.model_name=what-if-north"]), tmp / "out5")
    assert own.promoted and own.model_uri == "models:/what-if-north@champion"


@pytest.mark.parametrize(
    "override, error, message",
    [
        ("base_year=2022", ConfigError, "base_year 2022 must be after the history's last full year"),
        ("horizon_years=40", ConfigError, "horizon_years.*30"),
        ("quantiles=[0.9,0.1]", ConfigError, "increasing"),
        ("scenario.remote_closure.end_share=1.5", ConfigError, r"end_share.*share"),
        ("rates.source=guess", ConfigError, "rates.source.*must be"),
        ("horizon_years=26", DataValidationError, "has no rows for year"),
    ],
)
def test_impossible_runs_stop_before_anything_is_logged(tmp_path, override, error, message):
    cfg = compose_config("project", [*fast_overrides(tmp_path / "store"), override])
    with pytest.raises(error, match=message):
        project(cfg, tmp_path / "out")
    assert not (tmp_path / "store" / "mlflow.db").exists()


def test_rates_set_in_config_reproduce_the_stated_level(tmp_path):
    overrides = [*fast_overrides(tmp_path), "rates.source=config", "rates.calls_per_1000=120"]
    cfg = compose_config("project", overrides)
    daily, annual = read_history(cfg)
    population = load_projection_population(cfg, range(2023, 2036))
    rates = fit_rates(cfg, annual, population)
    in_2023 = population[population["year"] == 2023]
    calls = (np.exp(rates.draw("trust", 1).log_rate[0]) * in_2023["population"].to_numpy()).sum()
    assert calls / in_2023["population"].sum() * 1000 == pytest.approx(120)
    assert rates.last_year_ == 2023 and np.expm1(rates.trend_) == pytest.approx(0.005)
    with pytest.raises(ConfigError, match="daily_shape.fit_on must be"):
        fit_shape(compose_config("project", [*overrides, "daily_shape.fit_on=weekly"]), daily)


def test_workforce_in_the_outputs_report_and_registered_model(first_run):
    result, tmp = first_run
    by_year = pd.read_csv(result.output_dir / "workforce_by_year.csv")
    assert {"incidents_C1", "ambulance_hours", "vehicles_peak_hour", "clinicians_peak_hour"} <= set(
        by_year["measure"]
    )
    assert set(by_year["scenario"]) == {
        "principal",
        "high_ageing",
        "low_ageing",
        "flat_rates",
        "more_remote_closure",
    }
    week = pd.read_csv(result.output_dir / "workforce_winter_week.csv")
    assert set(week["year"]) == {2025, 2035} and set(week["hour"]) == set(range(24))
    html = result.report_path.read_text()
    assert "Workforce" in html and "workforce_heatmap.png" in html
    mlflow.set_tracking_uri(f"sqlite:///{tmp / 'store' / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}/{result.version}").unwrap_python_model()
    assert model.workforce is not None and len(model.workforce) == len(by_year)
