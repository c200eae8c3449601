"""A threshold per subgroup level: the same Learn-then-Test walk within each level's own calls.

For every level of the configured groupings (age band, sex, category), the calibration calls of
that level alone go through :func:`disposition.threshold.fixed_sequence_threshold`, with its start
planned on the level's own planning calls (never the calibration outcomes). The level's threshold
is the last candidate it rejected; a level that rejects none is **withheld** (no recommendations),
and the report says how many recommended calls a level with its calibration rate would need.

A call is recommended only when its score reaches the overall threshold AND the threshold of every
level it belongs to (:meth:`disposition.withheld.WithheldLevels.call_thresholds`): a level can make
its calls stricter than the overall threshold, never looser. What this proves, and what it does
not, is stated in :mod:`disposition.threshold` ("Subgroup levels").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
from scipy.stats import binom

from disposition.threshold import Plan, fixed_sequence_threshold, largest_rejected_count, tested_rate


@dataclass(frozen=True)
class LevelControl:
    """How one level's walk went. ``threshold`` is ``inf`` when the level is withheld.

    ``recommended``/``unsafe``: its eligible calibration calls at the overall threshold and how many
    were unsafe; ``needed``: about how many recommended calls a level with that rate would need for
    the walk's test to reject with probability 1/2 (None when no number would do).
    """

    group: str
    level: str
    threshold: float
    tested: int
    rejected: int
    eligible: int
    recommended: int
    unsafe: int
    needed: int | None

    @property
    def withheld(self) -> bool:
        return not np.isfinite(self.threshold)


def calls_needed(
    rate: float,
    limit: float,
    delta: float,
    power: float = 0.5,
    confirm_power: float | None = None,
    test_scale: float = 1.0,
) -> int | None:
    """About the fewest recommended calls with true under-triage ``rate`` whose exact test rejects
    at ``delta`` with probability ``power``, testing against the rate the walk tests against (the
    limit, or with ``confirm_power`` the confirmable rate); None when no number of calls would do."""
    if rate >= limit:
        return None
    n, k = _rejected_counts(limit, delta, confirm_power, test_scale)
    reach = np.flatnonzero((k >= 0) & (binom.cdf(np.maximum(k, 0), n, rate) >= power))
    return int(n[reach[0]]) if len(reach) else None


@cache
def _rejected_counts(
    limit: float, delta: float, confirm_power: float | None, test_scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate sizes and their largest rejected counts, the same for every level of a run: computed
    once rather than per level (4,000 exact binomial quantiles each). Read-only, as they are shared."""
    n = np.unique(np.geomspace(1, 5e7, 4000).astype(int)).astype(float)
    k = largest_rejected_count(n, tested_rate(n, limit, delta, confirm_power, test_scale), delta)
    n.flags.writeable = k.flags.writeable = False
    return n, k


def level_walks(
    labels: Mapping[str, np.ndarray],
    p: np.ndarray,
    unsafe: np.ndarray,
    eligible: np.ndarray,
    overall_threshold: float,
    safety,
    plan: Plan | None = None,
    plan_labels: Mapping[str, np.ndarray] | None = None,
) -> list[LevelControl]:
    """One :class:`LevelControl` per level of every grouping in ``labels`` (calibration calls).

    ``safety`` is the run's :class:`disposition.evaluation.SafetySettings`; ``plan`` and
    ``plan_labels`` the planning calls and their levels (the start is then planned per level).
    """
    p, unsafe, eligible = np.asarray(p, float), np.asarray(unsafe, bool), np.asarray(eligible, bool)
    out = []
    for group, values in labels.items():
        values = np.asarray(values).astype(str)
        planned = None if plan_labels is None or group not in plan_labels else np.asarray(plan_labels[group])
        for level in sorted(pd.unique(values)):
            mask = values == level
            own_plan = (
                plan.within(planned.astype(str) == level)
                if plan is not None and planned is not None
                else None
            )
            start = safety.start(own_plan, int(eligible[mask].sum()))
            test = fixed_sequence_threshold(
                p[mask],
                unsafe[mask],
                eligible[mask],
                safety.limit,
                safety.delta,
                safety.confirm_power,
                safety.test_scale,
                safety.grid,
                start,
            )
            at_overall = eligible[mask] & (p[mask] >= overall_threshold)
            n, k = int(at_overall.sum()), int(unsafe[mask][at_overall].sum())
            out.append(
                LevelControl(
                    group,
                    str(level),
                    test.threshold,
                    test.tested,
                    test.rejected,
                    int(eligible[mask].sum()),
                    n,
                    k,
                    calls_needed(
                        k / n if n else 0.0,
                        safety.limit,
                        safety.delta,
                        confirm_power=safety.confirm_power,
                        test_scale=safety.test_scale,
                    ),
                )
            )
    return out
