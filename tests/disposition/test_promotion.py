"""The champion gate: a Learn-then-Test threshold on calibration, then the held-out test window;
messages name the window and the figure they report."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import beta

from disposition.evaluation import SafetySettings
from disposition.promotion import decide
from disposition.safety import ClosureResult, closure_at, safety_threshold


def _test_window(unsafe: int, recommended: int, calls: int = 30_000) -> ClosureResult:
    """What a threshold did on a test window, with the bound computed by the module itself."""
    p = np.r_[np.ones(recommended), np.zeros(calls - recommended)]
    bad = np.zeros(calls, bool)
    bad[:unsafe] = True
    return closure_at(p, bad, np.ones(calls, bool), 0.5, delta=0.05)


def _decide(selection: ClosureResult, test: ClosureResult, limit: float = 0.01):
    calls, y = pd.DataFrame({"x": [1]}), np.array([1])
    return decide(None, "m", selection, test, calls, y, SafetySettings(limit=limit))[0]


SELECTED = _test_window(20, 5_000)


def test_realised_under_triage_above_the_one_percent_limit_blocks_promotion_and_names_the_window():
    decision = _decide(SELECTED, _test_window(66, 6_000))  # 1.1 %
    assert not decision.promoted
    assert "test-window under-triage 1.10 % (66 unsafe of 6000 recommended) exceeds the limit 1.00 %" in (
        decision.reason
    )


def test_a_first_model_within_the_one_percent_limit_reports_its_test_window_bound():
    test = _test_window(40, 6_000)  # 0.67 %, one-sided 95 % bound ~0.87 %
    assert test.upper_bound == beta.ppf(0.95, 41, 6_000 - 40) and test.upper_bound <= 0.01
    decision = _decide(SELECTED, test)
    assert decision.promoted and "first model whose test-window under-triage 0.67 %" in decision.reason
    assert f"test-window bound {100 * test.upper_bound:.2f} %, one-sided at 95%" in decision.reason


def test_too_few_calibration_calls_say_so_in_numbers_and_do_not_blame_the_model():
    """253 calibration patients at the 1 % limit: 299 safe recommendations would be needed."""
    p = np.linspace(0.2, 1, 253)
    selection = safety_threshold(p, np.zeros(253, bool), np.ones(253, bool), limit=0.01, delta=0.05)
    decision = _decide(selection, _test_window(0, 0, 253))
    assert not decision.promoted
    reason = decision.reason
    assert "253 calls" in reason and "at least 299 recommended calls" in reason
    assert "support a limit of 1.18 %" in reason and "model would recommend nothing" not in reason
