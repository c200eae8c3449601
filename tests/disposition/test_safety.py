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
    # Hard-rule calls score above the threshold too, yet none of them is recommended or counted.
    above = p >= chosen.threshold
    assert (above & ~eligible).any()
    assert chosen.n_recommended == (above & eligible).sum() < above.sum()
    assert chosen.n_unsafe == unsafe[above & eligible].sum()


def _bounds_by_brute_force(p, unsafe, eligible, cuts, confidence=0.95):
    """Recommended calls, unsafe ones and the two-sided Clopper-Pearson bound at each cut, counted
    directly from the beta quantile (independent of the module's cumulative search)."""
    order = np.argsort(p[eligible])
    ranked, bad = p[eligible][order], unsafe[eligible][order]
    first = np.searchsorted(ranked, cuts, side="left")  # calls with p >= cut are ranked[first:]
    n = len(ranked) - first
    events = np.r_[np.cumsum(bad[::-1])[::-1], 0][first]
    upper = np.where(
        n > events, beta.ppf(1 - (1 - confidence) / 2, events + 1, np.maximum(n - events, 1)), 1.0
    )
    return n, events, upper


def test_one_percent_limit_recommends_within_the_bound_and_no_lower_threshold_would():
    """The default 1 % limit, with enough calls (12,000) for it to recommend some."""
    rng = np.random.default_rng(11)
    n = 12_000
    p = rng.uniform(size=n)
    unsafe = rng.uniform(size=n) < (1 - p) * 0.03
    eligible = rng.uniform(size=n) > 0.15
    # Calls a hard rule excludes are high-scoring and all unsafe: counting any would break the bound.
    unsafe[~eligible & (p > 0.5)] = True
    chosen = safety_threshold(p, unsafe, eligible, limit=0.01)
    # With no unsafe call at all, 0.01 needs at least 368 recommended calls (two-sided 95 %).
    assert chosen.n_recommended >= 368 and np.isfinite(chosen.threshold)
    assert chosen.upper_bound <= 0.01 and chosen.under_triage <= 0.01
    n_at, events_at, upper_at = _bounds_by_brute_force(p, unsafe, eligible, np.array([chosen.threshold]))
    assert (n_at[0], events_at[0]) == (chosen.n_recommended, chosen.n_unsafe)
    assert upper_at[0] == pytest.approx(chosen.upper_bound) and upper_at[0] <= 0.01
    assert chosen.n_recommended == (eligible & (p >= chosen.threshold)).sum()
    # Brute force over every lower cut: each would recommend more calls but break the bound.
    lower = np.unique(p[eligible])
    lower = lower[lower < chosen.threshold]
    assert len(lower) > 1_000
    _, _, upper = _bounds_by_brute_force(p, unsafe, eligible, lower)
    assert (upper > 0.01).all()


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
