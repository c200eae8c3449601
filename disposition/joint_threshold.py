"""One threshold that holds in every served subgroup level at once: the intersection-union walk.

**What is proved.** Let ``S`` be the served calls: those no hard rule excludes and in no withheld
level (the withheld levels are fixed from planning data and counts before any calibration outcome
is looked at, :func:`plan_served_levels`). For a threshold ``t`` and a served level ``l`` (one age
band, sex or category), let ``R_l(t)`` be the true under-triage among calls of ``S`` in ``l`` with
score >= ``t``, and ``R(t)`` the same over all of ``S``. The deployed threshold ``t*`` satisfies

    P( R(t*) > limit  or  R_l(t*) > limit for some served level l ) <= delta

on new calls exchangeable with the calibration calls: a **family-wise** guarantee over the overall
rate and every served level together, at ``delta`` (not ``delta`` per level).

**The argument.**

- *Hypotheses*, one per candidate ``t``: ``H_t: max(R(t), max_l R_l(t)) > limit``. It is the union
  of the per-level nulls, so it is tested by the **intersection-union test** (Berger 1982): its
  p-value is the largest of the exact binomial p-values ``P(Bin(n, r) <= k)`` of the overall and
  every served level, each valid for its own null; ``P(max <= a | H_t) <= a`` because under ``H_t``
  at least one of them is a true null. No multiplicity correction is needed across levels.
  Each is tested against ``r``: the limit or, with ``confirm_power``, the lower rate a held-out
  window of its size would confirm (:func:`disposition.threshold.tested_rate`); ``r <= limit``.
- *Robust walk* (no stop-at-first-acceptance fragility): ``delta`` is split over a few planned
  starts, ``delta * w_j`` with ``sum w_j <= 1``. From each start a fixed sequence walks from the
  strict end to looser candidates at ``delta * w_j`` and stops at its first acceptance; the
  deployed threshold is the loosest rejected by any walk. A fixed sequence at level ``a`` makes a
  false rejection with probability at most ``a`` (Maurer et al. 1995), so by the union bound some
  walk falsely rejects with probability at most ``delta`` (Bonferroni over fixed sequences with
  several starts, Angelopoulos et al. "Learn then Test" 2021). A start whose first test fails no
  longer ends everything: the other walks still run.
- *Order, starts and weights* are chosen from planning data (the training window's out-of-fold
  probabilities) and counts, never from calibration outcomes. The candidates are cut points of the
  calibration scores on a grid of positions.
- *What chose what*: the model on the training window, the plan (served levels and starts) on its
  out-of-fold probabilities, the calibrator and the p-values on the calibration window; the test
  window chose nothing.
- *Assumptions*: exchangeability of new calls with the calibration calls (drift breaks it; the
  test window and `disposition-monitor` check it); the calibrator is strictly increasing in the
  model's raw score (ties broken by it), so every candidate's calls are a top slice of an order
  fixed before the calibration outcomes.
- *What is not proved*: levels not served get no recommendations, so nothing is claimed for them;
  a grouping that is not configured (time of day) is not covered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import betaincinv
from scipy.stats import binom

from disposition.threshold import (
    PLAN_QUANTILE,
    Plan,
    ThresholdTest,
    binomial_p_value,
    check_settings,
    largest_rejected_count,
    ranked_eligible,
    required_calls,
    sample_size_facts,
    tested_rate,
)


@dataclass(frozen=True)
class JointTest(ThresholdTest):
    """How the walks went: :class:`ThresholdTest`'s fields, counted over all walks.

    ``start_calls``: recommended calls at the first planned start (0: nothing could be tested);
    ``p_value``: the deployed candidate's intersection-union p-value; ``starts``: the planned starts
    (recommended calibration calls) and their shares of delta; ``weakest``: which level
    (``group=level``, or ``overall``) gave the p-value.
    """

    starts: tuple[tuple[int, float], ...] = ()
    weakest: str = ""


def _masks(labels: Mapping[str, np.ndarray] | None, served: Mapping[str, Sequence[str]] | None):
    """(name, mask) of every served level, over the calls as given."""
    out = []
    for group, values in (labels or {}).items():
        values = np.asarray(values).astype(str)
        for level in (served or {}).get(group, []):
            out.append((f"{group}={level}", values == str(level)))
    return out


def joint_p_values(
    order: np.ndarray,
    unsafe: np.ndarray,
    level_masks: Sequence[tuple[str, np.ndarray]],
    positions: np.ndarray,
    limit: float,
    delta: float,
    confirm_power: float | None,
    level_confirm_power: float | None,
    test_scale: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The intersection-union p-value of each candidate (the top ``positions + 1`` calls of
    ``order``): the largest of the overall and every level's exact binomial p-value. Also which
    one was the largest (-1: overall) and the overall rate tested against."""
    n = positions + 1.0
    k = np.cumsum(unsafe[order])[positions]
    rate = tested_rate(n, limit, delta, confirm_power, test_scale)
    worst = binomial_p_value(k, n, rate)
    which = np.full(len(positions), -1)
    for i, (_, mask) in enumerate(level_masks):
        in_level = mask[order]
        n_l = np.cumsum(in_level)[positions].astype(float)
        k_l = np.cumsum(in_level & unsafe[order])[positions]
        r_l = tested_rate(np.maximum(n_l, 1), limit, delta, level_confirm_power, test_scale)
        p_l = binomial_p_value(k_l, n_l, r_l)
        which = np.where(p_l > worst, i, which)
        worst = np.maximum(worst, p_l)
    return worst, which, rate


