"""Long-range uncertainty: the fan widens with the horizon as the model says, the estimator recovers
known parameters, and the shipped defaults are what the committed estimation gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from forecasting.projection.uncertainty import TrendUncertainty, estimate_trend_uncertainty
from mlops.errors import ConfigError
from tests.conftest import ROOT


def test_simulated_deviation_matches_the_analytic_variance_and_widens_with_horizon():
    params = TrendUncertainty(drift_sd=0.01, innovation_sd=0.02, shift_probability=0.1, shift_sd=0.05)
    dev = params.log_deviation(np.random.default_rng(0), 40_000, 10)
    empirical = dev.var(axis=0)
    analytic = params.variance(np.arange(1, 11))
    assert np.allclose(empirical, analytic, rtol=0.05)
    assert np.all(np.diff(analytic) > 0)
    assert abs(np.median(dev[:, -1])) < 0.005  # the median path stays on the fitted trend
    # Drift grows linearly, innovations as sqrt(h): at 10 years drift dominates a 1-year-equal mix.
    drift_only = TrendUncertainty(drift_sd=0.02).variance(10)
    walk_only = TrendUncertainty(innovation_sd=0.02).variance(10)
    assert drift_only == pytest.approx(10 * walk_only)


def test_estimator_recovers_known_drift_innovation_and_shifts():
    rng = np.random.default_rng(1)
    drift_sd, innovation_sd = 0.01, 0.02
    rows = []
    for unit in range(60):
        drift = rng.normal(0.01, drift_sd)
        for year in range(2000, 2012):
            growth = drift + rng.normal(0, innovation_sd)
            if unit == 3 and year == 2005:
                growth += 0.3  # one large level shift
            rows.append({"unit": f"u{unit}", "source": "s", "year": year, "growth": growth})
    estimate = estimate_trend_uncertainty(pd.DataFrame(rows))
    p = estimate.parameters
    assert p.innovation_sd == pytest.approx(innovation_sd, rel=0.1)
    assert p.drift_sd == pytest.approx(drift_sd, rel=0.35)
    assert estimate.details["shifts_detected"] >= 1
    assert p.shift_sd > 0.2


def test_bad_parameters_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="uncertainty.drift_sd"):
        TrendUncertainty(drift_sd=-0.1)


def test_shipped_defaults_are_the_committed_estimate():
    from experiments.projection.estimate_uncertainty import shipped_estimate

    estimate, population_sd = shipped_estimate()
    conf = OmegaConf.load(ROOT / "conf" / "uncertainty" / "estimated.yaml")
    for name, value in vars(estimate.parameters).items():
        assert float(conf[name]) == pytest.approx(value, abs=6e-5), name
    assert float(OmegaConf.load(ROOT / "conf" / "project.yaml").population_sd) == pytest.approx(
        population_sd, abs=6e-5
    )


def test_projection_fans_widen_with_the_estimated_uncertainty_and_the_trust_total_adds_paths(
    fitted, ons_population
):
    from forecasting.projection.population import scale_to_areas
    from forecasting.projection.projector import ProjectionSettings, project_scenarios
    from tests.projection.conftest import scenario

    rates, shape = fitted
    areas = scale_to_areas(ons_population, {"north": 1_000_000, "south": 3_000_000}, 2025)
    conf = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "uncertainty" / "estimated.yaml"))
    widths = {}
    for label, params in (("none", TrendUncertainty()), ("estimated", TrendUncertainty.from_dict(conf))):
        settings = ProjectionSettings(
            base_year=2025, horizon_years=10, n_paths=200, seed=5, uncertainty=params
        )
        annual = project_scenarios(rates, shape, areas, [scenario()], settings).annual
        calls = annual[annual["measure"] == "calls"].set_index(["area", "year"])
        widths[label] = (calls["p90"] / calls["p10"] - 1).xs("total", level="area")
        if label == "estimated":
            # The total is the sum of the areas, path by path: its mean is the sum of their means.
            means = calls["mean"].unstack("area")
            assert np.allclose(means["total"], means["north"] + means["south"], rtol=1e-9)
    assert widths["estimated"].iloc[-1] > 2 * widths["none"].iloc[-1]
    assert widths["estimated"].iloc[-1] > widths["estimated"].iloc[0] * 2  # widens with the horizon


def test_report_section_states_the_spread_by_horizon():
    from forecasting.projection.uncertainty_report import uncertainty_section

    params = TrendUncertainty(drift_sd=0.01, innovation_sd=0.02)
    section = uncertainty_section(params, 0.06, 10)
    rows = {row[0]: row for row in section.tables[0].rows}
    assert rows["10"][1] == f"{100 * np.sqrt(params.variance(10)):.1f} %"
    assert "uncertainty=none" in uncertainty_section(TrendUncertainty(), 0.06, 10).paragraphs[0]
