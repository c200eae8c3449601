"""Splits by category and disposition add up, and their quantiles match simulated thinning."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.projection.splits import shares_by_year, split_part
from forecasting.synthetic import CATEGORIES
from tests.projection.conftest import scenario


def test_shares_add_up_and_follow_the_remote_closure_path():
    lever = scenario("lever", remote_closure={"start_share": 0.2, "end_share": 0.3, "end_year": 2035})
    shares = shares_by_year(lever, range(2024, 2036), base_year=2025)
    assert shares[list(CATEGORIES)].sum(axis=1).to_numpy() == pytest.approx(1.0)
    parts = shares[["hear_and_treat", "see_and_treat", "conveyed"]].sum(axis=1)
    assert parts.to_numpy() == pytest.approx(1.0)
    assert shares.loc[2035, "needs_ambulance"] == pytest.approx(0.7)
    assert shares.loc[2035, "needs_ambulance_no_change"] == pytest.approx(0.8)
    assert shares.loc[2030, "hear_and_treat"] == pytest.approx(0.25)


def test_part_quantiles_match_binomial_thinning_of_simulated_totals():
    rng = np.random.default_rng(0)
    totals = rng.poisson(rng.gamma(50, 2000 / 50, size=200_000))  # ~2,000 calls a day, overdispersed
    share = 0.094  # C1
    thinned = rng.binomial(totals, share)
    labels = {"p10": np.quantile(totals, 0.1), "p90": np.quantile(totals, 0.9)}
    part = split_part(np.array(totals.mean()), np.array(totals.std()), labels, np.array(share))
    assert part["mean"] == pytest.approx(thinned.mean(), rel=0.005)
    assert part["sd"] == pytest.approx(thinned.std(), rel=0.02)
    assert part["p10"] == pytest.approx(np.quantile(thinned, 0.1), rel=0.01)
    assert part["p90"] == pytest.approx(np.quantile(thinned, 0.9), rel=0.01)
