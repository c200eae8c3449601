"""The champion gate: safety first (bound on held-out calls, realised rate on the test window)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from disposition.evaluation import SafetySettings
from disposition.promotion import decide
from disposition.safety import ClosureResult


def _result(share: float, under_triage: float, bound: float, recommended: int = 1000) -> ClosureResult:
    return ClosureResult(
        0.97, 10_000, recommended, int(under_triage * recommended), share, under_triage, bound
    )


def _decide(selection: ClosureResult, test: ClosureResult):
    calls, y = pd.DataFrame({"x": [1]}), np.array([1])
    return decide(None, "m", selection, test, calls, y, SafetySettings(limit=0.01))[0]


def test_a_model_that_recommends_nothing_is_not_promoted():
    decision = _decide(_result(0.0, 0.0, 1.0, recommended=0), _result(0.0, 0.0, 1.0, recommended=0))
    assert not decision.promoted and "recommend nothing" in decision.reason


def test_realised_under_triage_above_the_limit_blocks_promotion():
    decision = _decide(_result(0.2, 0.008, 0.0099), _result(0.2, 0.012, 0.016))
    assert not decision.promoted and "exceeds the limit" in decision.reason


def test_first_safe_model_becomes_champion():
    decision = _decide(_result(0.2, 0.008, 0.0099), _result(0.21, 0.009, 0.0125))
    assert decision.promoted and "first model" in decision.reason
