"""Held-out evaluation of a scored window: metrics, the threshold's effect, and the oracle comparison.

Two closure figures answer two questions:

- **deployed**: the threshold chosen on the calibration window, applied to the later test window:
  what the hub would have seen (closure share, under-triage and its bound).
- **at the limit**: the most a score can close on the test window while the bound stays within
  the limit; this is the like-for-like figure for comparing a model with the oracle's true
  probabilities on the same calls (the issue's "closure share at the limit").
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from sklearn.metrics import roc_auc_score

from disposition.metrics import classification_metrics
from disposition.safety import ClosureResult, closure_at, safety_threshold
from disposition.threshold import Plan, planned_start


@dataclass(frozen=True)
class SafetySettings:
    """The configured safety limit, the error level of its guarantee and how the threshold is tested.

    ``delta``: the chance, on new exchangeable calls, that the deployed threshold's true under-triage
    exceeds ``limit`` is at most ``delta``; every decision bound is the one-sided Clopper-Pearson
    bound at ``1 - delta``. ``confirm_power``: design the threshold so that a test window
    ``test_scale`` times the calibration window confirms the limit with at least this probability
    (None: test against the limit itself). ``confidence``/``two_sided``: the descriptive interval
    the report shows beside the decision bound. ``plan_start``: where the walk starts, planned on
    data other than the calibration window (:func:`disposition.threshold.planned_start`; None: by
    counts). ``subgroup_thresholds``: control within the subgroup levels too, with
    ``subgroup_confirm_power``: ``subgroup_control`` ``joint`` (one threshold tested in every served
    level at once, family-wise, :mod:`disposition.joint_threshold`, with delta split over planned
    starts at ``start_fractions`` of the planned start, shares ``start_shares``) or ``per_level`` (a
    walk per level, :mod:`disposition.level_thresholds`). See :mod:`disposition.threshold`.
    """

    limit: float = 0.01
    confidence: float = 0.95
    two_sided: bool = True
    delta: float = 0.05
    confirm_power: float | None = 0.5
    test_scale: float = 1.0
    grid: int | None = 100
    plan_start: float | str | None = "max_power"
    subgroup_thresholds: bool = True
    subgroup_confirm_power: float | None = 0.2
    subgroup_control: str = "per_level"
    start_fractions: tuple[float, ...] = (1.0, 0.6, 0.35)
    start_shares: tuple[float, ...] = (0.6, 0.25, 0.15)

    def for_levels(self) -> SafetySettings:
        """The settings of the per-level walks: the same, with ``subgroup_confirm_power``."""
        return replace(self, confirm_power=self.subgroup_confirm_power)

    def start(self, plan: Plan | None, n_eligible: int) -> int | None:
        """Where the walk starts, planned on ``plan`` (never the calibration outcomes); None:
        by counts alone (no planning data, or ``plan_start`` null)."""
        if plan is None or self.plan_start is None:
            return None
        return planned_start(
            plan, n_eligible, self.limit, self.delta, self.confirm_power, self.test_scale, self.plan_start
        )

    def choose(
        self, p: np.ndarray, unsafe: np.ndarray, eligible: np.ndarray, plan: Plan | None = None
    ) -> ClosureResult:
        start = self.start(plan, int(np.sum(eligible)))
        return safety_threshold(
            p, unsafe, eligible, self.limit, self.delta, self.confirm_power, self.test_scale, self.grid, start
        )

    def apply(
        self, p: np.ndarray, unsafe: np.ndarray, eligible: np.ndarray, threshold: float
    ) -> ClosureResult:
        return closure_at(p, unsafe, eligible, threshold, self.delta, self.confidence, self.two_sided)


def nothing_recommended_text(selection: ClosureResult, safety: SafetySettings) -> str:
    """Why no threshold was deployed, in numbers: the calibration window's size against what the
    limit needs, or the walk's first acceptance. It never blames the model for too few calls."""
    limit, delta = _percent(safety.limit), safety.delta
    need = (
        f"showing under-triage below {limit} at delta {delta:g} needs at least {selection.needed_calls:,} "
        f"recommended calls with no unsafe outcome"
    )
    if selection.tested == 0:
        return (
            f"too few calibration calls for the {limit} limit: the calibration window has "
            f"{selection.n_calls:,} calls, {selection.eligible_calls:,} of them open to recommendation; "
            f"{need} "
            f"(more when some are unsafe, or with safety.confirm_power); these calls could at best "
            f"support a limit of {_percent(selection.supported_limit)}"
        )
    return (
        f"no threshold showed the {limit} limit on the calibration window: the first of "
        f"{selection.tested} candidate thresholds tested (from {selection.start_calls:,} recommended calls) "
        f"was not rejected at delta {delta:g}; {need}, and the calls the model ranks safest held too many "
        "unsafe outcomes"
    )


