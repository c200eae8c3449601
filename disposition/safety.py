"""The safety-limited threshold and the hard rules no model output overrides.

Under-triage is the share of calls recommended for remote closure that were NOT safe to close
(in the synthetic world: an adverse outcome would have followed). The threshold is chosen by
Learn-then-Test fixed-sequence testing (:mod:`disposition.threshold`), so that the chance that its
true under-triage on new exchangeable calls exceeds the limit is at most ``delta``.

Every decision bound is the one-sided Clopper-Pearson upper bound at ``1 - delta`` (the bound is
within the limit exactly when the exact binomial test rejects "rate > limit" at ``delta``). The
report also shows the upper end of the usual two-sided 95 % interval (``ci_upper``), the figure
clinical papers quote, for reading only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
from scipy.special import betaincinv

from disposition.features import level_text
from disposition.threshold import fixed_sequence_threshold
from mlops.errors import ConfigError


def clopper_pearson_upper(events, trials, confidence: float = 0.95, two_sided: bool = True) -> np.ndarray:
    """Upper Clopper-Pearson bound of a binomial proportion (1 when there are no trials).

    Parameters
    ----------
    events, trials : array-like of int
        Adverse outcomes among recommended calls, and recommended calls.
    """
    events = np.asarray(events, dtype=float)
    trials = np.asarray(trials, dtype=float)
    if not 0 < confidence < 1:
        raise ConfigError(f"safety.confidence must be in (0, 1), got {confidence}")
    alpha = (1 - confidence) / 2 if two_sided else 1 - confidence
    with np.errstate(invalid="ignore", divide="ignore"):
        bound = betaincinv(events + 1, np.maximum(trials - events, 1e-12), 1 - alpha)
    return np.where((trials <= 0) | (events >= trials), 1.0, bound)


@dataclass(frozen=True)
class ClosureResult:
    """What a threshold does on a set of calls.

    ``share`` is recommended calls over ALL calls (hard-rule exclusions included), so shares of
    different models and of today's practice compare directly. ``upper_bound`` is the one-sided
    Clopper-Pearson bound at ``1 - delta`` (the decision bound); ``ci_upper`` the upper end of the
    two-sided interval at the report's confidence (descriptive).
    """

    threshold: float
    n_calls: int
    n_recommended: int
    n_unsafe: int
    share: float
    under_triage: float
    upper_bound: float
    ci_upper: float = float("nan")
    # How the threshold was chosen (Learn-then-Test, disposition.threshold.ThresholdTest); zeros
    # and NaN for a result that only applies a given threshold.
    tested: int = 0
    rejected: int = 0
    start_calls: int = 0
    needed_calls: int = 0
    eligible_calls: int = 0
    supported_limit: float = float("nan")
    p_value: float = float("nan")

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{key}": float(value) for key, value in asdict(self).items()}


def closure_at(
    p: np.ndarray,
    unsafe: np.ndarray,
    eligible: np.ndarray,
    threshold: float,
    delta: float = 0.05,
    confidence: float = 0.95,
    two_sided: bool = True,
) -> ClosureResult:
    """Closure share and under-triage when calls with ``p >= threshold`` (and eligible) are recommended.

    ``threshold`` may also be an array, one threshold per call (subgroup thresholds).
    """
    recommended = np.asarray(eligible, dtype=bool) & (p >= threshold)
    k = int(recommended.sum())
    a = int(unsafe[recommended].sum())
    return ClosureResult(
        threshold=float(np.min(threshold, initial=np.inf)) if np.ndim(threshold) else float(threshold),
        n_calls=len(p),
        n_recommended=k,
        n_unsafe=a,
        share=k / len(p) if len(p) else 0.0,
        under_triage=a / k if k else 0.0,
        upper_bound=float(clopper_pearson_upper(a, k, 1 - delta, two_sided=False)),
        ci_upper=float(clopper_pearson_upper(a, k, confidence, two_sided)),
    )


def safety_threshold(
    p: np.ndarray,
    unsafe: np.ndarray,
    eligible: np.ndarray,
    limit: float = 0.01,
    delta: float = 0.05,
    confirm_power: float | None = None,
    test_scale: float = 1.0,
    grid: int | None = 100,
    start: int | None = None,
) -> ClosureResult:
    """What the Learn-then-Test threshold (:func:`disposition.threshold.fixed_sequence_threshold`)
    does on these calls, with how it was chosen; the threshold is infinite (nothing recommended)
    when no candidate was rejected.

    Parameters
    ----------
    p : array of float
        Calibrated probability of safe remote closure.
    unsafe : array of bool
        Realised outcome: True when closing the call remotely was not safe.
    eligible : array of bool
        False for calls a hard rule excludes.
    """
    p = np.asarray(p, dtype=float)
    unsafe = np.asarray(unsafe, dtype=bool)
    eligible = np.asarray(eligible, dtype=bool)
    test = fixed_sequence_threshold(p, unsafe, eligible, limit, delta, confirm_power, test_scale, grid, start)
    result = closure_at(p, unsafe, eligible, test.threshold, delta)
    return replace(
        result,
        tested=test.tested,
        rejected=test.rejected,
        start_calls=test.start_calls,
        needed_calls=test.needed_calls,
        eligible_calls=test.eligible_calls,
        supported_limit=test.supported_limit,
        p_value=test.p_value,
    )


@dataclass(frozen=True)
class HardRule:
    """Calls whose ``column`` takes one of ``values`` are never recommended for remote closure.

    A call with the column missing matches too: an unknown category could be Category 1. Values
    match regardless of case and spacing (`` c1`` is ``C1``): a safety rule must not be dodged
    by how a dispatch system happens to write a label.
    """

    column: str
    values: tuple[str, ...]

    def matches(self, frame: pd.DataFrame) -> np.ndarray:
        codes, uniques = pd.factorize(frame[self.column], use_na_sentinel=True)
        wanted = {_normal_label(value) for value in self.values}
        hit = [_normal_label(level_text(u)) in wanted for u in uniques]
        return np.array([*hit, True])[codes]  # code -1 (missing) picks the final True

    def describe(self) -> str:
        return f"{self.column} in {{{', '.join(self.values)}}}"


def _normal_label(text: str) -> str:
    return " ".join(str(text).split()).casefold()


def rules_from_mapping(never_remote: Mapping[str, Sequence] | None) -> list[HardRule]:
    """Build hard rules from ``{column: [values]}`` (the ``calls.never_remote`` config)."""
    rules = []
    for column, values in (never_remote or {}).items():
        if isinstance(values, str) or not isinstance(values, Sequence):
            raise ConfigError(f"calls.never_remote.{column} must be a list of values, got {values!r}")
        rules.append(HardRule(str(column), tuple(str(v) for v in values)))
    return rules


def excluded_by_rules(frame: pd.DataFrame, rules: Sequence[HardRule]) -> tuple[np.ndarray, np.ndarray]:
    """Which calls a hard rule excludes, and the index of the first rule that does (-1 for none)."""
    first = np.full(len(frame), -1)
    for i, rule in enumerate(rules):
        hit = rule.matches(frame) & (first < 0)
        first[hit] = i
    return first >= 0, first
