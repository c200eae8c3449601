"""Probability calibration of a model's raw score, fitted on calls the model did not learn from.

The idea of ``CalibratedClassifierCV(FrozenEstimator(model))`` (the model stays as fitted, a
calibrator is learnt on later calls), done directly on one number, the model's log-odds, so the
calibrator is a few numbers in JSON rather than a pickle and Platt scaling acts on log-odds
(as for any classifier with a decision function) rather than on LightGBM's probabilities.

- **Isotonic** when the calibration window is large: flexible, needs many calls. Its steps are
  replaced by straight lines between step centres ("centred isotonic regression", Oron & Flournoy
  2017) so that distinct scores keep distinct probabilities: a threshold can then fall between any
  two calls instead of only at the edges of wide steps, and AUC is not lost to ties.
- **Sigmoid** (Platt scaling) otherwise: two parameters, stable on few calls.

**Why the calibrator may be fitted on the calls the threshold is tested on.** The calibrated
probability is a *strictly* increasing function of the raw score: the flat ends of an isotonic fit,
the clipping to ``[EPS, 1 - EPS]`` and a Platt fit that would reverse the order (slope <= 0, the
score carrying no signal on these calls) are all resolved by the raw score itself
(:data:`TIE_BREAK`). So the calls any probability threshold recommends are the calls above some raw
score, the Learn-then-Test walk (:mod:`disposition.threshold`) over calibrated probabilities visits
the same sets of calls as a walk over the raw score, and its p-values are the same: the calibration
labels enter the test only through counts among calls ranked by a score fitted on the training
window alone. Without strict monotonicity, ties (a flat top step of the isotonic fit, whose width the
calibration labels decide) would make the candidate thresholds depend on those labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from mlops.errors import ConfigError

METHODS = ("auto", "isotonic", "sigmoid")
# Probabilities stay inside (EPS, 1 - EPS): a finite sample never shows certainty.
EPS = 1e-4
# Weight of the raw score's own order in the probability: ties (flat isotonic ends, clipping) are
# broken by the raw score, so the probability is strictly increasing in it (module docstring).
# Changes no probability by more than this.
TIE_BREAK = 1e-6


def _order_of(raw: np.ndarray) -> np.ndarray:
    """A strictly increasing map of the raw score into (0, 1) that keeps resolution for large |raw|."""
    return 0.5 + 0.5 * raw / (1 + np.abs(raw))


@dataclass(frozen=True)
class ScoreCalibrator:
    """Maps raw log-odds to calibrated probabilities.

    Attributes
    ----------
    method : {"isotonic", "sigmoid"}
    knots_x, knots_y : list of float
        Isotonic: interpolation knots (raw score, probability).
    slope, intercept : float
        Sigmoid: ``p = expit(slope * raw + intercept)``.
    n_fit : int
        Calls the calibrator was fitted on.
    """

    method: str
    knots_x: list[float] = field(default_factory=list)
    knots_y: list[float] = field(default_factory=list)
    slope: float = 1.0
    intercept: float = 0.0
    n_fit: int = 0

    def predict(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=float)
        if self.method == "isotonic":
            p = np.interp(raw, self.knots_x, self.knots_y)
        else:
            p = expit(self.slope * raw + self.intercept)
        return np.clip(p, EPS, 1 - EPS - TIE_BREAK) + TIE_BREAK * _order_of(raw)

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "knots_x": list(map(float, self.knots_x)),
            "knots_y": list(map(float, self.knots_y)),
            "slope": float(self.slope),
            "intercept": float(self.intercept),
            "n_fit": int(self.n_fit),
        }

    @classmethod
    def from_dict(cls, state: dict) -> ScoreCalibrator:
        return cls(**state)


def choose_method(method: str, n_rows: int, isotonic_min_rows: int) -> str:
    """Resolve ``"auto"``: isotonic from ``isotonic_min_rows`` calls up, sigmoid below."""
    if method not in METHODS:
        raise ConfigError(f"calibration.method must be one of {METHODS}, got {method!r}")
    if method != "auto":
        return method
    return "isotonic" if n_rows >= isotonic_min_rows else "sigmoid"


def fit_calibrator(
    raw: np.ndarray, y: np.ndarray, method: str = "auto", isotonic_min_rows: int = 10_000
) -> ScoreCalibrator:
    """Fit a calibrator of raw scores ``raw`` to binary outcomes ``y`` (1 = safe to close remotely)."""
    raw = np.asarray(raw, dtype=float)
    y = np.asarray(y, dtype=float)
    chosen = choose_method(method, len(raw), isotonic_min_rows)
    if chosen == "sigmoid":
        platt = LogisticRegression(C=1e6).fit(raw.reshape(-1, 1), y)
        slope, intercept = float(platt.coef_[0, 0]), float(platt.intercept_[0])
        if not slope > 0:
            # The score does not rank these calls the right way round: the honest probability is
            # the base rate, and the order stays the raw score's (never one the labels chose).
            base = float(np.clip(y.mean(), EPS, 1 - EPS))
            slope, intercept = 0.0, float(np.log(base / (1 - base)))
        return ScoreCalibrator("sigmoid", slope=slope, intercept=intercept, n_fit=len(raw))
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
    x_knots, y_knots = _centre_steps(iso.X_thresholds_, iso.y_thresholds_)
    return ScoreCalibrator("isotonic", knots_x=x_knots.tolist(), knots_y=y_knots.tolist(), n_fit=len(raw))


def _centre_steps(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replace each constant step of an isotonic fit by one knot at its middle.

    scikit-learn keeps both ends of every step; consecutive knots with the same value are a step.
    """
    step_start = np.r_[True, y[1:] != y[:-1]]
    step_id = np.cumsum(step_start) - 1
    n_steps = step_id[-1] + 1
    lo = np.full(n_steps, np.inf)
    hi = np.full(n_steps, -np.inf)
    np.minimum.at(lo, step_id, x)
    np.maximum.at(hi, step_id, x)
    return (lo + hi) / 2, y[step_start]
