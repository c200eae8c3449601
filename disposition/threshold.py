"""A threshold whose under-triage guarantee holds at every sample size: Learn-then-Test.

For a threshold ``t`` let ``R(t)`` be the true under-triage among the calls it recommends (unsafe
calls over recommended calls, on calls like the calibration calls). The threshold is chosen by
fixed-sequence testing (Angelopoulos et al., "Learn then Test", 2021; the fixed-sequence procedure
of Maurer et al. 1995):

1. candidate thresholds are the cut points between distinct scores, ordered from the strictest
   (fewest calls recommended) to the loosest; the order uses the scores only, never the outcomes;
2. each candidate tests ``H0: R(t) > rate`` with the exact binomial p-value
   ``P(X <= k | n, rate)`` (``n`` recommended calibration calls, ``k`` of them unsafe);
3. the walk goes on while the p-value is at most ``delta`` and stops at the first that is not;
   the deployed threshold is the last one rejected (none: nothing is recommended).

Every null hypothesis is tested at ``delta`` and the sequence stops at the first acceptance, so the
chance that any rejected threshold, the deployed one included, has ``R(t) > rate`` is at most
``delta``. **Assumption**: new calls are exchangeable with the calibration calls (same case mix
and practice); drift breaks it, which is why the test window and monitoring check it.

Two choices make the walk useful rather than merely valid:

- **Where it starts.** A candidate recommending too few calls cannot be rejected whatever its
  outcomes (no unsafe call among ``n`` gives ``(1 - rate) ** n``, above ``delta`` for small ``n``),
  and an early acceptance ends the walk. Candidates are therefore tested from the first whose test
  would reject with probability 1/2 if the true rate were half the rate tested
  (:func:`start_calls`): a count, not an outcome, so the guarantee is unchanged. Candidates are
  also thinned to one per ``1 / grid`` of the eligible calls: every extra test is another chance
  for a chance fluctuation to end the walk early.
- **What it tests against** (``confirm_power``). A threshold whose calibration rate sits just below
  the limit will, half the time, show a bound above the limit on the next window of calls. With
  ``confirm_power`` set, each candidate is tested against the rate at which a later window of
  ``test_scale`` times its calls would confirm the limit (its upper bound at ``delta`` within it)
  with that probability (:func:`confirmable_rate`). That rate is below the limit, so the guarantee
  ``P(R(t) > limit) <= delta`` still holds; the threshold is stricter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import betaincinv
from scipy.stats import binom

from mlops.errors import ConfigError


def required_calls(limit: float, delta: float) -> int:
    """The fewest recommended calls, none unsafe, that show an under-triage rate below ``limit``:
    the smallest ``n`` with ``(1 - limit) ** n <= delta`` (299 for 1 % at 0.05)."""
    return int(np.ceil(np.log(delta) / np.log1p(-limit) - 1e-9))


def smallest_supported_limit(calls: int, delta: float) -> float:
    """The smallest limit ``calls`` recommended calls could show at ``delta`` even if none was unsafe:
    ``1 - delta ** (1 / calls)`` (1 when there are no calls)."""
    return float(1 - delta ** (1 / calls)) if calls > 0 else 1.0


def binomial_p_value(unsafe, recommended, rate) -> np.ndarray:
    """Exact p-value of ``H0: true rate > rate`` from ``unsafe`` of ``recommended``: ``P(X <= unsafe)``
    for ``X ~ Binomial(recommended, rate)`` (1 for no calls)."""
    n = np.asarray(recommended, dtype=float)
    return np.where(n > 0, binom.cdf(unsafe, n, rate), 1.0)


def largest_rejected_count(calls, limit, delta: float) -> np.ndarray:
    """The most unsafe calls among ``calls`` with which ``H0: rate > limit`` is still rejected at
    ``delta`` (-1 when even none would not be): the test window's bound is within the limit iff
    its unsafe count is at most this."""
    n = np.asarray(calls, dtype=float)
    k = binom.ppf(delta, n, limit)
    return np.where(binom.cdf(k, n, limit) <= delta, k, k - 1)


def confirmable_rate(calls, limit: float, delta: float, power: float) -> np.ndarray:
    """The highest true rate at which a window of ``calls`` recommended calls shows its bound within
    ``limit`` (at ``delta``) with probability ``power``; 0 when no outcome could show it."""
    n = np.maximum(np.asarray(calls, dtype=float), 1.0)
    k = largest_rejected_count(n, limit, delta)
    # P(Bin(n, r) <= k) >= power  <=>  r <= the (1 - power) quantile of Beta(k + 1, n - k).
    rate = betaincinv(np.maximum(k, 0) + 1, np.maximum(n - k, 1), 1 - power)
    return np.where(k >= 0, rate, 0.0)


# Where the walk starts: the first candidate whose test would reject, with this probability, if
# the true rate were this fraction of the rate tested against. Starting earlier only adds tests
# with little power, and the first one that an unlucky unsafe call fails ends the walk.
START_POWER = 0.5
START_RATE_FRACTION = 0.5


def start_calls(rate: np.ndarray, delta: float) -> np.ndarray:
    """Which candidates the walk tests, given the rate each is tested against (candidate ``i`` has
    ``i + 1`` calls): from the first whose test has power :data:`START_POWER` at
    :data:`START_RATE_FRACTION` of its rate on. Counts only, never outcomes."""
    n = np.arange(1, len(rate) + 1, dtype=float)
    k = largest_rejected_count(n, rate, delta)
    could = (k >= 0) & (binom.cdf(k, n, START_RATE_FRACTION * rate) >= START_POWER)
    return np.maximum.accumulate(could) if len(could) else could


@dataclass(frozen=True)
class ThresholdTest:
    """How the fixed-sequence walk went, for the report and the messages.

    ``threshold`` is ``inf`` when nothing was rejected. ``tested`` candidates were tested,
    ``rejected`` of them rejected (the deployed one is the last). ``start_calls`` is the smallest
    number of recommended calls a tested candidate had (0 when none could be tested);
    ``needed_calls`` the fewest recommended calls, none unsafe, that show the limit at all;
    ``eligible_calls`` the calls no hard rule excludes; ``supported_limit`` the smallest limit
    those eligible calls could show; ``p_value`` and ``null_rate`` belong to the deployed candidate.
    """

    threshold: float
    tested: int
    rejected: int
    start_calls: int
    needed_calls: int
    eligible_calls: int
    supported_limit: float
    p_value: float
    null_rate: float

    @property
    def too_few_calls(self) -> bool:
        """No candidate could be tested: the data are too few for the limit, whatever the model."""
        return self.tested == 0


def check_settings(limit: float, delta: float, confirm_power: float | None) -> None:
    if not 0 < limit < 1:
        raise ConfigError(f"safety.limit must be in (0, 1), got {limit}")
    if not 0 < delta < 1:
        raise ConfigError(f"safety.delta must be in (0, 1), got {delta}")
    if confirm_power is not None and not 0 < confirm_power < 1:
        raise ConfigError(f"safety.confirm_power must be in (0, 1) or null, got {confirm_power}")


def fixed_sequence_threshold(
    p: np.ndarray,
    unsafe: np.ndarray,
    eligible: np.ndarray,
    limit: float,
    delta: float,
    confirm_power: float | None = None,
    test_scale: float = 1.0,
    grid: int | None = None,
) -> ThresholdTest:
    """The Learn-then-Test threshold (module docstring) for scores ``p``, outcomes ``unsafe`` and
    the calls no hard rule excludes (``eligible``). Tied calls are recommended together."""
    check_settings(limit, delta, confirm_power)
    p = np.asarray(p, dtype=float)
    unsafe = np.asarray(unsafe, dtype=bool)
    eligible = np.asarray(eligible, dtype=bool)
    candidates = np.flatnonzero(eligible)
    order = candidates[np.argsort(-p[candidates], kind="stable")]
    ranked = p[order]
    n = np.arange(1, len(order) + 1)
    k = np.cumsum(unsafe[order])
    if confirm_power is None:
        rate = np.full(len(n), float(limit))
    else:
        rate = confirmable_rate(np.maximum(np.round(n * test_scale), 1), limit, delta, confirm_power)
    end_of_tie = np.r_[ranked[1:] != ranked[:-1], True] if len(order) else np.array([], dtype=bool)
    tested = np.flatnonzero(end_of_tie & start_calls(rate, delta)) if len(order) else np.array([], int)
    if grid and len(tested):
        # One candidate per step of calls, counted from the start (positions only, never outcomes).
        step = max(1, len(order) // grid)
        bucket = (n[tested] - n[tested[0]]) // step
        tested = tested[np.r_[True, bucket[1:] != bucket[:-1]]]
    p_values = binomial_p_value(k[tested], n[tested], rate[tested])
    failed = np.flatnonzero(p_values > delta)
    n_rejected = int(failed[0]) if len(failed) else len(tested)
    common = {
        "tested": int(len(tested)),
        "rejected": n_rejected,
        "start_calls": int(n[tested[0]]) if len(tested) else 0,
        "needed_calls": required_calls(limit, delta),
        "eligible_calls": len(order),
        "supported_limit": smallest_supported_limit(len(order), delta),
    }
    if n_rejected == 0:
        return ThresholdTest(np.inf, p_value=float("nan"), null_rate=float("nan"), **common)
    last = tested[n_rejected - 1]
    return ThresholdTest(
        float(ranked[last]), p_value=float(p_values[n_rejected - 1]), null_rate=float(rate[last]), **common
    )
