"""Safety monitoring after deployment: an anytime-valid sequential test of under-triage.

Once a threshold is deployed, the calls it closed remotely come back with a follow-up outcome
(1 = bad outcome: re-contact, emergency attendance or admission that the closure missed, i.e.
under-triage). The share of bad outcomes must stay at or below the agreed ``limit``. Checking a
fixed-sample test after every new call would raise false alarms far more often than its level
says; the tests here may be looked at after every call, for ever, and still keep their level.

The test (a mixture likelihood-ratio martingale, as in Robbins' mixture SPRT and the betting
confidence sequences of Waudby-Smith & Ramdas, 2020+): for the null hypothesis ``H0: rate <= limit``
and a fixed grid of alternatives ``p_k = r_k * limit`` (``r_k > 1``, equal weights ``w_k``),

    M_n = sum_k w_k * prod_{i<=n} (p_k / limit) ** x_i * ((1 - p_k) / (1 - limit)) ** (1 - x_i)

An alarm fires at the first call ``n`` where ``M_n >= 1 / alpha``.

**Guarantee** (Ville's inequality): if the true rate never exceeds ``limit``, then
``P(there is ever an n with M_n >= 1/alpha) <= alpha``, however long the stream runs and however
often it is looked at. With several streams (overall and each subgroup) each stream is tested at
``alpha / m`` (Bonferroni over the ``m`` streams), so the probability of any false alarm in any
stream stays ``<= alpha``.

The bounds reported beside the test invert it: the lower bound is the smallest rate not rejected by
the test above, the upper bound the largest rate not rejected by the mirror test of
``H0: rate >= p0`` (alternatives ``r_k < 1``); each is a one-sided ``1 - alpha/m`` confidence
sequence (valid at every call at once), evaluated at the latest call.

A cumulative test weighs every call since monitoring started: after a long stretch well below
the limit, a later rise is detected only once the evidence of the good period has been
outweighed (see experiments/results/monitoring.md for the delays). Restart monitoring (a new
stream: ``monitor.since``) after a review or a new threshold.
"""

# Proof sketch of the guarantee (why ``M_n`` is a test supermartingale under H0).
# Write one factor as f_k(x) = (p_k/L)^x ((1-p_k)/(1-L))^(1-x) for L = limit, p_k >= L. If the
# outcome of a call is Bernoulli(q) given the past, with q <= L, then
#   E[f_k(x) | past] = q p_k / L + (1 - q)(1 - p_k)/(1 - L),
# which is linear in q, equals 1 at q = L, and has slope p_k/L - (1-p_k)/(1-L) >= 0 because
# p_k >= L; so it is <= 1 for every q <= L. Each product prod_i f_k(x_i) is therefore a nonnegative
# supermartingale starting at 1, and so is their fixed convex combination M_n (weights not
# depending on the data). Ville's inequality for a nonnegative supermartingale with M_0 = 1 gives
# P(sup_n M_n >= c) <= 1/c; with c = 1/alpha the false-alarm probability is <= alpha. The mirror
# test (p_k <= L, H0: q >= L) is the same argument with the slope <= 0. Bonferroni: P(any of m
# streams alarms falsely) <= sum of m probabilities each <= alpha/m. The rate may change from call
# to call (drift) as long as it stays <= L given the past: the argument is conditional per call.

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

# Alternatives as multiples of the limit: 1.1x ... 10x. Near 1 they catch small excesses slowly;
# far ones catch a large excess fast. Equal weights cost log(16) ~ 2.8 nats of evidence.
ABOVE_RATIOS = np.geomspace(1.1, 10.0, 16)
BELOW_RATIOS = np.geomspace(0.02, 1 / 1.1, 16)
_CLIP = 60.0  # log-evidence beyond e^60 changes no decision; clipping keeps exp() finite
_BOUND_GRID = np.concatenate([[0.0], np.geomspace(1e-5, 0.999, 1200)])