def joint_threshold(
    p: np.ndarray,
    unsafe: np.ndarray,
    eligible: np.ndarray,
    limit: float,
    delta: float,
    starts: Sequence[tuple[int, float]],
    labels: Mapping[str, np.ndarray] | None = None,
    served: Mapping[str, Sequence[str]] | None = None,
    confirm_power: float | None = None,
    level_confirm_power: float | None = None,
    test_scale: float = 1.0,
    grid: int | None = 100,
) -> JointTest:
    """The threshold of the module docstring for calibration scores ``p``, outcomes ``unsafe`` and
    served calls ``eligible`` (hard rules and withheld levels already removed).

    ``starts``: (fewest recommended calls, share of ``delta``) per walk, from planning data only;
    ``labels``/``served``: grouping -> each call's level / the served levels tested together.
    """
    check_settings(limit, delta, confirm_power)
    weights = [float(w) for _, w in starts]
    if any(w <= 0 for w in weights) or sum(weights) > 1 + 1e-9:
        raise ValueError(f"the shares of delta must be positive and sum to at most 1, got {weights}")
    p = np.asarray(p, dtype=float)
    unsafe = np.asarray(unsafe, dtype=bool)
    eligible = np.asarray(eligible, dtype=bool)
    order, ranked = ranked_eligible(p, eligible)
    common = {
        **sample_size_facts(limit, delta, len(order)),
        "starts": tuple((int(s), float(w)) for s, w in starts),
    }
    nothing = JointTest(
        np.inf, 0, 0, 0, p_value=float("nan"), null_rate=float("nan"), **{**common, "starts": ()}
    )
    if not len(order) or not starts:
        return nothing
    # Candidates: the last call of a tie (tied calls are recommended together), one per step of
    # positions (never outcomes); the first position a test could reject at all.
    end_of_tie = np.r_[ranked[1:] != ranked[:-1], True]
    positions = np.flatnonzero(end_of_tie)
    if grid:
        step = max(1, len(order) // grid)
        bucket = positions // step
        positions = positions[np.r_[bucket[1:] != bucket[:-1], True]]
    positions = positions[positions + 1 >= common["needed_calls"]]
    if not len(positions):
        return nothing
    level_masks = [(name, mask) for name, mask in _masks(labels, served)]
    p_values, which, rate = joint_p_values(
        order, unsafe, level_masks, positions, limit, delta, confirm_power, level_confirm_power, test_scale
    )
    best, tested, rejected = -1, 0, 0
    for start, weight in starts:
        for i in np.flatnonzero(positions + 1 >= start):  # a fixed sequence at delta * weight
            tested += 1
            if p_values[i] > delta * weight:
                break  # its first acceptance ends this walk only
            rejected += 1
            best = max(best, int(i))
    reachable = np.flatnonzero(positions + 1 >= min(s for s, _ in starts))
    first = int(positions[reachable[0]] + 1) if len(reachable) else 0
    base = {**common, "tested": int(tested), "rejected": int(rejected), "start_calls": first}
    if best < 0:
        return JointTest(np.inf, p_value=float("nan"), null_rate=float("nan"), **base)
    names = ["overall", *[name for name, _ in level_masks]]
    return JointTest(
        float(ranked[positions[best]]),
        p_value=float(p_values[best]),
        null_rate=float(rate[best]),
        weakest=names[which[best] + 1],
        **base,
    )


# ---------------------------------------------------------------------------------------------
# Planning: which levels to serve and where the walks start, from planning data and counts only.

MAX_SUBSET_LEVELS = 12  # levels planned by enumerating subsets (2 ** 12 = 4,096 predictions)


@dataclass(frozen=True)
class JointPlan:
    """The served levels (grouping -> levels), the withheld ones, and the walks' starts."""

    served: dict[str, list[str]]
    withheld: dict[str, list[str]]
    starts: list[tuple[int, float]]
    predicted_calls: float  # expected recommended calibration calls (calls x predicted power)


def _level_power(
    m: np.ndarray,
    k: np.ndarray,
    n: np.ndarray,
    limit: float,
    delta: float,
    power_at: float | None,
    test_scale: float,
    quantile: float,
) -> np.ndarray:
    """Predicted probability that a test on ``n`` calibration calls rejects, their rate estimated
    from ``k`` unsafe of ``m`` planning calls (its ``quantile`` Clopper-Pearson bound)."""
    est = betaincinv(k + 1, np.maximum(m - k, 1e-12), quantile)
    n = np.maximum(np.round(n), 1)
    kmax = largest_rejected_count(n, tested_rate(n, limit, delta, power_at, test_scale), delta)
    return np.where((kmax >= 0) & (m > 0), binom.cdf(np.maximum(kmax, 0), n, est), 0.0)


def plan_served_levels(
    plan: Plan,
    plan_labels: Mapping[str, np.ndarray] | None,
    cal_labels: Mapping[str, np.ndarray] | None,
    n_eligible: int,
    limit: float,
    delta: float,
    confirm_power: float | None,
    level_confirm_power: float | None,
    test_scale: float,
    start_shares: Sequence[float] = (1.0,),
    start_fractions: Sequence[float] = (1.0,),
    quantile: float = PLAN_QUANTILE,
) -> JointPlan:
    """Which levels to serve and where the walks start, from planning data and counts only.

    Every subset of levels to withhold (a grouping keeps at least one) is scored by the expected
    recommended calibration calls at its best candidate: candidate calls times the predicted
    probability that the joint test rejects there (the product of the overall and each served
    level's predicted power, rates estimated on the same top fraction of the planning calls ranked
    by their own probabilities). The best subset is kept (ties: serve more). The walks start at
    ``start_fractions`` of its best candidate's calls with shares ``start_shares`` of delta. Levels
    with fewer eligible calibration calls than any test could use are withheld whatever the plan.
    ``cal_labels``: the levels of the ``n_eligible`` eligible calibration calls (covariates, not
    outcomes), which size the candidates on the calibration window.
    """
    eligible = np.flatnonzero(np.asarray(plan.eligible, dtype=bool))
    ranked = eligible[np.argsort(-np.asarray(plan.p, dtype=float)[eligible], kind="stable")]
    unsafe = np.asarray(plan.unsafe, dtype=bool)[ranked]
    groups = list(plan_labels or {})
    labels = {g: np.asarray(plan_labels[g]).astype(str)[ranked] for g in groups}
    cal = {g: np.asarray((cal_labels or {})[g]).astype(str) for g in groups if g in (cal_labels or {})}
    all_levels = [(g, lv) for g in groups for lv in sorted(set(np.unique(labels[g])) | set(cal.get(g, [])))]
    none = JointPlan({g: [] for g in groups}, {}, [], 0.0)
    if not len(ranked) or n_eligible <= 0:
        return none
    # Cells (one level of every grouping): cumulative planning counts at a grid of positions.
    plan_cells = _cells(labels, groups, len(ranked))
    cal_cells = _cells(cal, groups, n_eligible) if len(cal) == len(groups) else None
    keys = sorted(set(plan_cells) | set(cal_cells or {}))
    grid = np.unique(np.linspace(1, len(ranked), min(len(ranked), PLAN_GRID)).round().astype(int))
    counts = np.zeros((len(keys), len(grid)))
    bad = np.zeros((len(keys), len(grid)))
    for i, key in enumerate(keys):
        mask = plan_cells.get(key, np.zeros(len(ranked), bool))
        counts[i] = np.cumsum(mask)[grid - 1]
        bad[i] = np.cumsum(mask & unsafe)[grid - 1]
    cal_count = np.array([(cal_cells or {}).get(key, np.zeros(0)).sum() for key in keys], dtype=float)
    if cal_cells is None:  # no calibration labels: scale the planning cells to the eligible calls
        cal_count = counts[:, -1] / max(counts[:, -1].sum(), 1) * n_eligible
    in_level = {(g, lv): np.array([key[groups.index(g)] == lv for key in keys]) for g, lv in all_levels}

    def evaluate(withheld: set) -> tuple[float, int]:
        kept = np.ones(len(keys), dtype=bool)
        for level in withheld:
            kept &= ~in_level[level]
        m, k = kept @ counts, kept @ bad
        n_served = cal_count[kept].sum()
        if n_served <= 0 or m[-1] <= 0:
            return 0.0, 0
        n = n_served * m / m[-1]  # a candidate takes the same fraction of served calibration calls
        power = _level_power(m, k, n, limit, delta, confirm_power, test_scale, quantile)
        for level, cells in in_level.items():
            if level not in withheld:
                m_l, k_l = (kept & cells) @ counts, (kept & cells) @ bad
                n_l = n * m_l / np.maximum(m, 1)
                power = power * _level_power(
                    m_l, k_l, n_l, limit, delta, level_confirm_power, test_scale, quantile
                )
        value = n * power
        best = int(np.argmax(value))
        return float(value[best]), int(round(n[best]))

    need = required_calls(limit, delta)
    forced = {(g, lv) for g, lv in all_levels if g in cal and int((cal[g] == lv).sum()) < need}
    free = [level for level in all_levels if level not in forced]
    if len(free) > MAX_SUBSET_LEVELS:
        raise ValueError(
            f"{len(free)} subgroup levels: too many to plan which to serve (at most {MAX_SUBSET_LEVELS})"
        )
    value, best_n, withheld = 0.0, 0, None
    for bits in range(2 ** len(free)):
        held = forced | {level for i, level in enumerate(free) if bits >> i & 1}
        if any(all((g, lv) in held for gg, lv in all_levels if gg == g) for g in groups):
            continue  # a grouping with every level withheld serves nothing
        new_value, new_n = evaluate(held)
        if (
            withheld is None
            or new_value > value * (1 + 1e-9)
            or (new_value >= value and len(held) < len(withheld))
        ):
            value, best_n, withheld = new_value, new_n, held
    if withheld is None:
        return none
    served = {g: [lv for gg, lv in all_levels if gg == g and (gg, lv) not in withheld] for g in groups}
    held = {g: [lv for gg, lv in all_levels if gg == g and (gg, lv) in withheld] for g in groups}
    starts = [
        (max(int(round(best_n * fraction)), 1), float(share))
        for fraction, share in zip(start_fractions, start_shares, strict=True)
    ]
    return JointPlan(served, {g: v for g, v in held.items() if v}, starts if value > 0 else [], value)


PLAN_GRID = 500  # planning positions: the start needs no finer step


def _cells(labels: Mapping[str, np.ndarray], groups: Sequence[str], n: int) -> dict[tuple, np.ndarray]:
    """Cell (a tuple of one level per grouping) -> mask of the calls in it."""
    if not groups:
        return {(): np.ones(n, dtype=bool)}
    joined = np.array(["\x1f".join(parts) for parts in zip(*(labels[g] for g in groups), strict=True)])
    return {tuple(key.split("\x1f")): joined == key for key in np.unique(joined)}
