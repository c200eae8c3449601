"""Clopper-Pearson bounds, the safety-limited threshold and hard rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta

from disposition.safety import (
    HardRule,
    clopper_pearson_upper,
    closure_at,
    excluded_by_rules,
    safety_threshold,
)
from mlops.errors import ConfigError


def test_clopper_pearson_matches_the_beta_quantile():
    assert clopper_pearson_upper(3, 500, 0.95, two_sided=True) == pytest.approx(beta.ppf(0.975, 4, 497))
    assert clopper_pearson_upper(3, 500, 0.95, two_sided=False) == pytest.approx(beta.ppf(0.95, 4, 497))
    # Rule of three: no events in n trials gives a one-sided 95 % bound of about 3/n.
    assert clopper_pearson_upper(0, 300, two_sided=False) == pytest.approx(3 / 300, rel=0.01)
    assert clopper_pearson_upper(0, 0) == 1.0 and clopper_pearson_upper(5, 5) == 1.0


def test_threshold_is_the_largest_share_within_the_bound():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=4_000)
    unsafe = rng.uniform(size=4_000) < (1 - p) * 0.05
    eligible = rng.uniform(size=4_000) > 0.1
    chosen = safety_threshold(p, unsafe, eligible, limit=0.02)
    assert chosen.upper_bound <= 0.02 and chosen.n_recommended > 0
    # Brute force: no lower threshold keeps the bound within the limit.
    for cut in np.sort(p[eligible])[::-1]:
        if cut < chosen.threshold:
            assert closure_at(p, unsafe, eligible, cut).upper_bound > 0.02
    assert chosen.share == pytest.approx(chosen.n_recommended / 4_000)
    assert not (~eligible & (p >= chosen.threshold) & False).any()


def test_ties_are_recommended_together_and_impossible_limits_recommend_nothing():
    p = np.array([0.9, 0.9, 0.9, 0.5])
    unsafe = np.array([False, False, True, False])
    eligible = np.ones(4, dtype=bool)
    # Taking two of three tied calls would dodge the unsafe one: not allowed.
    result = safety_threshold(p, unsafe, eligible, limit=0.99, confidence=0.5)
    assert result.n_recommended in (0, 3, 4)
    nothing = safety_threshold(p, unsafe, eligible, limit=0.01)
    assert nothing.n_recommended == 0 and nothing.threshold == np.inf and nothing.share == 0
    with pytest.raises(ConfigError, match="safety.limit"):
        safety_threshold(p, unsafe, eligible, limit=1.5)


def test_hard_rules_exclude_listed_values_and_missing_ones():
    frame = pd.DataFrame(
        {"category": ["C1", "C2", None, "C3"], "symptom": ["falls", "stroke", "falls", "falls"]}
    )
    rules = [HardRule("category", ("C1",)), HardRule("symptom", ("stroke",))]
    excluded, which = excluded_by_rules(frame, rules)
    assert excluded.tolist() == [True, True, True, False]
    assert which.tolist() == [0, 1, 0, -1]


def test_hard_rules_ignore_case_and_spacing_of_labels():
    frame = pd.DataFrame({"category": ["c1", " C1 ", "C2", "Cardiac  Arrest"]})
    rules = [HardRule("category", ("C1", "cardiac arrest"))]
    excluded, _ = excluded_by_rules(frame, rules)
    assert excluded.tolist() == [True, True, False, True]