def _factors(limit: np.ndarray | float, ratios: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-call log factors for a bad (``a``) and a good (``b``) outcome, and log weights.

    Shapes broadcast as (..., K) for ``limit`` of shape (...). Alternatives at or above 1 (or at 0)
    are dropped by giving them weight 0; the remaining weights are equal.
    """
    limit = np.asarray(limit, dtype=float)[..., None]
    p = limit * ratios
    valid = (p > 0) & (p < 1)
    p_safe = np.where(valid, p, 0.5)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.log(p_safe / limit)
        b = np.log((1 - p_safe) / (1 - limit))
    count = np.maximum(valid.sum(axis=-1, keepdims=True), 1)
    log_w = np.where(valid, -np.log(count), -np.inf)
    return np.where(valid, a, 0.0), np.where(valid, b, 0.0), log_w


def log_evidence(bad: np.ndarray, calls: np.ndarray, limit, side: str = "above") -> np.ndarray:
    """``log M_n`` of the mixture test from cumulative counts.

    Parameters
    ----------
    bad, calls : array
        Cumulative bad outcomes and calls seen (same shape, or broadcastable).
    limit : float or array
        The rate under test (broadcast against ``bad``).
    side : {"above", "below"}
        ``above`` tests H0: rate <= limit (evidence that the rate is above it); ``below`` tests
        H0: rate >= limit.

    Returns
    -------
    array
        Natural log of the evidence against H0; an alarm is ``>= log(1/alpha)``.
    """
    ratios = ABOVE_RATIOS if side == "above" else BELOW_RATIOS
    a, b, log_w = _factors(limit, ratios)
    bad = np.asarray(bad, dtype=float)[..., None]
    calls = np.asarray(calls, dtype=float)[..., None]
    terms = np.clip(bad * a + (calls - bad) * b, -1e6, _CLIP) + log_w
    top = terms.max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):  # no valid alternative (limit near 0 or 1): no evidence
        return (top + np.log(np.exp(terms - top).sum(axis=-1, keepdims=True)))[..., 0]


def first_alarms(outcomes: np.ndarray, limit: float, alpha: float, chunk: int = 10) -> np.ndarray:
    """The call (1-based) at which each stream first alarms, 0 where it never does.

    Vectorised over streams for simulations: ``outcomes`` is (streams, calls) of 0/1.
    """
    outcomes = np.atleast_2d(outcomes)
    threshold = np.log(1 / alpha)
    a, b, log_w = _factors(limit, ABOVE_RATIOS)
    calls = np.arange(1, outcomes.shape[1] + 1, dtype=np.float64)
    result = np.zeros(outcomes.shape[0], dtype=np.int64)
    for start in range(0, outcomes.shape[0], chunk):
        bad = np.cumsum(outcomes[start : start + chunk], axis=1, dtype=np.float64)
        total = np.zeros_like(bad)
        for k in range(len(ABOVE_RATIOS)):
            if np.isfinite(log_w[k]):
                total += np.exp(np.minimum(bad * a[k] + (calls - bad) * b[k], _CLIP) + log_w[k])
        fired = total >= np.exp(threshold)
        result[start : start + chunk] = np.where(fired.any(axis=1), fired.argmax(axis=1) + 1, 0)
    return result


@dataclass(frozen=True)
class StreamResult:
    """The state of one monitored stream after its latest call."""

    stream: str
    calls: int
    bad: int
    rate: float
    lower_bound: float
    upper_bound: float
    alpha: float
    alarm: bool
    alarm_call: int | None  # 1-based position in this stream of the call that fired the alarm
    evidence: float  # M_n against "rate <= limit" at the latest call (alarm at >= 1/alpha)


def sequential_test(
    outcomes: np.ndarray, limit: float, alpha: float, stream: str = "overall"
) -> StreamResult:
    """Run the anytime-valid test of ``rate <= limit`` over one stream of 0/1 outcomes in call order.

    Parameters
    ----------
    outcomes : array of 0/1
        Bad outcome (under-triage) per remotely closed call, oldest first.
    limit : float
        The agreed under-triage limit, in (0, 1).
    alpha : float
        False-alarm probability for this stream (already divided over streams by the caller).
    stream : str
        Name for the result.

    Returns
    -------
    StreamResult
    """
    if not 0 < limit < 1:
        raise ValueError(f"limit must be in (0, 1), got {limit}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    x = np.asarray(outcomes, dtype=np.int64)
    n = len(x)
    if n == 0:
        return StreamResult(stream, 0, 0, float("nan"), 0.0, 1.0, alpha, False, None, 1.0)
    fired = int(first_alarms(x[None, :], limit, alpha)[0])
    bad = int(x.sum())
    threshold = np.log(1 / alpha)
    grid = _BOUND_GRID
    # Lower bound: smallest rate the "above" test does not reject; upper: largest the "below" one keeps.
    above = log_evidence(np.full(grid.shape, bad), np.full(grid.shape, n), np.maximum(grid, 1e-12), "above")
    kept = grid[above < threshold]
    lower = float(kept.min()) if len(kept) else float(grid[-1])
    below = log_evidence(np.full(grid.shape, bad), np.full(grid.shape, n), np.maximum(grid, 1e-12), "below")
    kept = grid[below < threshold]
    upper = float(kept.max()) if len(kept) else 1.0
    evidence = float(np.exp(min(log_evidence(bad, n, limit, "above"), 700)))
    return StreamResult(stream, n, bad, bad / n, lower, upper, alpha, fired > 0, fired or None, evidence)


def monitor_under_triage(
    outcomes: pd.DataFrame,
    outcome_column: str,
    limit: float,
    alpha: float,
    subgroups: Sequence[str] = (),
) -> pd.DataFrame:
    """Test under-triage overall and in every subgroup, with alpha split over all streams.

    Parameters
    ----------
    outcomes : DataFrame
        One row per remotely closed call, in call order, with a 0/1 ``outcome_column``.
    outcome_column : str
        1 = bad outcome (under-triage).
    limit, alpha : float
        The limit and the family-wise false-alarm probability: each of the ``m`` streams (overall
        plus every level of every subgroup column) is tested at ``alpha / m`` (Bonferroni).
    subgroups : sequence of str
        Columns whose levels are each monitored as their own stream (missing values are a level,
        ``<missing>``).

    Returns
    -------
    DataFrame
        One row per stream: ``stream, subgroup, level, calls, bad, rate, lower_bound, upper_bound,
        alpha, alarm, alarm_call, alarm_row, evidence``; ``alarm_row`` is the label in ``outcomes``
        of the call that fired the alarm.
    """
    parts: list[tuple[str, str | None, str | None, pd.Index]] = [("overall", None, None, outcomes.index)]
    for column in subgroups:
        levels = outcomes[column].astype("string").fillna("<missing>")
        for level in sorted(levels.unique()):
            parts.append((f"{column}={level}", column, level, outcomes.index[(levels == level).to_numpy()]))
    per_stream = alpha / len(parts)
    rows = []
    for name, column, level, index in parts:
        result = sequential_test(outcomes.loc[index, outcome_column].to_numpy(), limit, per_stream, name)
        row = result.__dict__ | {"subgroup": column, "level": level}
        row["alarm_row"] = index[result.alarm_call - 1] if result.alarm_call else None
        rows.append(row)
    order = ["stream", "subgroup", "level", "calls", "bad", "rate", "lower_bound", "upper_bound", "alpha"]
    frame = pd.DataFrame(rows)
    return frame[order + ["alarm", "alarm_call", "alarm_row", "evidence"]]


def synthetic_closed_call_outcomes(
    n_calls: int = 20_000,
    rate: float = 0.007,
    *,
    seed: int = 0,
    drift_to: float | None = None,
    change_at: int | None = None,
    change_factor: float = 2.0,
    start: str = "2025-01-01",
    calls_per_day: float = 150.0,
    subgroup_risk: Mapping[str, Mapping[str, tuple[float, float]]] | None = None,
) -> pd.DataFrame:
    """A deterministic stream of remotely closed calls with their follow-up outcome.

    Parameters
    ----------
    n_calls : int
        Calls in the stream.
    rate : float
        True under-triage rate at the start (for a call of relative risk 1).
    seed : int
        Seed of the generator; the same arguments give the same frame.
    drift_to : float, optional
        The rate rises linearly from ``rate`` to this by the last call (like the synthetic world's
        ageing drift: a slowly older caller mix).
    change_at : int, optional
        From this call on (0-based) the rate is multiplied by ``change_factor`` (an injected
        doubling, e.g. a broken triage rule or a new call handler script).
    change_factor : float
        The multiplier applied from ``change_at``.
    start, calls_per_day
        Call times: Poisson arrivals from ``start`` at this average daily rate.
    subgroup_risk : mapping, optional
        ``{column: {level: (share of calls, relative risk)}}``; default an age band with the
        oldest callers at 1.5 times the risk and sex with equal risks. Risks are rescaled so the
        mean rate is ``rate``.

    Returns
    -------
    DataFrame
        ``call_id, closed_at, under_triage`` (0/1), the subgroup columns and ``true_rate``.
    """
    rng = np.random.default_rng(seed)
    if subgroup_risk is None:
        subgroup_risk = {
            "age_band": {"0-17": (0.12, 0.6), "18-64": (0.55, 0.9), "65-84": (0.25, 1.2), "85+": (0.08, 1.8)},
            "sex": {"female": (0.52, 1.0), "male": (0.48, 1.0)},
        }
    frame = pd.DataFrame({"call_id": [f"C{i:07d}" for i in range(1, n_calls + 1)]})
    gaps = rng.exponential(86_400.0 / calls_per_day, n_calls)
    frame["closed_at"] = pd.Timestamp(start) + pd.to_timedelta(np.cumsum(gaps).round(), unit="s")
    risk = np.ones(n_calls)
    for column, levels in subgroup_risk.items():
        names = list(levels)
        shares = np.array([levels[name][0] for name in names], dtype=float)
        rr = np.array([levels[name][1] for name in names], dtype=float)
        pick = rng.choice(len(names), size=n_calls, p=shares / shares.sum())
        frame[column] = np.array(names, dtype=object)[pick]
        risk *= rr[pick] / float(np.dot(shares / shares.sum(), rr))
    base = np.full(n_calls, float(rate))
    if drift_to is not None:
        base = np.linspace(rate, drift_to, n_calls)
    if change_at is not None:
        base[change_at:] *= change_factor
    frame["true_rate"] = np.clip(base * risk, 0, 1)
    frame["under_triage"] = (rng.random(n_calls) < frame["true_rate"]).astype(int)
    return frame[["call_id", "closed_at", "under_triage", *subgroup_risk, "true_rate"]]
