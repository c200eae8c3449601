"""Call-level synthetic data from the same world as the daily counts, with the truth beside each call.

Calls are drawn in proportion to the world's simulated daily counts per area, date and ARP
category, so the call records add up to the same demand. Each call's age comes from its area's
population in that year weighted by the age-specific call rates that made the counts; symptom
group, history and call-taker flags follow from category, age and sex. Every call carries its TRUE
probability of being safely closed remotely (:func:`disposition.synthetic_world.true_logit`), the
realised answer to that question (``safe_remote_true``: the counterfactual truth, which no service
observes; for the oracle and for measuring true under-triage only) and what today's practice did.

What a service observes is the follow-up (:class:`FollowUp`): a bad outcome within 72 hours
(re-contact that led to an ambulance, an emergency-department attendance, an admission), found by
record linkage that misses some (``sensitivity``) and that also records some unrelated events for
calls that were safe (``false_positive``). ``followup_outcome`` holds it for every call (``none``,
``recontact_72h``, ``ed_72h``, ``admission``) and ``safe_remote`` (1 = no bad outcome recorded) is
the label models train and are evaluated on; the adverse outcome of a remote closure
(``adverse_outcome``) is the observed one too.

Today's practice closes ``remote_share`` of calls by telephone on a clinician's noisy judgement
that under-weights previous contacts; the world's overall log-odds level is solved so that
``adverse_rate`` of those closures are OBSERVED to end badly (the published rates are observed
ones). Defaults: NHS England, November 2025, about one 999
call in five managed without an ambulance; Marincowitz et al. 2024, 1.3 % adverse outcomes after
self-care or non-urgent dispositions, Dale et al. 2004 about 1.7 % under-triage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit

from disposition.synthetic_world import (
    CATEGORIES,
    HOUR_WEIGHTS,
    SYMPTOM_GROUPS,
    history_logit,
    true_logit,
)
from mlops.errors import ConfigError, DataValidationError

# Bad outcomes a follow-up can find within 72 hours, and their shares among those found (stated
# assumption, in the spirit of the outcome definitions of Marincowitz et al. 2024: re-contact, ED
# attendance, admission).
FOLLOWUP_TYPES = ("recontact_72h", "ed_72h", "admission")
FOLLOWUP_TYPE_SHARES = (0.45, 0.35, 0.20)
NO_BAD_OUTCOME = "none"
OUTCOME_COLUMNS = (
    "closed_remotely",
    "disposition",
    "adverse_outcome",
    "adverse_type",
    "followup_outcome",
    "safe_remote",
    "safe_remote_true",
    "p_safe_remote_true",
)


@dataclass(frozen=True)
class FollowUp:
    """How the outcome of a call is observed: record linkage within 72 hours, with misclassification.

    Attributes
    ----------
    sensitivity : float
        P(a bad outcome is recorded | closing the call remotely was truly not safe). Stated assumption:
        0.9, linkage missing about one in ten (attendances at another trust's ED, deaths at home
        found late); the model card warns that missed linkage makes under-triage look lower.
    false_positive : float
        P(a bad outcome is recorded | the call was truly safe to close): unrelated re-contacts and
        attendances within 72 hours. Stated assumption: 0.002. It adds to the observed under-triage
        almost one for one, so a limit must be set on the same outcome definition it is measured with.
    """

    sensitivity: float = 0.9
    false_positive: float = 0.002

    def validate(self) -> None:
        if not 0 < self.sensitivity <= 1:
            raise ConfigError(f"followup.sensitivity must be in (0, 1], got {self.sensitivity}")
        if not 0 <= self.false_positive < 0.5:
            raise ConfigError(f"followup.false_positive must be in [0, 0.5), got {self.false_positive}")

    def observed_unsafe_probability(self, p_safe: np.ndarray) -> np.ndarray:
        """P(a bad follow-up outcome is recorded) for calls whose true P(safe) is ``p_safe``."""
        return self.sensitivity * (1 - p_safe) + self.false_positive * p_safe


@dataclass(frozen=True)
class Practice:
    """How today's clinical hub decides, which sets the world's calibration.

    Attributes
    ----------
    remote_share : float
        Share of all calls closed by telephone (NHS England Nov 2025: about one in five).
    adverse_rate : float
        Share of those closures followed by an adverse outcome (Marincowitz 2024: 1.3 %).
    judgement_noise_sd : float
        Noise (log-odds) in a clinician's judgement of the true probability.
    history_weight : float
        Weight clinicians give previous contacts relative to their true effect (< 1: repeat
        callers are closed too readily, as Marincowitz 2024 found).
    """

    remote_share: float = 0.20
    adverse_rate: float = 0.015
    judgement_noise_sd: float = 1.0
    history_weight: float = 0.5

    def validate(self) -> None:
        if not 0 < self.remote_share < 1:
            raise ConfigError(f"practice.remote_share must be in (0, 1), got {self.remote_share}")
        if not 0 < self.adverse_rate < 0.5:
            raise ConfigError(f"practice.adverse_rate must be in (0, 0.5), got {self.adverse_rate}")
        if self.judgement_noise_sd < 0:
            raise ConfigError("practice.judgement_noise_sd must be >= 0")


@dataclass(frozen=True)
class CallSample:
    """Synthetic calls and the log-odds level that calibrated them."""

    calls: pd.DataFrame
    intercept: float


def sample_calls(
    counts: pd.DataFrame,
    population: pd.DataFrame,
    age_rate_ratio: Mapping[str, float],
    n_calls: int,
    seed: int = 0,
    practice: Practice | None = None,
    followup: FollowUp | None = None,
    period: tuple[str | None, str | None] = (None, None),
) -> CallSample:
    """Draw ``n_calls`` call records from the synthetic world.

    Parameters
    ----------
    counts : DataFrame
        Daily counts with columns ``area, category, ds, y`` (``data/synthetic/daily_counts.csv``).
    population : DataFrame
        Residents with columns ``area, year, age_band, population`` (``population.csv``).
    age_rate_ratio : mapping
        Calls per resident by age band relative to ages 45-49 (the world's ``age_rate_ratio``).
    n_calls : int
        Number of calls; drawn with probability proportional to the daily counts.
    seed : int
        Seed of the random generator: the same inputs and seed give the same calls.
    practice : Practice, optional
        Today's remote-closure practice (defaults documented on :class:`Practice`).
    followup : FollowUp, optional
        How outcomes are observed (defaults documented on :class:`FollowUp`).
    period : (start, end), optional
        ISO dates: calls only from days ``start <= day < end`` of the counts (e.g. fresh evaluation
        calls from a later period than the training calls). None leaves that side open.

    Returns
    -------
    CallSample
        ``calls`` sorted by ``call_time`` with one row per call (see ``OUTCOME_COLUMNS`` for the
        columns a model must not see) and the solved ``intercept``.
    """
    practice = practice or Practice()
    practice.validate()
    followup = followup or FollowUp()
    followup.validate()
    if int(n_calls) < 100:
        raise ConfigError(f"n_calls must be at least 100, got {n_calls}")
    rng = np.random.default_rng(seed)
    calls = _calls_from_counts(_in_period(counts, period), int(n_calls), rng)
    calls["age"] = _ages(calls, population, age_rate_ratio, rng)
    _add_person(calls, rng)
    calls["symptom_group"] = _symptom_groups(calls, rng)
    _add_history_and_flags(calls, rng)

    base = true_logit(calls, intercept=0.0)
    judgement = base - (1 - practice.history_weight) * history_logit(
        calls["contacts_30d"].to_numpy(), calls["contacts_7d"].to_numpy()
    )
    judgement = judgement + rng.normal(0, practice.judgement_noise_sd, len(calls))
    judgement[calls["category"].to_numpy() == "C1"] = -np.inf  # Category 1 is never closed remotely
    n_closed = int(round(practice.remote_share * len(calls)))
    closed = np.zeros(len(calls), dtype=bool)
    closed[np.argsort(-judgement, kind="stable")[:n_closed]] = True
    intercept = _solve_intercept(base[closed], practice.adverse_rate, followup)

    p_true = expit(base + intercept)
    safe = rng.random(len(calls)) < p_true
    # What follow-up records: a bad outcome for most truly unsafe calls, and for a few safe ones.
    recorded = rng.random(len(calls)) < np.where(safe, followup.false_positive, followup.sensitivity)
    _add_outcomes(calls, closed, safe, recorded, p_true, rng)
    calls = calls.sort_values("call_time", kind="stable", ignore_index=True)
    calls.insert(0, "call_id", np.arange(1, len(calls) + 1))
    return CallSample(calls.drop(columns="hour"), float(intercept))


def _calls_from_counts(counts: pd.DataFrame, n_calls: int, rng: np.random.Generator) -> pd.DataFrame:
    missing = {"area", "category", "ds", "y"} - set(counts.columns)
    if missing:
        raise DataValidationError(f"daily counts lack column(s) {sorted(missing)}")
    weights = counts["y"].to_numpy(dtype=float)
    if weights.sum() <= 0:
        raise DataValidationError("daily counts sum to zero: nothing to sample calls from")
    per_row = rng.multinomial(n_calls, weights / weights.sum())
    rows = np.repeat(np.arange(len(counts)), per_row)
    dates = pd.to_datetime(counts["ds"]).to_numpy()[rows]
    hour = rng.choice(24, size=n_calls, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    seconds = hour * 3600 + rng.integers(0, 3600, n_calls)
    return pd.DataFrame(
        {
            "call_time": (dates + seconds.astype("timedelta64[s]")).astype("datetime64[s]"),
            "area": counts["area"].astype(str).to_numpy()[rows],
            "category": counts["category"].astype(str).to_numpy()[rows],
            "hour": hour,
        }
    )


def _ages(
    calls: pd.DataFrame, population: pd.DataFrame, ratio: Mapping[str, float], rng: np.random.Generator
) -> np.ndarray:
    """Age in years: band from the area's residents x age-specific call rate, then within the band."""
    bands = list(ratio)
    lower = np.array([int(b.rstrip("+").split("-")[0]) for b in bands])
    pop = population.pivot_table(
        index=["area", "year"], columns="age_band", values="population", aggfunc="sum"
    )
    missing = set(bands) - set(pop.columns)
    if missing:
        raise DataValidationError(f"population table lacks age band(s) {sorted(missing)}")
    weighted = pop[bands].to_numpy() * np.array([ratio[b] for b in bands], dtype=float)
    cdf = np.cumsum(weighted, axis=1) / weighted.sum(axis=1, keepdims=True)
    keys = pd.MultiIndex.from_arrays([calls["area"], calls["call_time"].dt.year])
    group = pop.index.get_indexer(keys)
    if (group < 0).any():
        first = keys[np.flatnonzero(group < 0)[0]]
        raise DataValidationError(f"population table has no residents for area/year {first}")
    band = (rng.random(len(calls))[:, None] > cdf[group]).sum(axis=1)
    band = np.minimum(band, len(bands) - 1)
    open_ended = lower[band] == lower.max()  # 90+: a geometric tail, mean about 4 years over 90
    within = np.where(
        open_ended, np.minimum(rng.geometric(0.25, len(calls)) - 1, 14), rng.integers(0, 5, len(calls))
    )
    return (lower[band] + within).astype(np.int16)


def _add_person(calls: pd.DataFrame, rng: np.random.Generator) -> None:
    age = calls["age"].to_numpy()
    n = len(calls)
    # Women outnumber men among the oldest residents (and callers).
    female = rng.random(n) < np.select([age >= 85, age >= 65], [0.66, 0.56], 0.5)
    calls["sex"] = np.where(female, "F", "M")
    care_home_rate = np.select([age >= 90, age >= 85, age >= 75, age >= 65], [0.25, 0.15, 0.06, 0.015], 0.002)
    calls["care_home"] = (rng.random(n) < care_home_rate).astype(np.int8)
    ltc_mean = np.select([age >= 80, age >= 65, age >= 50, age >= 30], [2.3, 1.6, 0.9, 0.4], 0.15)
    ltc_mean = ltc_mean + 0.8 * calls["care_home"].to_numpy()
    calls["long_term_conditions"] = np.minimum(rng.poisson(ltc_mean), 6).astype(np.int8)


def _symptom_groups(calls: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Group given category (Bayes' rule on each group's category mix), age decade and sex."""
    names = list(SYMPTOM_GROUPS)
    groups = list(SYMPTOM_GROUPS.values())
    weight = np.array([g.weight for g in groups])
    mix = np.array([g.category_mix for g in groups])
    tilt = np.array([g.age_tilt for g in groups])
    pregnancy = names.index("pregnancy_childbirth")
    decade = np.minimum(calls["age"].to_numpy() // 10, 9)
    category = pd.Categorical(calls["category"], categories=CATEGORIES).codes
    if (category < 0).any():
        raise DataValidationError(f"categories must be {CATEGORIES}")
    female = calls["sex"].to_numpy() == "F"
    combo = (category * 10 + decade) * 2 + female
    out = np.empty(len(calls), dtype=np.int64)
    for key in np.unique(combo):
        rows = np.flatnonzero(combo == key)
        c, d, f = key // 20, (key // 2) % 10, key % 2
        w = weight * mix[:, c] * np.exp(tilt * (d * 10 + 5 - 50) / 10)
        w[pregnancy] *= {1: 0.05, 2: 1.0, 3: 1.0, 4: 0.3}.get(d, 0.0) if f else 0.0
        out[rows] = rng.choice(len(names), size=len(rows), p=w / w.sum())
    return np.asarray(names, dtype=object)[out]


def _add_history_and_flags(calls: pd.DataFrame, rng: np.random.Generator) -> None:
    n = len(calls)
    age = calls["age"].to_numpy()
    group = calls["symptom_group"].astype(str).to_numpy()
    care_home = calls["care_home"].to_numpy()
    ltc = calls["long_term_conditions"].to_numpy()
    # Frequent callers: a gamma-distributed personal propensity (most people call once, a few often).
    propensity = rng.gamma(0.35, 1 / 0.35, n)
    rate = 0.18 * np.exp(0.25 * ltc + 1.0 * (group == "mental_health") + 0.4 * care_home) * propensity
    contacts_30d = rng.poisson(rate)
    calls["contacts_30d"] = np.minimum(contacts_30d, 30).astype(np.int8)
    calls["contacts_7d"] = rng.binomial(calls["contacts_30d"].to_numpy(), 0.4).astype(np.int8)

    c1 = calls["category"].to_numpy() == "C1"
    first_party = np.select([age < 16, age >= 85, age >= 75], [0.02, 0.15, 0.25], 0.45) * np.where(
        c1, 0.05, 1
    )
    calls["first_party_caller"] = (rng.random(n) < first_party).astype(np.int8)
    alone = np.where(care_home == 1, 0.0, np.select([age < 16, age >= 65], [0.0, 0.3], 0.12))
    calls["patient_alone"] = (rng.random(n) < alone).astype(np.int8)
    pain = np.array([SYMPTOM_GROUPS[g].severe_pain for g in SYMPTOM_GROUPS])
    pain = pain[pd.Categorical(group, categories=list(SYMPTOM_GROUPS)).codes]
    calls["severe_pain"] = (rng.random(n) < pain).astype(np.int8)
    walk = 0.85 * np.where(group == "falls", 0.5, 1) * np.where(age >= 85, 0.55, 1) * np.where(c1, 0.1, 1)
    calls["able_to_walk"] = ((rng.random(n) < walk) & (age >= 2)).astype(np.int8)


def _in_period(counts: pd.DataFrame, period: tuple[str | None, str | None]) -> pd.DataFrame:
    start, end = period
    if start is None and end is None:
        return counts
    days = pd.to_datetime(counts["ds"])
    keep = np.ones(len(counts), dtype=bool)
    try:
        if start is not None:
            keep &= (days >= pd.Timestamp(start)).to_numpy()
        if end is not None:
            keep &= (days < pd.Timestamp(end)).to_numpy()
    except ValueError as error:
        raise ConfigError(f"period {period}: dates must be ISO, YYYY-MM-DD ({error})") from error
    if not keep.any():
        raise ConfigError(
            f"period {period} holds no day of the daily counts "
            f"({days.min():%Y-%m-%d} to {days.max():%Y-%m-%d})"
        )
    return counts[keep]


def _solve_intercept(base_closed: np.ndarray, adverse_rate: float, followup: FollowUp) -> float:
    """Log-odds level at which the calls practice closes have the target OBSERVED adverse-outcome rate."""

    def gap(intercept: float) -> float:
        p_safe = expit(base_closed + intercept)
        return float(np.mean(followup.observed_unsafe_probability(p_safe)) - adverse_rate)

    if gap(40.0) > 0:
        raise ConfigError(
            f"practice.adverse_rate={adverse_rate} is below what follow-up records for safe calls alone "
            f"(followup.false_positive={followup.false_positive}); raise it or lower false_positive"
        )

    return brentq(gap, -20.0, 40.0, xtol=1e-6)


def _add_outcomes(
    calls: pd.DataFrame,
    closed: np.ndarray,
    safe: np.ndarray,
    recorded: np.ndarray,
    p_true: np.ndarray,
    rng: np.random.Generator,
) -> None:
    n = len(calls)
    adverse = closed & recorded  # what the service sees after a remote closure
    calls["closed_remotely"] = closed.astype(np.int8)
    # A crew that attends an unsafe-to-close call mostly conveys; a safe one is mostly treated on scene.
    convey = rng.random(n) < np.where(safe, 0.4, 0.9)
    calls["disposition"] = np.where(
        closed, "hear_and_treat", np.where(convey, "see_and_convey", "see_and_treat")
    )
    # Adverse outcome is only defined after a remote closure; attended calls leave it missing.
    calls["adverse_outcome"] = pd.array(np.where(closed, adverse.astype(int), 0), dtype="Int8")
    calls.loc[~closed, "adverse_outcome"] = pd.NA
    kind = np.asarray(FOLLOWUP_TYPES, dtype=object)[
        rng.choice(len(FOLLOWUP_TYPES), size=n, p=FOLLOWUP_TYPE_SHARES)
    ]
    calls["adverse_type"] = pd.Series(np.where(adverse, kind, None), dtype="object")
    calls["followup_outcome"] = np.where(recorded, kind, NO_BAD_OUTCOME).astype(object)
    calls["safe_remote"] = (~recorded).astype(np.int8)  # observed: no bad outcome recorded within 72 h
    calls["safe_remote_true"] = safe.astype(np.int8)  # the counterfactual truth: for the oracle only
    calls["p_safe_remote_true"] = p_true


def describe_calls(calls: pd.DataFrame) -> dict[str, float]:
    """Headline calibration figures of a call sample, to compare with DOMAIN.md."""
    closed = calls["closed_remotely"] == 1
    age = calls["age"]
    return {
        "calls": float(len(calls)),
        "remote_share_today": float(closed.mean()),
        "adverse_rate_after_remote_closure": float(calls.loc[closed, "adverse_outcome"].astype(float).mean()),
        "safe_remote_share": float(calls["safe_remote"].mean()),
        "true_safe_share": float(calls["safe_remote_true"].mean()),
        "label_disagreement": float((calls["safe_remote"] != calls["safe_remote_true"]).mean()),
        "safe_remote_share_85_plus": float(calls.loc[age >= 85, "safe_remote"].mean()),
        "safe_remote_share_under_65": float(calls.loc[age < 65, "safe_remote"].mean()),
        "safe_remote_share_3plus_contacts": float(
            calls.loc[calls["contacts_30d"] >= 3, "safe_remote"].mean()
        ),
        "share_85_plus": float((age >= 85).mean()),
        "share_c1": float((calls["category"] == "C1").mean()),
        "symptom_groups": float(calls["symptom_group"].nunique()),
    }
