"""Scenarios: the shipped ones load and pass their checks; impossible values fail at load, clearly."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.projection.pipeline import load_scenarios, projection_settings
from forecasting.projection.scenario import RemoteClosure
from mlops.errors import ConfigError
from tests.conftest import compose_config
from tests.projection.conftest import scenario

ONS_BANDS = ["0-4", "5-9", "10-14", "15-19", "20-24", "25-29", "30-34", "35-39", "40-44", "45-49", "50-54",
             "55-59", "60-64", "65-69", "70-74", "75-79", "80-84", "85-89", "90+"]  # fmt: skip


def test_shipped_scenarios_load_with_the_headline_first():
    cfg = compose_config("project", ["scenario=high_ageing"])
    scenarios = load_scenarios(cfg)
    names = [sc.name for sc in scenarios]
    assert names == ["high_ageing", "principal", "low_ageing", "flat_rates", "more_remote_closure"]
    for sc in scenarios:
        sc.check_against(ONS_BANDS, 2025, 2035)
    by_name = {sc.name: sc for sc in scenarios}
    assert (
        by_name["flat_rates"].rate_trend_per_year == 0.0 and by_name["principal"].rate_trend_per_year is None
    )
    assert by_name["high_ageing"].ageing == {"85+": 1.46, "65-84": 1.2}
    lever = by_name["more_remote_closure"].remote_closure
    assert (lever.start_share, lever.end_share, lever.end_year) == (0.2, 0.3, 2035)
    assert projection_settings(cfg).final_year == 2035


def test_overrides_reach_the_headline_and_replace_its_comparison_namesake():
    cfg = compose_config(
        "project", ["scenario.remote_closure.end_share=0.25", "~scenario@compare.low_ageing"]
    )
    scenarios = load_scenarios(cfg)
    assert [sc.name for sc in scenarios].count("principal") == 1
    assert scenarios[0].remote_closure.end_share == 0.25
    assert "low_ageing" not in [sc.name for sc in scenarios]


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"category_mix": {"C1": 0.5, "C2": 0.6, "C3": -0.1, "C4": 0.0}},
            r"category_mix.C3 must be a share between 0",
        ),
        ({"category_mix": {"C1": 0.5, "C2": 0.6, "C3": 0.1, "C4": 0.0}}, "must sum to 1"),
        ({"category_mix": {"C1": 1.0}}, "needs exactly the keys C1, C2, C3, C4"),
        (
            {"remote_closure": {"start_share": 0.2, "end_share": 30, "end_year": 2035}},
            "end_share must be a share",
        ),
        ({"remote_closure": {"start_share": 0.2, "end_share": 0.3}}, r"remote_closure needs \['end_year'\]"),
        ({"attended_split": {"see_and_treat": 1.2, "conveyed": -0.2}}, "see_and_treat must be a share"),
        ({"rate_trend_per_year": 0.5}, "yearly fraction"),
        ({"ageing": {"85+": -1}}, "growth scale >= 0"),
        ({"ageing": {"old": 1.2}}, "unknown age band 'old'"),
        ({"name": ""}, "needs a `name`"),
    ],
)
def test_impossible_values_fail_at_load(change, message):
    with pytest.raises(ConfigError, match=message):
        scenario(**change)


def test_years_out_of_range_and_split_bands_fail_the_cross_checks():
    early = scenario(remote_closure={"start_share": 0.2, "end_share": 0.3, "end_year": 2020})
    with pytest.raises(
        ConfigError, match="end_year 2020 is out of range; use a year from the base year 2025"
    ):
        early.check_against(ONS_BANDS, 2025, 2035)
    with pytest.raises(ConfigError, match="splits band '80-84'"):
        scenario(ageing={"82+": 1.2}).check_against(ONS_BANDS, 2025, 2035)
    # A target after the final year is a path only partly travelled, not an error.
    scenario(remote_closure={"start_share": 0.2, "end_share": 0.3, "end_year": 2040}).check_against(
        ONS_BANDS, 2025, 2035
    )


def test_remote_closure_moves_in_equal_yearly_steps():
    path = RemoteClosure(0.2, 0.3, 2035)
    shares = path.share(np.arange(2024, 2038), base_year=2025)
    assert shares[0] == shares[1] == 0.2
    assert shares[-3:] == pytest.approx([0.3, 0.3, 0.3])
    assert np.diff(shares[1:12]) == pytest.approx(np.full(10, 0.01))
