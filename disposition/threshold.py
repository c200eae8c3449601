"""A threshold whose under-triage guarantee holds at every sample size: Learn-then-Test.

For a threshold ``t`` let ``R(t)`` be the true under-triage among the calls it recommends (unsafe
calls over recommended calls, on calls like the calibration calls). The threshold is chosen by
fixed-sequence testing (Angelopoulos et al., "Learn then Test", 2021; the fixed-sequence procedure
of Maurer et al. 1995).

**The argument.**

- *Hypotheses*: one per candidate ``t``, ``H_t: R(t) > r_t``, where ``r_t`` is the limit or, with
  ``confirm_power``, a rate below it (:func:`confirmable_rate`). Each is tested with the exact
  binomial p-value ``P(X <= k | n, r_t)`` (``n`` recommended calibration calls, ``k`` unsafe).
- *Order and start, chosen before any calibration outcome is looked at*: candidates are the cut
  points of the calibration scores in order from the strictest to the loosest, one per
  ``1 / grid`` of the eligible calls (positions, i.e. counts). The walk starts at the planned
  start (:func:`planned_start`), computed from **planning data** only: the training window's
  cross-fitted out-of-fold probabilities and outcomes (:mod:`disposition.model_choice`), together
  with calibration counts; and never before the first candidate the counts alone say could reject
  (:func:`start_calls`).
- *Procedure*: test the candidates in that order at ``delta`` each; stop at the first that is not
  rejected; deploy the last rejected (none rejected: nothing is recommended).
- *Error rate*: the family-wise error of the walk is at most ``delta`` (a fixed sequence needs no
  correction: a false rejection can only happen at the first true null reached), so
  ``P(R(t_deployed) > limit) <= P(R(t_deployed) > r_t) <= delta``.
- *What chose what*: the model was fitted on the training window; the planning data are training
  outcomes; the calibrator, the p-values and the stopping point use the calibration window; the
  test window chose nothing and only reports.
- *Assumptions and limits of the proof*: new calls are exchangeable with the calibration calls
  (same case mix and practice; the synthetic world's ageing drift breaks it a little, which is
  why the test window and monitoring check it). The calibrator is fitted on the calibration
  outcomes, but it is strictly increasing in the model's raw score (ties broken by it,
  :mod:`disposition.calibration`), so every candidate's set of calls is a top slice of the model's
  own order, fixed by the training window and the counts.

**Why planning.** A candidate recommending too few calls cannot be rejected whatever its outcomes,
and one whose rate is near the rate tested is rejected only by luck; a fixed sequence ends at its
first acceptance, so a walk from the strict end could stop at once (seed 1 of the benchmark, before
the planned start). The planning data estimate each candidate's rate (the same fraction of their
own calls ranked by their own probabilities, taken about one standard error up) and so the chance
its test rejects; with ``max_power`` (the default) the walk starts at the candidate most likely to
be rejected, with a number at the first predicted to be rejected that often. Planning only moves
the start, so it cannot break the guarantee; but it cannot make the walk powerful where the
calibration window is riskier than the training window (drift). On the development seeds
(experiments/results/disposition_safety_dev.md) it made no difference at 150,000 calls beyond
noise, and at a million calls it was the only start that recommended anything (the start by
counts stopped at its first test).

**What it tests against** (``confirm_power``). A threshold whose calibration rate sits just below
the limit will, half the time, show a bound above the limit on the next window of calls. With
``confirm_power`` set, each candidate is tested against the rate at which a later window of
``test_scale`` times its calls would confirm the limit (its upper bound at ``delta`` within it)
with that probability. That rate is below the limit, so the guarantee holds; the threshold is
stricter.

**Subgroup levels** (:mod:`disposition.level_thresholds`). The same walk runs within the calls of
each level of the configured groupings (planned on that level's planning calls), giving for each
level ``l`` its own threshold ``t_l`` with ``P(R_l(t_l) > limit) <= delta``: a **per-level**
guarantee at ``delta`` each, not a family-wise one (over ``L`` levels the chance that at least one
is wrong can reach ``L * delta``). A level whose walk rejects nothing is withheld. A call is
recommended only above the overall threshold and its levels' thresholds. The proof covers each
level's calls above its own threshold, and all calls above the overall one; the calls actually
served in a level are a subset of those (other groupings' stricter thresholds and withheld levels
remove some), and a subset of a safe set is not proved safe: the held-out test window reports
every level's bound for that reason. ``safety.subgroup_control=joint``
(:mod:`disposition.joint_threshold`) closes that gap: one threshold for every served call, tested in
the overall and every served level at once (intersection-union), family-wise at ``delta`` for exactly
the calls served, with ``delta`` split over planned starts so that one failed first test does not
end everything.
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


def calls_to_certify(
    rate: float, limit: float, delta: float, power: float = 0.95, max_calls: int = 10_000_000
) -> int | None:
    """The fewest recommended calls at which a set of calls whose TRUE under-triage is ``rate``
    (below ``limit``) shows its one-sided bound within ``limit`` at ``delta`` with probability at
    least ``power``: the smallest ``n`` with ``P(Binomial(n, rate) <= largest rejected count) >=
    power``. The probability saw-tooths with ``n`` (the rejected count is whole), so a few more calls
    can fall back below ``power``; it tends to 1. Exact binomial arithmetic, no assumption beyond
    independent outcomes. 299 at 1 % with ``rate`` 0 and delta 0.05; 3,137 at half the limit. None
    when more than ``max_calls`` would be needed."""
    if not 0 <= rate < limit < 1:
        raise ValueError(f"rate must be in [0, limit) and limit in (0, 1), got rate {rate}, limit {limit}")
    start = 1
    while start <= max_calls:
        n = np.arange(start, min(2 * start + 1_000, max_calls + 1))
        k = largest_rejected_count(n, limit, delta)
        passes = (k >= 0) & (binom.cdf(np.maximum(k, 0), n, rate) >= power)
        if passes.any():
            return int(n[np.argmax(passes)])
        start = int(n[-1]) + 1
    return None


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


@dataclass(frozen=True)
class Plan:
    """Planning data: probabilities, outcomes (``unsafe``) and hard-rule eligibility of calls that
    are NOT the calibration calls, e.g. cross-fitted out-of-fold probabilities on the training window
    (``positions``: where they sit in the training frame). Only they choose where the walk starts."""

    p: np.ndarray
    unsafe: np.ndarray
    eligible: np.ndarray
    positions: np.ndarray | None = None

    def within(self, mask: np.ndarray) -> Plan:
        """The planning calls in ``mask`` (one subgroup level)."""
        mask = np.asarray(mask, dtype=bool)
        return Plan(self.p[mask], self.unsafe[mask], self.eligible[mask])


def tested_rate(n: np.ndarray, limit: float, delta: float, confirm_power: float | None, test_scale: float):
    """The rate each candidate (``n`` recommended calls) is tested against: the limit, or with
    ``confirm_power`` the rate a later window of ``test_scale`` times its calls would confirm."""
    if confirm_power is None:
        return np.full(len(n), float(limit))
    return confirmable_rate(np.maximum(np.round(n * test_scale), 1), limit, delta, confirm_power)


PLAN_QUANTILE = 0.84  # the planning estimate of a candidate's rate: its upper Clopper-Pearson bound at 84 %


def planned_start(
    plan: Plan,
    n_eligible: int,
    limit: float,
    delta: float,
    confirm_power: float | None,
    test_scale: float,
    power: float | str,
) -> int | None:
    """Where the walk starts, from planning data only (:class:`Plan`): the fewest recommended
    calibration calls at which the test is predicted to reject with probability ``power``.

    A candidate recommending ``n`` of the ``n_eligible`` calibration calls is matched with the same
    fraction of the planning calls ranked by their own probabilities; their unsafe share, taken about
    one standard error up (:data:`PLAN_QUANTILE`), estimates its rate, and the rejection probability
    is ``P(Binomial(n, estimate) <= largest rejected count)``.
    When no candidate reaches ``power``, the one with the highest predicted probability; None when no
    planning call is eligible or no test could reject.
    """
    eligible = np.asarray(plan.eligible, dtype=bool)
    p, unsafe = np.asarray(plan.p, dtype=float)[eligible], np.asarray(plan.unsafe, dtype=bool)[eligible]
    if len(p) == 0 or n_eligible <= 0:
        return None
    unsafe_ranked = np.cumsum(unsafe[np.argsort(-p, kind="stable")])
    # Candidate sizes on a fine grid (every call up to 2,000 of them): the start needs no finer step.
    n = np.unique(np.linspace(1, n_eligible, min(n_eligible, 2_000)).round())
    m = np.clip(np.round(n / n_eligible * len(p)).astype(int), 1, len(p))
    # A pessimistic estimate (about one standard error up: the one-sided 84 % Clopper-Pearson bound),
    # so that a handful of planning calls with no unsafe outcome does not predict a sure rejection.
    k_plan = unsafe_ranked[m - 1]
    estimate = betaincinv(k_plan + 1, np.maximum(m - k_plan, 1e-12), PLAN_QUANTILE)
    k = largest_rejected_count(n, tested_rate(n, limit, delta, confirm_power, test_scale), delta)
    reject = np.where(k >= 0, binom.cdf(np.maximum(k, 0), n, estimate), 0.0)
    if reject.max(initial=0.0) <= 0:
        return None
    if power == "max_power":
        return int(n[np.argmax(reject)])
    reached = np.flatnonzero(reject >= power)
    return int(n[reached[0]] if len(reached) else n[np.argmax(reject)])


def start_calls(rate: np.ndarray, delta: float) -> np.ndarray:
    """Which candidates the walk tests, given the rate each is tested against (candidate ``i`` has
    ``i + 1`` calls): from the first whose test has power :data:`START_POWER` at
    :data:`START_RATE_FRACTION` of its rate on. Counts only, never outcomes."""
    could = _could_reject(np.arange(1, len(rate) + 1, dtype=float), rate, delta)
    return np.maximum.accumulate(could) if len(could) else could


def _could_reject(n: np.ndarray, rate: np.ndarray, delta: float) -> np.ndarray:
    """:func:`start_calls`' criterion for candidates of ``n`` calls tested against ``rate``."""
    k = largest_rejected_count(n, rate, delta)
    return (k >= 0) & (binom.cdf(k, n, START_RATE_FRACTION * rate) >= START_POWER)


