"""The calibrator is fitted on the calibration window, where the threshold is also tested: that is
sound only because the calibrated probability keeps the raw score's order strictly, so the
Learn-then-Test walk visits the same sets of calls as a walk on the raw score (which the
calibration labels did not fit)."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from disposition.calibration import EPS, fit_calibrator
from disposition.evaluation import SafetySettings


def _calls(seed: int = 3, n: int = 20_000):
    rng = np.random.default_rng(seed)
    raw = rng.normal(0, 2, n)
    safe = rng.uniform(size=n) < expit(1.5 * raw + 3)
    safe[raw > np.quantile(raw, 0.9)] = True  # the top tenth all safe: a wide flat top isotonic step
    return raw, safe


def test_isotonic_probabilities_keep_the_raw_order_where_the_fit_is_flat():
    raw, safe = _calls()
    calibrator = fit_calibrator(raw, safe, "isotonic")
    flat = np.clip(np.interp(raw, calibrator.knots_x, calibrator.knots_y), EPS, 1 - EPS)
    assert (flat == flat.max()).sum() > 100  # without the tie-break: one block the labels sized
    p = calibrator.predict(raw)
    order = np.argsort(raw)
    assert np.all(np.diff(p[order]) > 0) and np.all((p > 0) & (p < 1))
    assert np.max(np.abs(p - flat)) <= 1e-6  # the tie-break moves no probability by more than 1e-6


def test_the_walk_on_calibrated_probabilities_recommends_what_the_walk_on_the_raw_score_does():
    raw, safe = _calls()
    eligible = np.ones(raw.size, bool)
    for method in ("isotonic", "sigmoid"):
        p = fit_calibrator(raw, safe, method).predict(raw)
        for settings in (SafetySettings(limit=0.02, confirm_power=None), SafetySettings(limit=0.01)):
            on_p = settings.choose(p, ~safe, eligible)
            on_raw = settings.choose(raw, ~safe, eligible)
            assert on_p.n_recommended == on_raw.n_recommended > 0 and on_p.n_unsafe == on_raw.n_unsafe
            assert np.array_equal(p >= on_p.threshold, raw >= on_raw.threshold)


def test_a_score_that_ranks_backwards_gets_the_base_rate_and_keeps_its_own_order():
    """Platt scaling with a negative slope would let the calibration labels reverse the ranking."""
    raw, safe = _calls()
    calibrator = fit_calibrator(-raw, safe, "sigmoid")
    assert calibrator.slope == 0.0
    p = calibrator.predict(-raw)
    assert abs(p.mean() - safe.mean()) < 1e-5 and np.array_equal(np.argsort(p), np.argsort(-raw))
