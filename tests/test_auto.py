"""model=auto: the choice at each origin uses only that origin's past, scores combinations without
refits, recalibrates intervals that miss, and is built from the command line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.backtest import rolling_origin_backtest
from forecasting.models import AutoForecaster, CalendarGLM, Ensemble, GlobalLightGBM, SeasonalNaive
from forecasting.models.auto import clear_memo, inner_cutoffs, selection_table

LEVELS = [80, 95]
FORECAST_COLUMNS = ["unique_id", "ds", "mean", "lo_80", "hi_80", "lo_95", "hi_95"]


def cheap_auto(**settings) -> AutoForecaster:
    candidates = {
        "seasonal_naive": SeasonalNaive(),
        "glm": CalendarGLM(window_days=730),
        "lightgbm": GlobalLightGBM(n_estimators=30, n_jobs=1, calibration_days=91),
    }
    return AutoForecaster(candidates, **{"n_origins": 2, "step": 28, "horizon": 14, **settings})


@pytest.fixture(scope="module")
def two_series(small_counts) -> pd.DataFrame:
    frame = small_counts[small_counts["unique_id"].isin(["city/C2", "moor/C1"])]
    return frame[["unique_id", "ds", "y"]].reset_index(drop=True)


def test_inner_origins_end_by_the_data_and_sit_on_a_shared_grid():
    last = pd.Timestamp("2023-06-30")
    cutoffs = inner_cutoffs(last, horizon=84, n_origins=3, step=28)
    assert len(cutoffs) == 3 and cutoffs[-1] + pd.Timedelta(days=84) <= last
    assert all((b - a).days == 28 for a, b in zip(cutoffs, cutoffs[1:], strict=False))
    # A week later (the next outer origin) the inner origins are the same dates or newer grid ones.
    later = inner_cutoffs(last + pd.Timedelta(days=7), horizon=84, n_origins=3, step=28)
    assert set(cutoffs) & set(later) and (later[-1] - cutoffs[-1]).days in (0, 28)


def test_scrambling_every_value_after_an_origin_changes_no_forecast_up_to_it(two_series):
    protocol = dict(horizon=14, n_origins=2, step=14, level=LEVELS)
    clear_memo()
    base = rolling_origin_backtest(cheap_auto(), two_series, **protocol)
    cutoffs = sorted(base["cutoff"].unique())
    rng = np.random.default_rng(0)
    for cutoff in cutoffs:
        scrambled = two_series.copy()
        after = scrambled["ds"] > cutoff
        scrambled.loc[after, "y"] = rng.integers(0, 1000, after.sum())
        clear_memo()  # nothing may come from forecasts memoised on the true data
        again = rolling_origin_backtest(
            cheap_auto(), scrambled, **{**protocol, "n_origins": 1, "first_cutoff": cutoff}
        )
        expected = base[base["cutoff"] == cutoff][FORECAST_COLUMNS].reset_index(drop=True)
        pd.testing.assert_frame_equal(again[FORECAST_COLUMNS].reset_index(drop=True), expected)
        assert selection_table(cheap_auto(), scrambled, [cutoff]).equals(
            selection_table(cheap_auto(), two_series, [cutoff])
        )
    # The test can fail: the later origin does see values after the earlier one.
    scrambled = two_series.copy()
    after = scrambled["ds"] > cutoffs[0]
    scrambled.loc[after, "y"] = rng.integers(0, 1000, after.sum())
    clear_memo()
    later = rolling_origin_backtest(cheap_auto(), scrambled, **{**protocol, "n_origins": 1})
    assert not np.allclose(later["mean"], base[base["cutoff"] == cutoffs[-1]]["mean"])


def test_picks_the_lowest_inner_mase_and_scores_combinations_from_the_same_forecasts(two_series):
    clear_memo()
    auto = cheap_auto().fit(two_series)
    scores = auto.scores_
    assert auto.winner_ == scores["name"].iloc[0] and scores["mase"].is_monotonic_increasing
    singles = scores[~scores["members"].str.contains("+", regex=False)]
    assert set(singles["name"]) == {"seasonal_naive", "glm", "lightgbm"}
    best_two = singles["name"].iloc[:2].tolist()
    inverse = scores.set_index("name").loc[f"inverse_error({'+'.join(best_two)})"]
    weights = [float(w) for w in inverse["weights"].split(",")]
    expected = 1 / singles["mase"].iloc[:2].to_numpy()
    assert weights == pytest.approx(expected / expected.sum(), abs=1e-3)
    # An equal-weight combination's inner MAE is that of the averaged member forecasts.
    assert "equal(" + "+".join(best_two) + ")" in set(scores["name"])
    if "+" in auto.winner_:
        assert isinstance(auto.model_, Ensemble)
    # Refitting is served from the memo: the same choice and forecast, fast.
    again = cheap_auto().fit(two_series)
    pd.testing.assert_frame_equal(again.predict(14, LEVELS), auto.predict(14, LEVELS))


def test_recalibrates_intervals_that_miss_nominal_on_the_inner_origins(two_series):
    only_naive = {"seasonal_naive": SeasonalNaive()}
    # The seasonal naive's intervals widen with each week and over-cover: recalibrated.
    auto = AutoForecaster(only_naive, n_origins=3, step=28, horizon=28, coverage_tolerance=0.025)
    auto.fit(two_series)
    assert auto.recalibrated_ and auto.scores_.loc[0, "coverage_80"] > 0.825
    plain = AutoForecaster(only_naive, n_origins=3, step=28, horizon=28, recalibrate=False).fit(two_series)
    assert not plain.recalibrated_
    calibrated, own = auto.predict(28, LEVELS), plain.predict(28, LEVELS)
    pd.testing.assert_series_equal(calibrated["mean"], own["mean"])
    assert (calibrated["hi_80"] - calibrated["lo_80"]).mean() < (own["hi_80"] - own["lo_80"]).mean()
    assert (calibrated["lo_95"] <= calibrated["lo_80"]).all()
    assert (calibrated["hi_80"] <= calibrated["hi_95"]).all()


def test_refuses_too_little_history_for_the_inner_origins(two_series):
    short = two_series[two_series["ds"] < "2018-03-01"]
    with pytest.raises(ValueError, match="lower model.n_origins"):
        cheap_auto(horizon=28).fit(short)


def test_model_group_builds_auto_with_every_candidate():
    from forecasting.pipeline import build_forecaster
    from tests.conftest import compose_config

    auto = build_forecaster(compose_config("forecast", ["model=auto"]).model)
    assert isinstance(auto, AutoForecaster)
    assert set(auto.candidates) == {"seasonal_naive", "ets", "arima", "glm", "lightgbm"}
    fewer = build_forecaster(compose_config("forecast", ["model=auto", "~model.candidates.ets"]).model)
    assert "ets" not in fewer.candidates


class CountingNaive(SeasonalNaive):
    """A seasonal naive that counts its fits (class-wide, as clones are fitted)."""

    fits = 0

    def fit(self, df):
        type(self).fits += 1
        return super().fit(df)


def test_a_backtest_fits_each_candidate_once_per_grid_origin_and_memoises_only_forecasts(two_series):
    # The cost model of auto in a backtest: every outer origin refits its winner, but a candidate's
    # inner forecast at a grid origin is computed once and shared by every outer origin that uses it.
    from forecasting.models import auto as auto_module

    clear_memo()
    CountingNaive.fits = 0
    model = AutoForecaster({"naive": CountingNaive()}, n_origins=2, step=28, horizon=14)
    backtest = rolling_origin_backtest(model, two_series, horizon=14, n_origins=6, step=7, level=LEVELS)
    outer = sorted(backtest["cutoff"].unique())
    grid = {c for cutoff in outer for c in inner_cutoffs(pd.Timestamp(cutoff), 14, 2, 28)}
    assert len(grid) < 2 * len(outer)  # the outer origins share inner ones
    assert CountingNaive.fits == len(grid) + len(outer)
    # The memo keeps forecast frames (a few columns per series and day), never fitted models.
    assert all(set(f.columns) == set(FORECAST_COLUMNS) for f in auto_module._MEMO.values())
