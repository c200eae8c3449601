"""Discrimination and calibration of P(safe remote closure) on held-out calls.

AUPRC is reported for both classes: for "safe" (common) and for "not safe" (the rarer, costly
class, scored by 1 - p), following the advice to show AUPRC beside AUC when an outcome is rare.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed - predicted| over equal-width probability bins, weighted by calls per bin."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    if len(y) == 0:
        return float("nan")
    which = np.minimum((p * bins).astype(int), bins - 1)
    counts = np.bincount(which, minlength=bins)
    gap = np.abs(
        np.bincount(which, weights=y, minlength=bins) - np.bincount(which, weights=p, minlength=bins)
    )
    return float(gap.sum() / counts.sum())


def classification_metrics(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, float]:
    """AUC, AUPRC (safe and not safe), Brier score, log loss, ECE, prevalence and size.

    Ranking metrics are NaN when only one class is present (a small subgroup, say).
    """
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    both = len(np.unique(y)) == 2
    nan = float("nan")
    return {
        "n": float(len(y)),
        "safe_share": float(y.mean()) if len(y) else nan,
        "auc": float(roc_auc_score(y, p)) if both else nan,
        "auprc": float(average_precision_score(y, p)) if both else nan,
        "auprc_unsafe": float(average_precision_score(1 - y, 1 - p)) if both else nan,
        "brier": float(brier_score_loss(y, p)) if len(y) else nan,
        "log_loss": float(log_loss(y, p, labels=[0, 1])) if len(y) else nan,
        "ece": expected_calibration_error(y, p, bins),
    }


def reliability_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Observed against predicted per equal-count bin: the points of a reliability diagram."""
    frame = pd.DataFrame({"y": np.asarray(y, dtype=float), "p": np.asarray(p, dtype=float)})
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), q=min(bins, len(frame)), labels=False)
    table = frame.groupby("bin").agg(predicted=("p", "mean"), observed=("y", "mean"), calls=("y", "size"))
    return table.reset_index(drop=True)
