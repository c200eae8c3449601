"""The champion gate: a Learn-then-Test threshold on calibration, then the held-out test window's
one-sided bound within the limit; messages name the window whose bound they report, with numbers."""

from __future__ import annotations

from types import SimpleNamespace

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from scipy.stats import beta

import disposition.promotion as promotion
from disposition.evaluation import SafetySettings
from disposition.pipeline import train
from disposition.promotion import ChampionNotRescored, ChampionUnusable, decide
from disposition.safety import ClosureResult, closure_at, safety_threshold
from tests.disposition.conftest import compose_disposition, fast_overrides

SAFETY = SafetySettings(limit=0.01)


def _window(unsafe: int, recommended: int, calls: int = 30_000) -> ClosureResult:
    """What a threshold did on a window, with the bound computed by the module itself."""
    p = np.r_[np.ones(recommended), np.zeros(calls - recommended)]
    bad = np.zeros(calls, bool)
    bad[:unsafe] = True
    return closure_at(p, bad, np.ones(calls, bool), 0.5, delta=0.05)


def _decide(selection: ClosureResult, test: ClosureResult, champion=None, safety: SafetySettings = SAFETY):
    calls, y = pd.DataFrame({"x": [1]}), np.array([1])
    return decide(champion, "m", selection, test, calls, y, safety)[0]


SELECTED = _window(20, 5_000)  # calibration window: 0.40 %, bound ~0.58 %


def test_a_realised_rate_within_the_limit_is_not_enough_the_test_window_bound_must_be():
    """55 unsafe of 6,000 is 0.92 %, under 1 %, but its one-sided 95 % bound is ~1.15 %: refused."""
    test = _window(55, 6_000)
    assert test.under_triage < 0.01 < test.upper_bound
    decision = _decide(SELECTED, test)
    assert not decision.promoted
    assert (
        f"test-window bound {100 * test.upper_bound:.2f} % (55 unsafe of 6,000 recommended, under-triage "
        "0.92 %; one-sided Clopper-Pearson at 95%) exceeds the 1.00 % limit" in decision.reason
    )
    # ... and the calibration window's bound is named as such beside it.
    calibration = f"calibration-window bound {100 * SELECTED.upper_bound:.2f} % (20 unsafe of 5,000"
    assert calibration in decision.reason
    assert "too few" not in decision.reason  # 6,000 calls could show 1 %: the model's outcomes could not


def test_a_first_model_whose_test_window_bound_is_within_one_percent_is_champion():
    test = _window(40, 6_000)  # 0.67 %, one-sided 95 % bound ~0.87 %
    assert test.upper_bound == beta.ppf(0.95, 41, 6_000 - 40) and test.upper_bound <= 0.01
    decision = _decide(SELECTED, test)
    assert decision.promoted
    assert decision.reason.startswith(
        f"first model whose test-window bound {100 * test.upper_bound:.2f} % (40 unsafe of 6,000 "
        "recommended, under-triage 0.67 %; one-sided Clopper-Pearson at 95%) is within the 1.00 % limit"
    )


def test_at_one_percent_too_few_recommended_test_calls_say_so_in_numbers():
    """200 recommended test calls, none unsafe: the bound (1.49 %) cannot reach 1 %; 299 would be needed."""
    test = _window(0, 200, calls=1_000)
    decision = _decide(SELECTED, test)
    reason = decision.reason
    assert not decision.promoted and "test-window bound 1.49 % (0 unsafe of 200 recommended" in reason
    assert "its 200 recommended test calls are too few to show 1.00 % even with none unsafe" in reason
    assert "at least 299 needed at delta 0.05" in reason and "support a limit of 1.49 %" in reason


def test_a_threshold_that_recommends_no_test_call_is_refused_and_the_calibration_bound_named():
    decision = _decide(SELECTED, _window(0, 0, calls=4_000))
    assert not decision.promoted
    assert "recommends none of the 4,000 test-window calls" in decision.reason
    assert "calibration-window bound" in decision.reason and "cannot show the 1.00 % limit" in decision.reason


def test_too_few_calibration_calls_at_one_percent_say_so_in_numbers_and_do_not_blame_the_model():
    """253 calibration patients at the 1 % limit: 299 safe recommendations would be needed."""
    p = np.linspace(0.2, 1, 253)
    selection = safety_threshold(p, np.zeros(253, bool), np.ones(253, bool), limit=0.01, delta=0.05)
    decision = _decide(selection, _window(0, 0, 253))
    assert not decision.promoted
    reason = decision.reason
    assert "too few calibration calls for the 1.00 % limit" in reason and "253 calls" in reason
    assert "at least 299 recommended calls" in reason
    assert "support a limit of 1.18 %" in reason and "model would recommend nothing" not in reason


CHAMPION = SimpleNamespace(version="3")


