"""Subgroup levels too small to show the limit get no recommendations, in training and when served;
the others are served against their own thresholds (tests/disposition/test_level_thresholds.py)."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from disposition.safety import HardRule
from disposition.threshold import required_calls
from disposition.withheld import WithheldLevels, levels_to_withhold, small_levels

COLUMNS = {"age": "age", "sex": "sex", "category": "category"}


def _calls(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": np.where(np.arange(n) < 100, 90, rng.integers(18, 60, size=n)),  # 100 calls aged 85+
            "sex": rng.choice(["F", "M"], size=n),
            "category": rng.choice(["C2", "C3"], size=n),
        }
    )


def test_levels_with_fewer_recommended_calls_than_the_limit_needs_are_withheld():
    calls = _calls(2_000)
    held = small_levels(calls, np.ones(2_000, bool), COLUMNS, [0, 18, 65, 85], needed=299)
    # 85+ has 100 recommended calls (< 299); every other level present has ~1,000 or more.
    assert held.levels == {"age_band": ["85+"]} and held.counts["age_band"]["85+"] == 100
    mask = held.mask(calls)
    assert mask[:100].all() and not mask[100:].any()
    assert held.required_columns == ["age"]
    assert "age_band = 85+ (100 recommended calibration calls; 299 needed)" in held.describe()


def test_the_rule_counts_only_recommended_eligible_calls_and_round_trips():
    calls = _calls(4_000, seed=1)
    p = np.linspace(0, 1, 4_000)
    rules = [HardRule("category", ("C3",))]
    held = levels_to_withhold(calls, p, rules, 0.5, COLUMNS, [0, 18, 65, 85], limit=0.01, delta=0.05)
    recommended = (calls["category"] != "C3") & (p >= 0.5)
    assert held.needed == required_calls(0.01, 0.05) == 299
    assert held.counts["category"]["C3"] == 0 and "C3" in held.levels["category"]
    assert held.counts["category"]["C2"] == recommended.sum() > 299 and "C2" not in held.levels["category"]
    again = WithheldLevels.from_dict(held.to_dict())
    assert again == held and (again.mask(calls) == held.mask(calls)).all()
    assert levels_to_withhold(calls, p, rules, 0.5, {"age": None}, [0], 0.01, 0.05) is None


@pytest.mark.slow
def test_the_served_model_withholds_what_the_report_withholds(tmp_path, calls_path, calls):
    """End to end with the fast settings: the registered pyfunc recommends no call of a withheld level."""
    from disposition.pipeline import train
    from tests.disposition.conftest import compose_disposition, fast_overrides

    cfg = compose_disposition([*fast_overrides(calls_path, tmp_path / "store"), "baseline_enabled=false"])
    result = train(cfg, tmp_path / "out")
    model = mlflow.pyfunc.load_model(f"models:/disposition-remote-closure/{result.version}")
    scorer = model.unwrap_python_model().scorer
    assert scorer.withheld is not None and scorer.withheld.levels
    request = calls.drop(columns=["safe_remote", "p_safe_remote_true"]).tail(3_000).reset_index(drop=True)
    answer = model.predict(request, params={"reasons": "none"})
    held = scorer.withheld.mask(request)
    assert held.any() and not answer.loc[held, "recommend_remote"].any()
    assert answer.loc[~held, "recommend_remote"].any()
    # Every call is served against its own threshold: the overall one or its levels' stricter one.
    own = scorer.call_thresholds(request)
    # A withheld call has no threshold: served missing (JSON null), never inf.
    assert answer.loc[held, "threshold"].isna().all() and np.isinf(own[held]).all()
    assert (answer["threshold"].to_numpy(dtype=float, na_value=np.inf) == own).all()
    assert (own >= scorer.threshold).all()
    assert (answer["recommend_remote"] == (answer["p_safe_remote"] >= own)).all()
    card = (result.output_dir / "model_card.md").read_text()
    assert "Withheld levels" in card
