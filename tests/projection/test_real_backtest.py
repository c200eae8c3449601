"""The real-data backtest's explanation of the trust-level gap (experiments/projection/real_backtest.py)."""

import pytest

from experiments.projection.common import swast_daily
from experiments.projection.real_backtest import development_check, trust_gap_diagnosis


@pytest.fixture(scope="module")
def daily():
    return swast_daily()


def test_the_trust_gap_to_log_linear_is_the_population_shortfall(daily):
    diagnosis = trust_gap_diagnosis(daily, origin=2016, year=2019).set_index("population")
    gap = diagnosis["point 2019 vs log-linear (%)"]
    shortfall = diagnosis["population 2019 vs its 2014-2016 trend (%)"]
    # Same fitted years, so the planner's point departs from the log-linear one by the population's
    # departure from its own trend (up to the Poisson GLM's weighting of the years).
    assert (gap - shortfall).abs().max() < 0.05
    assert (gap < 0).all()  # England grew more slowly after 2016: the planner projects less


def test_the_development_check_scores_a_year_before_the_target(daily):
    check = development_check(daily).iloc[0]
    assert check["year"] == 2016 and check["fitted"] == "2014-2015"
    # Both methods under-project 2016 by about the same, so the check favours neither.
    assert abs(check["projection error (%)"] - check["log-linear error (%)"]) < 0.2