def _champion_answers(monkeypatch, outcome):
    def rescore(name, version, calls, y, safety):
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    monkeypatch.setattr(promotion, "champion_on_same_calls", rescore)


def test_a_champion_that_cannot_be_rescored_is_reported_and_stays(monkeypatch, capsys):
    failure = ChampionNotRescored("MlflowException: Can not safely convert int64 to float64")
    _champion_answers(monkeypatch, failure)
    decision = _decide(SELECTED, _window(40, 6_000), champion=CHAMPION)
    assert not decision.promoted
    assert "champion v3 could not be re-scored on these test calls (MlflowException: Can not safely" in (
        decision.reason
    )
    assert "it stays champion" in decision.reason and "this one recommends 20.00 %" in decision.reason
    printed = capsys.readouterr().out
    assert "could not re-score champion v3 on these test calls: MlflowException: Can not safely" in printed


def test_an_unexpected_rescoring_failure_is_raised_not_swallowed(monkeypatch):
    """Only the failures a served model answers with become a refusal; anything else stops the run
    before a version exists (nothing half-registered), with its traceback."""
    _champion_answers(monkeypatch, RuntimeError("disk on fire"))
    with pytest.raises(RuntimeError, match="disk on fire"):
        _decide(SELECTED, _window(40, 6_000), champion=CHAMPION)


def test_a_champion_whose_own_test_window_bound_exceeds_the_limit_is_replaced(monkeypatch):
    """On today's calls the champion's threshold no longer shows the limit; this model's does,
    even though it recommends fewer calls."""
    _champion_answers(monkeypatch, _window(90, 7_000))  # 1.29 %
    decision = _decide(SELECTED, _window(40, 6_000), champion=CHAMPION)
    assert decision.promoted
    assert "replaces champion v3, whose test-window bound" in decision.reason
    assert "(90 unsafe of 7,000 recommended" in decision.reason and "on the same test calls exceeds" in (
        decision.reason
    )


def test_against_a_safe_champion_the_larger_share_on_the_same_calls_wins(monkeypatch):
    _champion_answers(monkeypatch, _window(30, 7_000))  # recommends more, bound within 1 %
    decision = _decide(SELECTED, _window(40, 6_000), champion=CHAMPION)
    assert not decision.promoted
    assert "not more than champion v3 (23.33 % on the same test calls" in decision.reason
    _champion_answers(monkeypatch, _window(10, 3_000))
    decision = _decide(SELECTED, _window(40, 6_000), champion=CHAMPION)
    assert decision.promoted and "more than champion v3 (10.00 % on the same test calls" in decision.reason
    assert "this model's test-window bound" in decision.reason


def test_an_unusable_champion_is_replaced_by_a_model_that_shows_the_limit(monkeypatch):
    _champion_answers(monkeypatch, ChampionUnusable("its files fail the integrity check (changed)"))
    decision = _decide(SELECTED, _window(40, 6_000), champion=CHAMPION)
    assert decision.promoted and "replaces champion v3, its files fail the integrity check" in decision.reason
    assert "this model's test-window bound 0.87 %" in decision.reason


def test_a_model_whose_test_window_bound_exceeds_the_limit_is_registered_but_never_champion(tmp_path, calls):
    """End to end: the latest fifth of calls (the test window) has worse outcomes than the calibration
    window, as after a change of practice. The threshold chosen on calibration shows the limit there
    but not on the test window: version 1 is registered as challenger with the reason, no champion."""
    drifted = calls.copy()
    late = drifted["call_time"] >= drifted["call_time"].quantile(0.8)
    worse = late & (np.random.default_rng(12).uniform(size=len(drifted)) < 0.15)
    drifted.loc[worse, "safe_remote"] = 0
    path = tmp_path / "drifted.parquet"
    drifted.to_parquet(path, index=False)
    quick = ["classifier=lightgbm", "baseline_enabled=false", "tuning.enabled=false"]
    result = train(compose_disposition([*fast_overrides(path, tmp_path / "store"), *quick]), tmp_path / "out")

    m = result.metrics
    assert m["selection_n_recommended"] > 0 and m["selection_upper_bound"] <= 0.05
    assert m["test_deployed_upper_bound"] > 0.05 and not result.promoted
    assert "test-window bound" in result.reason and "exceeds the 5.00 % limit" in result.reason
    assert "calibration-window bound" in result.reason
    assert result.model_uri == "models:/disposition-remote-closure/1"
    client = MlflowClient(mlflow.get_tracking_uri())
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias("disposition-remote-closure", "champion")
    version = client.get_model_version("disposition-remote-closure", "1")
    assert version.aliases == ["challenger"] and version.tags["promotion"] == result.reason
    assert f"Registered as challenger: {result.reason}." in version.description
    assert float(version.tags["test_upper_bound"]) == pytest.approx(m["test_deployed_upper_bound"], abs=1e-6)
