"""The call-level synthetic world: reproducible, calibrated to DOMAIN.md, consistent with the counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from disposition.synthetic_calls import OUTCOME_COLUMNS, FollowUp, Practice, describe_calls, sample_calls
from disposition.synthetic_world import RED_FLAG_GROUPS, SYMPTOM_GROUPS
from mlops.errors import ConfigError


def test_same_seed_same_calls_other_seed_other_calls(world):
    args = (world["counts"], world["population"], world["ratio"], 2_000)
    a, b, c = sample_calls(*args, seed=1), sample_calls(*args, seed=1), sample_calls(*args, seed=2)
    pd.testing.assert_frame_equal(a.calls, b.calls)
    assert not a.calls["age"].equals(c.calls["age"])


def test_calibrated_to_todays_practice(calls):
    figures = describe_calls(calls)
    assert figures["remote_share_today"] == pytest.approx(0.20, abs=0.002)  # about one call in five
    assert 0.01 <= figures["adverse_rate_after_remote_closure"] <= 0.02  # Marincowitz 1.3 %, Dale 1.7 %
    # Older and repeat callers are less often safe to close remotely.
    assert figures["safe_remote_share_85_plus"] < figures["safe_remote_share_under_65"] - 0.2
    assert figures["safe_remote_share_3plus_contacts"] < figures["safe_remote_share"] - 0.1
    assert 25 <= figures["symptom_groups"] <= 40
    assert (calls.loc[calls["category"] == "C1", "closed_remotely"] == 0).all()


def test_truth_and_outcomes_are_consistent(calls):
    assert set(OUTCOME_COLUMNS) <= set(calls.columns)
    closed = calls["closed_remotely"] == 1
    assert (calls.loc[closed, "adverse_outcome"] == 1 - calls.loc[closed, "safe_remote"]).all()
    assert calls.loc[~closed, "adverse_outcome"].isna().all()
    # The counterfactual truth follows the true probability (the oracle is calibrated) ...
    bins = pd.cut(calls["p_safe_remote_true"], [0, 0.2, 0.5, 0.8, 0.95, 1])
    table = calls.groupby(bins, observed=True).agg(
        p=("p_safe_remote_true", "mean"), truth=("safe_remote_true", "mean"), seen=("safe_remote", "mean")
    )
    assert np.allclose(table["p"], table["truth"], atol=0.03)
    # ... and the observed label is the truth seen through follow-up: 90 % of bad outcomes found,
    # 0.2 % of safe calls recorded as bad.
    expected_seen = 1 - FollowUp().observed_unsafe_probability(table["p"].to_numpy())
    assert np.allclose(table["seen"], expected_seen, atol=0.03)
    unsafe = calls["safe_remote_true"] == 0
    assert (1 - calls.loc[unsafe, "safe_remote"]).mean() == pytest.approx(0.9, abs=0.02)
    assert (1 - calls.loc[~unsafe, "safe_remote"]).mean() == pytest.approx(0.002, abs=0.0015)
    found = calls["safe_remote"] == 0
    assert (calls.loc[found, "followup_outcome"] != "none").all()
    assert (calls.loc[~found, "followup_outcome"] == "none").all()
    assert set(calls["followup_outcome"]) == {"none", "recontact_72h", "ed_72h", "admission"}
    red = calls["symptom_group"].isin(RED_FLAG_GROUPS)
    assert calls.loc[red, "p_safe_remote_true"].mean() < 0.1
    assert set(calls["symptom_group"]) <= set(SYMPTOM_GROUPS)
    assert calls["call_time"].is_monotonic_increasing and calls["call_id"].is_unique


def test_calls_follow_the_daily_counts(world, calls):
    counts = world["counts"]
    expected = counts.groupby("area")["y"].sum() / counts["y"].sum()
    observed = calls["area"].value_counts(normalize=True)
    assert np.allclose(observed[expected.index], expected, atol=0.01)
    mix = calls["category"].value_counts(normalize=True)
    assert mix["C2"] == pytest.approx(0.623, abs=0.02)  # AmbSYS 2019 category mix, via the counts
    # Ages follow population x age-specific call rates: the 85+ make far more calls than their share.
    assert 0.10 < (calls["age"] >= 85).mean() < 0.25


def test_bad_practice_settings_are_config_errors(world):
    with pytest.raises(ConfigError, match="remote_share"):
        sample_calls(
            world["counts"], world["population"], world["ratio"], 1_000, practice=Practice(remote_share=1.5)
        )


def test_fresh_calls_come_from_a_later_period(world):
    args = (world["counts"], world["population"], world["ratio"], 2_000)
    early = sample_calls(*args, seed=3, period=(None, "2021-01-01")).calls
    later = sample_calls(*args, seed=4, period=("2022-01-01", None)).calls
    assert early["call_time"].max() < pd.Timestamp("2021-01-01") <= later["call_time"].min()
    with pytest.raises(ConfigError, match="holds no day of the daily counts"):
        sample_calls(*args, period=("2040-01-01", None))
    with pytest.raises(ConfigError, match="followup.sensitivity"):
        sample_calls(*args, followup=FollowUp(sensitivity=0))
