"""Clopper-Pearson bounds, the Learn-then-Test threshold and hard rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta, binom

from disposition.safety import (
    HardRule,
    clopper_pearson_upper,
    excluded_by_rules,
    safety_threshold,
)
from disposition.threshold import (
    confirmable_rate,
    first_started,
    largest_rejected_count,
    required_calls,
    smallest_supported_limit,
    start_calls,
)
from disposition.threshold import tested_rate as rate_tested  # a name pytest would collect as a test
from mlops.errors import ConfigError


def test_clopper_pearson_matches_the_beta_quantile():
    assert clopper_pearson_upper(3, 500, 0.95, two_sided=True) == pytest.approx(beta.ppf(0.975, 4, 497))
    assert clopper_pearson_upper(3, 500, 0.95, two_sided=False) == pytest.approx(beta.ppf(0.95, 4, 497))
    # Rule of three: no events in n trials gives a one-sided 95 % bound of about 3/n.
    assert clopper_pearson_upper(0, 300, two_sided=False) == pytest.approx(3 / 300, rel=0.01)
    assert clopper_pearson_upper(0, 0) == 1.0 and clopper_pearson_upper(5, 5) == 1.0


def _brute_force_walk(p, unsafe, eligible, limit, delta, grid):
    """The fixed-sequence walk written out call by call, independently of the module's vector code:
    sort, count, test each candidate with scipy's binomial CDF, stop at the first acceptance."""
    keep = np.flatnonzero(eligible)
    order = keep[np.argsort(-p[keep], kind="stable")]
    ranked = p[order]
    n_min = next(n for n in range(1, 10**6) if (1 - limit) ** n <= delta)
    start = next(
        n
        for n in range(1, len(order) + 1)
        if (k := int(binom.ppf(delta, n, limit))) - (binom.cdf(k, n, limit) > delta) >= 0
        and binom.cdf(k - (binom.cdf(k, n, limit) > delta), n, limit / 2) >= 0.5
    )
    step = max(1, len(order) // grid)
    last, bucket = np.inf, None
    for i in range(start - 1, len(order)):
        if i + 1 < len(order) and ranked[i + 1] == ranked[i]:
            continue  # tied calls go together
        if (i + 1 - start) // step == bucket:
            continue
        bucket = (i + 1 - start) // step
        k = int(unsafe[order[: i + 1]].sum())
        if binom.cdf(k, i + 1, limit) > delta:
            break
        last = ranked[i]
    return last, n_min


def test_fixed_sequence_threshold_matches_a_brute_force_walk_at_the_one_percent_limit():
    """The default 1 % limit and delta 0.05, with enough calls (12,000) for it to recommend some."""
    rng = np.random.default_rng(11)
    n = 12_000
    p = rng.uniform(size=n)
    unsafe = rng.uniform(size=n) < (1 - p) * 0.03
    eligible = rng.uniform(size=n) > 0.15
    # Calls a hard rule excludes are high-scoring and all unsafe: counting any would break the bound.
    unsafe[~eligible & (p > 0.5)] = True
    chosen = safety_threshold(p, unsafe, eligible, limit=0.01, delta=0.05, confirm_power=None, grid=100)
    expected, n_min = _brute_force_walk(p, unsafe, eligible, 0.01, 0.05, 100)
    assert n_min == 299 and chosen.needed_calls == 299
    assert np.isfinite(chosen.threshold) and chosen.threshold == expected
    assert chosen.n_recommended == (eligible & (p >= chosen.threshold)).sum() > 1_000
    assert chosen.n_unsafe == unsafe[eligible & (p >= chosen.threshold)].sum()
    # The deployed threshold's p-value is within delta, and so its one-sided bound within the limit.
    assert chosen.p_value == pytest.approx(binom.cdf(chosen.n_unsafe, chosen.n_recommended, 0.01))
    assert chosen.p_value <= 0.05 and chosen.upper_bound <= 0.01
    assert chosen.upper_bound == pytest.approx(
        beta.ppf(0.95, chosen.n_unsafe + 1, chosen.n_recommended - chosen.n_unsafe)
    )
    assert 0 < chosen.rejected < chosen.tested  # the walk stopped at an acceptance, not at the end


def test_the_guarantee_holds_on_new_calls_in_repeated_draws():
    """P(true rate at the deployed threshold > limit) <= delta: over 300 seeded calibration draws from a
    known risk curve (true rate among calls above t is computed exactly), the deployed threshold's true
    rate exceeds the 2 % limit in at most delta of the draws (plus binomial slack)."""
    grid_p = np.linspace(0, 1, 2001)
    risk = 0.06 * (1 - grid_p) ** 1.5  # P(unsafe | p): 6 % at the bottom, 0 at the top
    tail_rate = np.cumsum(risk[::-1])[::-1] / np.arange(len(grid_p), 0, -1)  # true rate among p >= t
    rng = np.random.default_rng(5)
    exceed = 0
    for _ in range(300):
        p = rng.choice(grid_p, size=3_000)
        unsafe = rng.uniform(size=3_000) < 0.06 * (1 - p) ** 1.5
        chosen = safety_threshold(p, unsafe, np.ones(3_000, bool), limit=0.02, delta=0.1, confirm_power=None)
        if np.isfinite(chosen.threshold):
            exceed += tail_rate[np.searchsorted(grid_p, chosen.threshold)] > 0.02
    assert exceed / 300 <= 0.1 + 2 * np.sqrt(0.1 * 0.9 / 300)


def test_confirm_power_tests_against_a_rate_below_the_limit():
    # 6,000 test calls at a 1 % limit confirm it (bound within 1 %) with 47 unsafe calls or fewer.
    assert largest_rejected_count(6_000, 0.01, 0.05) == 47
    assert binom.cdf(47, 6_000, 0.01) <= 0.05 < binom.cdf(48, 6_000, 0.01)
    rate = confirmable_rate(6_000, 0.01, 0.05, 0.5)
    assert 0.007 < rate < 0.01 and binom.cdf(47, 6_000, rate) == pytest.approx(0.5, abs=0.01)
    assert confirmable_rate(100, 0.01, 0.05, 0.5) == 0  # 100 calls can never show 1 %
    rng = np.random.default_rng(3)
    p = rng.uniform(size=20_000)
    unsafe = rng.uniform(size=20_000) < (1 - p) * 0.03
    plain = safety_threshold(p, unsafe, np.ones(20_000, bool), 0.01, 0.05, confirm_power=None)
    confirmed = safety_threshold(p, unsafe, np.ones(20_000, bool), 0.01, 0.05, confirm_power=0.5)
    assert 0 < confirmed.n_recommended < plain.n_recommended and confirmed.under_triage < plain.under_triage


@pytest.mark.parametrize(
    ("limit", "power", "scale", "calls"),
    [(0.01, 0.5, 1.0, 30_000), (0.01, None, 1.0, 5_000), (0.02, 0.2, 0.5, 9_000), (0.01, 0.5, 1.0, 300)],
)
def test_the_chunked_start_opens_the_same_candidate_as_testing_every_one(limit, power, scale, calls):
    # first_started stops at the first candidate start_calls opens instead of evaluating them all.
    n = np.arange(1, calls + 1)
    opened = start_calls(rate_tested(n, limit, 0.05, power, scale), 0.05)
    expected = int(np.argmax(opened)) if opened.any() else calls
    assert first_started(calls, limit, 0.05, power, scale) == expected


def test_too_few_calls_recommend_nothing_and_say_how_many_are_needed():
    p = np.linspace(0.5, 1, 253)  # 253 calibration patients, none unsafe
    chosen = safety_threshold(p, np.zeros(253, bool), np.ones(253, bool), limit=0.01, delta=0.05)
    assert chosen.n_recommended == 0 and chosen.threshold == np.inf and chosen.tested == 0
    assert chosen.needed_calls == required_calls(0.01, 0.05) == 299
    assert 0.99**299 <= 0.05 < 0.99**298
    assert chosen.eligible_calls == 253
    assert chosen.supported_limit == pytest.approx(smallest_supported_limit(253, 0.05))
    assert 0.0117 < chosen.supported_limit < 0.0119 and (1 - chosen.supported_limit) ** 253 == pytest.approx(
        0.05
    )


def test_ties_are_recommended_together_and_bad_settings_are_refused():
    p = np.r_[np.full(3_000, 0.9), np.full(1_000, 0.5)]
    unsafe = np.zeros(4_000, bool)
    unsafe[3_000:] = True
    result = safety_threshold(p, unsafe, np.ones(4_000, bool), limit=0.05, delta=0.05, confirm_power=None)
    assert result.n_recommended == 3_000 and result.threshold == 0.9
    with pytest.raises(ConfigError, match="safety.limit"):
        safety_threshold(p, unsafe, np.ones(4_000, bool), limit=1.5)
    with pytest.raises(ConfigError, match="safety.delta"):
        safety_threshold(p, unsafe, np.ones(4_000, bool), delta=0)


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
