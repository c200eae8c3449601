"""The SWAST protocol's frozen rule and test-year scope (experiments/swast_benchmark/run.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from experiments.swast_benchmark.run import frozen_choice, steps_in_test_year, year_protocol


def backtest_frame(error: float) -> pd.DataFrame:
    """Two origins, one series, 3 days each, every forecast off by ``error`` (scale 1)."""
    rows = []
    for cutoff in pd.to_datetime(["2017-01-01", "2017-01-29"]):
        for h in (1, 2, 3):
            mean = 100.0
            rows.append(
                {
                    "unique_id": "a",
                    "cutoff": cutoff,
                    "ds": cutoff + pd.Timedelta(days=h),
                    "h": h,
                    "y": mean + error,
                    "mean": mean,
                    "lo_80": mean - 5,
                    "hi_80": mean + 5,
                    "scale": 1.0,
                }
            )
    return pd.DataFrame(rows)


CONTENDERS = {
    "auto: A": ("ours", {}, None),
    "glm: G": ("ours", {}, None),
    "peer: X": ("peer", {}, None),
}


def test_frozen_rule_picks_lowest_mean_development_mase_among_ours_only():
    frames = {
        (2017, "auto: A"): backtest_frame(2.0),
        (2018, "auto: A"): backtest_frame(2.0),
        (2017, "glm: G"): backtest_frame(1.0),
        (2018, "glm: G"): backtest_frame(4.0),  # mean 2.5: worse than auto's 2.0
        (2017, "peer: X"): backtest_frame(0.0),  # a peer is never the frozen choice
        (2018, "peer: X"): backtest_frame(0.0),
    }
    assert frozen_choice(frames, CONTENDERS, [2017, 2018], [80], 3) == "auto: A"
    # A model without every development year is not eligible.
    del frames[(2018, "auto: A")]
    assert frozen_choice(frames, CONTENDERS, [2017, 2018], [80], 3) == "glm: G"
    assert frozen_choice(frames, CONTENDERS, [], [80], 3) is None


def test_default_and_frozen_choice_keep_every_test_origin():
    steps = steps_in_test_year(CONTENDERS, "auto", "glm: G", 28, {})
    assert steps == {"peer: X": 28}
    # An explicit override wins, and without `others` only the overrides apply.
    assert steps_in_test_year(CONTENDERS, "auto", "glm: G", 28, {"glm": 14}) == {"glm: G": 14, "peer: X": 28}
    assert steps_in_test_year(CONTENDERS, "auto", None, None, {}) == {}


def test_year_protocol_counts_origins_inside_the_year():
    assert year_protocol(2019, 84, 7)["n_origins"] == 41  # Monks et al. (2023)
    assert year_protocol(2019, 84, 28)["n_origins"] == 11
    with pytest.raises(ValueError, match="origins"):
        year_protocol(2019, 84, 182)
