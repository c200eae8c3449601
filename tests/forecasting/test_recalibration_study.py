"""The SWAST recalibration study scores each variant with exactly the wrapper's intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.swast_benchmark.recalibration_study import Variant, choose, recalibrated
from forecasting.backtest import rolling_origin_backtest
from forecasting.models import BacktestConformal, SeasonalNaive

LEVELS = [80, 95]


@pytest.fixture(scope="module")
def grid(small_counts):
    return rolling_origin_backtest(
        SeasonalNaive(),
        small_counts,
        horizon=28,
        n_origins=12,
        step=14,
        level=LEVELS,
        first_cutoff=small_counts["ds"].max() - pd.Timedelta(days=28 + 14 * 11),
        progress=False,
    )


@pytest.mark.parametrize(
    "variant",
    [
        Variant(3, 14, "pearson", 3, "always"),
        Variant(2, 28, "relative", 7, "always"),
        Variant(4, 14, "pearson", 14, "auto"),
    ],
)
def test_a_variant_gives_the_wrappers_intervals(small_counts, grid, variant):
    origin = sorted(grid["cutoff"].unique())[-1]
    simulated = recalibrated(grid, origin, variant, LEVELS, 28).sort_values(["unique_id", "ds"])
    wrapper = BacktestConformal(
        SeasonalNaive(),
        n_windows=variant.n_windows,
        step=variant.step,
        horizon=28,
        coverage_tolerance=None if variant.recalibrate == "always" else 0.025,
        levels=LEVELS,
        scale=variant.scale,
        band=variant.band,
    ).fit(small_counts[small_counts["ds"] <= origin])
    direct = wrapper.predict(28, LEVELS).sort_values(["unique_id", "ds"])
    assert bool(simulated["recalibrated"].iloc[0]) == wrapper.recalibrated_
    for column in ["mean", "lo_80", "hi_80", "lo_95", "hi_95"]:
        np.testing.assert_allclose(simulated[column].to_numpy(), direct[column].to_numpy(), rtol=1e-9)


def test_the_rule_breaks_ties_towards_fewer_windows_then_narrower_intervals():
    table = pd.DataFrame(
        {
            "variant": ["a", "b", "c", "d"],
            "n_windows": [12, 8, 8, 4],
            "worst_gap": [0.020, 0.024, 0.023, 0.031],
            "width_95": [50.0, 40.0, 45.0, 30.0],
        }
    )
    assert choose(table)["variant"] == "b"  # a, b, c within 0.5 points; b and c cheaper; b narrower