def first_started(
    n_candidates: int, limit: float, delta: float, confirm_power: float | None, test_scale: float
) -> int:
    """The position of the first candidate :func:`start_calls` opens (``n_candidates`` when none).

    The same criterion, evaluated in growing chunks from the strictest candidate and stopping at the
    first that opens, instead of over every candidate: the exact binomial quantiles cost about a
    millisecond per thousand candidates, and a calibration window of 400,000 calls (the 2 M-call
    benchmark), walked again within every subgroup level, spent most of the evaluation there, while
    the first candidate that opens has a few thousand calls. Each candidate's criterion depends on its
    own count only, so the position is the same.
    """
    done, size = 0, 4_096
    while done < n_candidates:
        n = np.arange(done + 1, min(done + size, n_candidates) + 1)
        could = _could_reject(n.astype(float), tested_rate(n, limit, delta, confirm_power, test_scale), delta)
        if could.any():
            return done + int(np.argmax(could))
        done, size = done + len(n), size * 4
    return n_candidates


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


def ranked_eligible(p: np.ndarray, eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The eligible calls' positions, highest score first (ties in call order), and their scores."""
    candidates = np.flatnonzero(eligible)
    order = candidates[np.argsort(-p[candidates], kind="stable")]
    return order, p[order]


def sample_size_facts(limit: float, delta: float, eligible_calls: int) -> dict[str, object]:
    """What the eligible calls can show whatever the model: the fewest recommended calls (none
    unsafe) that show the limit, and the smallest limit that many eligible calls could show."""
    return {
        "needed_calls": required_calls(limit, delta),
        "eligible_calls": eligible_calls,
        "supported_limit": smallest_supported_limit(eligible_calls, delta),
    }


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
    start: int | None = None,
) -> ThresholdTest:
    """The Learn-then-Test threshold (module docstring) for scores ``p``, outcomes ``unsafe`` and
    the calls no hard rule excludes (``eligible``). Tied calls are recommended together.

    ``start``: test only candidates with at least this many recommended calls (from
    :func:`planned_start`, which must not have seen these outcomes)."""
    check_settings(limit, delta, confirm_power)
    p = np.asarray(p, dtype=float)
    unsafe = np.asarray(unsafe, dtype=bool)
    eligible = np.asarray(eligible, dtype=bool)
    order, ranked = ranked_eligible(p, eligible)
    n = np.arange(1, len(order) + 1)
    k = np.cumsum(unsafe[order])
    end_of_tie = np.r_[ranked[1:] != ranked[:-1], True] if len(order) else np.array([], dtype=bool)
    # From the first candidate the counts alone say could reject (start_calls), and not before the
    # planned start when there is one (where planning data predicted the tests are most powerful).
    first = first_started(len(order), limit, delta, confirm_power, test_scale)
    open_ = (n > first) & (n >= (start or 0))
    tested = np.flatnonzero(end_of_tie & open_) if len(order) else np.array([], int)
    if grid and len(tested):
        # One candidate per step of calls, counted from the start (positions only, never outcomes).
        step = max(1, len(order) // grid)
        bucket = (n[tested] - n[tested[0]]) // step
        tested = tested[np.r_[True, bucket[1:] != bucket[:-1]]]
    # The rate each tested candidate is tested against, computed for those candidates only.
    rate = tested_rate(n[tested], limit, delta, confirm_power, test_scale)
    p_values = binomial_p_value(k[tested], n[tested], rate)
    failed = np.flatnonzero(p_values > delta)
    n_rejected = int(failed[0]) if len(failed) else len(tested)
    common = {
        "tested": int(len(tested)),
        "rejected": n_rejected,
        "start_calls": int(n[tested[0]]) if len(tested) else 0,
        **sample_size_facts(limit, delta, len(order)),
    }
    if n_rejected == 0:
        return ThresholdTest(np.inf, p_value=float("nan"), null_rate=float("nan"), **common)
    last = tested[n_rejected - 1]
    return ThresholdTest(
        float(ranked[last]),
        p_value=float(p_values[n_rejected - 1]),
        null_rate=float(rate[n_rejected - 1]),
        **common,
    )