def _percent(value: float) -> str:
    return f"{100 * value:.2f} %"


def safety_settings(safety_cfg, test_scale: float = 1.0) -> SafetySettings:
    """:class:`SafetySettings` from the ``safety`` config block (a mapping) and the test window's
    size over the calibration window's."""
    power = safety_cfg.get("confirm_power")
    grid = safety_cfg.get("grid")
    plan_start = safety_cfg.get("plan_start")
    level_power = safety_cfg.get("subgroup_confirm_power")
    return SafetySettings(
        limit=float(safety_cfg["limit"]),
        confidence=float(safety_cfg["confidence"]),
        two_sided=bool(safety_cfg["two_sided"]),
        delta=float(safety_cfg["delta"]),
        confirm_power=None if power is None else float(power),
        test_scale=float(test_scale),
        grid=None if grid is None else int(grid),
        plan_start=plan_start if plan_start is None or isinstance(plan_start, str) else float(plan_start),
        subgroup_thresholds=bool(safety_cfg.get("subgroup_thresholds", True)),
        subgroup_confirm_power=None if level_power is None else float(level_power),
        subgroup_control=str(safety_cfg.get("subgroup_control", "per_level")),
        start_fractions=tuple(float(v) for v in safety_cfg.get("start_fractions", [1.0])),
        start_shares=tuple(float(v) for v in safety_cfg.get("start_shares", [1.0])),
    )


@dataclass(frozen=True)
class WindowEvaluation:
    """A score's performance on one window of calls."""

    metrics: dict[str, float]
    deployed: ClosureResult
    at_limit: ClosureResult

    def flat(self, prefix: str) -> dict[str, float]:
        out = {f"{prefix}{k}": v for k, v in self.metrics.items()}
        out.update(self.deployed.as_dict(f"{prefix}deployed_"))
        out.update(self.at_limit.as_dict(f"{prefix}at_limit_"))
        return out


def evaluate_window(
    y: np.ndarray,
    p: np.ndarray,
    eligible: np.ndarray,
    threshold: float,
    safety: SafetySettings,
    bins: int = 10,
) -> WindowEvaluation:
    """Metrics of ``p`` against outcomes ``y`` (1 = safe), the deployed threshold and the limit's capacity."""
    unsafe = np.asarray(y) == 0
    return WindowEvaluation(
        metrics=classification_metrics(y, p, bins),
        deployed=safety.apply(p, unsafe, eligible, threshold),
        at_limit=safety.choose(p, unsafe, eligible),
    )


def oracle_comparison(
    model: WindowEvaluation,
    oracle: WindowEvaluation,
    auc_tolerance: float = 0.01,
    share_ratio_target: float = 0.95,
) -> dict[str, float]:
    """The issue's targets: AUC within ``auc_tolerance`` of the oracle's, and closure share at the
    limit at least ``share_ratio_target`` of the oracle's on the same calls."""
    gap = oracle.metrics["auc"] - model.metrics["auc"]
    oracle_share = oracle.at_limit.share
    ratio = model.at_limit.share / oracle_share if oracle_share > 0 else float("nan")
    deployed_ratio = (
        model.deployed.share / oracle.deployed.share if oracle.deployed.share > 0 else float("nan")
    )
    return {
        "oracle_auc": oracle.metrics["auc"],
        "auc_gap_to_oracle": gap,
        "oracle_at_limit_share": oracle_share,
        "at_limit_share_ratio_to_oracle": ratio,
        "oracle_deployed_share": oracle.deployed.share,
        "deployed_share_ratio_to_oracle": deployed_ratio,
        "target_auc_met": float(gap <= auc_tolerance),
        "target_share_met": float(ratio >= share_ratio_target),
    }


def eligible_auc(y: np.ndarray, p: np.ndarray, eligible: np.ndarray) -> float:
    """AUC among calls no hard rule excludes: how well the score ranks the calls it can act on."""
    y, p = np.asarray(y)[eligible], np.asarray(p)[eligible]
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")
