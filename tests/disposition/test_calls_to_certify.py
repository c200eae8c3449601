"""How many recommended calls a threshold with a given true under-triage needs to show the limit
(disposition.threshold.calls_to_certify), checked against the Clopper-Pearson bound itself."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import beta, binom

from disposition.threshold import calls_to_certify, required_calls


def _pass_probability(n: int, rate: float, limit: float, delta: float) -> float:
    """P(the one-sided Clopper-Pearson bound at 1 - delta is within the limit), k ~ Binomial(n, rate)."""
    k = np.arange(n + 1)
    upper = np.where(k < n, beta.ppf(1 - delta, k + 1, np.maximum(n - k, 1)), 1.0)
    return float(binom.pmf(k, n, rate)[upper <= limit].sum())


def test_no_unsafe_call_at_all_needs_the_known_minimum():
    assert calls_to_certify(0.0, 0.01, 0.05) == required_calls(0.01, 0.05) == 299


@pytest.mark.parametrize(("rate", "power"), [(0.005, 0.95), (0.0025, 0.95), (0.005, 0.5), (0.02, 0.9)])
def test_it_is_the_fewest_calls_that_pass_with_the_power(rate, power):
    limit = 0.04 if rate == 0.02 else 0.01
    n = calls_to_certify(rate, limit, 0.05, power)
    assert _pass_probability(n, rate, limit, 0.05) >= power
    assert all(_pass_probability(m, rate, limit, 0.05) < power for m in range(max(1, n - 40), n))


def test_a_rate_near_the_limit_needs_many_more_and_beyond_the_cap_says_so():
    assert calls_to_certify(0.0075, 0.01, 0.05) > 4 * calls_to_certify(0.005, 0.01, 0.05)
    assert calls_to_certify(0.0099, 0.01, 0.05, max_calls=50_000) is None
    with pytest.raises(ValueError, match="rate must be"):
        calls_to_certify(0.01, 0.01, 0.05)
