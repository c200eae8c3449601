"""model=auto on a short history: it chooses among the candidates the history allows (at each fit,
from the data it is given), says which it left out and why, and is unchanged on a long history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.backtest import rolling_origin_backtest
from forecasting.models import AutoForecaster, CalendarGLM, GlobalLightGBM, SeasonalNaive
from forecasting.models.auto import clear_memo, left_out_lines, selection_table

LEVELS = [80, 95]
FORECAST_COLUMNS = ["unique_id", "ds", "mean", "lo_80", "hi_80", "lo_95", "hi_95"]
LIGHTGBM_DAYS = 2 * 91 + 28  # GlobalLightGBM(calibration_days=91).min_history_days()


def candidates(lightgbm: bool = True) -> dict:
    models = {"seasonal_naive": SeasonalNaive(), "glm": CalendarGLM(window_days=730)}
    if lightgbm:
        models["lightgbm"] = GlobalLightGBM(n_estimators=30, n_jobs=1, calibration_days=91)
    return models


def cheap_auto(lightgbm: bool = True) -> AutoForecaster:
    return AutoForecaster(candidates(lightgbm), n_origins=2, step=28, horizon=14)


@pytest.fixture(scope="module")
def two_series(small_counts) -> pd.DataFrame:
    frame = small_counts[small_counts["unique_id"].isin(["city/C2", "moor/C1"])]
    return frame[["unique_id", "ds", "y"]].reset_index(drop=True)


@pytest.fixture(scope="module")
def short(two_series) -> pd.DataFrame:
    """240 days: the oldest inner origin has fewer than the 210 days LightGBM needs."""
    return two_series[two_series["ds"] < two_series["ds"].min() + pd.Timedelta(days=240)]


def test_needs_what_its_least_demanding_candidate_needs_plus_the_inner_origins():
    # The seasonal naive and the GLM need only the backtest's 28 days; LightGBM's 210 do not count.
    assert cheap_auto().min_history_days() == 28 + 14 + 2 * 28
    assert AutoForecaster(
        {"lightgbm": candidates()["lightgbm"]}, n_origins=2, step=28, horizon=14
    ).min_history_days() == (LIGHTGBM_DAYS + 14 + 2 * 28)


def test_a_short_history_leaves_lightgbm_out_and_still_trains(short):
    clear_memo()
    auto = cheap_auto().fit(short)
    assert set(auto.left_out_) == {"lightgbm"}
    assert f"needs {LIGHTGBM_DAYS} days" in auto.left_out_["lightgbm"]
    assert "at the oldest inner origin" in auto.left_out_["lightgbm"]
    scored = auto.scores_[auto.scores_["left_out"] == ""]
    assert "lightgbm" not in "+".join(scored["members"])  # no combination of what did not run
    row = auto.scores_.set_index("name").loc["lightgbm"]
    assert np.isnan(row["mase"]) and pd.isna(row["rank"])
    # Leaving it out is exactly the choice among the others: the same winner, scores and forecast.
    without = cheap_auto(lightgbm=False).fit(short)
    assert auto.winner_ == without.winner_
    pd.testing.assert_frame_equal(scored.reset_index(drop=True), without.scores_)
    forecast = auto.predict(14, LEVELS)
    pd.testing.assert_frame_equal(forecast, without.predict(14, LEVELS))
    assert np.isfinite(forecast[FORECAST_COLUMNS[2:]].to_numpy()).all()


def test_a_long_history_keeps_every_candidate(two_series):
    auto = cheap_auto().fit(two_series)
    assert auto.left_out_ == {} and (auto.scores_["left_out"] == "").all()
    assert auto.scores_["rank"].tolist() == list(range(1, len(auto.scores_) + 1))
    assert "lightgbm" in set(auto.scores_["name"])


def test_in_a_backtest_each_origin_chooses_among_what_its_own_past_allows(two_series):
    # Outer origins on both sides of LightGBM's threshold: the early ones leave it out, the late
    # ones score it, and scrambling every value after an origin changes nothing up to it.
    data = two_series[two_series["ds"] < two_series["ds"].min() + pd.Timedelta(days=330)]
    protocol = dict(horizon=14, n_origins=4, step=28, level=LEVELS)
    clear_memo()
    base = rolling_origin_backtest(cheap_auto(), data, **protocol)
    cutoffs = sorted(base["cutoff"].unique())
    table = selection_table(cheap_auto(), data, cutoffs)
    left_out = table[table["left_out"] != ""].groupby("cutoff")["name"].apply(set)
    assert left_out.get(cutoffs[0]) == {"lightgbm"} and cutoffs[-1] not in left_out.index
    # As the forecasting job reports it: the final fit's choice (cutoff empty) counts as one more.
    final = cheap_auto().fit(data).scores_.assign(cutoff=pd.NaT)
    lines = left_out_lines(pd.concat([table, final[table.columns]], ignore_index=True))
    assert len(lines) == 1 and lines[0].startswith("lightgbm left out: needs 210 days")
    assert f"({len(left_out)} of {len(cutoffs) + 1} choices)" in lines[0]
    first = cutoffs[0]
    scrambled = data.copy()
    after = scrambled["ds"] > first
    scrambled.loc[after, "y"] = np.random.default_rng(0).integers(0, 1000, after.sum())
    clear_memo()
    again = rolling_origin_backtest(
        cheap_auto(), scrambled, **{**protocol, "n_origins": 1, "first_cutoff": first}
    )
    expected = base[base["cutoff"] == first][FORECAST_COLUMNS].reset_index(drop=True)
    pd.testing.assert_frame_equal(again[FORECAST_COLUMNS].reset_index(drop=True), expected)


def test_when_no_candidate_fits_one_error_names_the_settings(two_series):
    lightgbm_only = AutoForecaster({"lightgbm": candidates()["lightgbm"]}, n_origins=2, step=28, horizon=14)
    too_short = two_series[two_series["ds"] < two_series["ds"].min() + pd.Timedelta(days=240)]
    with pytest.raises(ValueError, match=r"least demanding candidate needs 210 .*lower model.n_origins"):
        lightgbm_only.fit(too_short)


@pytest.mark.slow
def test_the_default_command_trains_and_registers_on_a_one_year_csv(tmp_path, capsys):
    """The whole default (model=auto, its backtest, the gate, the champion) on 365 days of data."""
    import mlflow
    from mlflow import MlflowClient

    from forecasting.pipeline import train
    from tests.conftest import compose_config

    rng = np.random.default_rng(3)
    ds = pd.date_range("2023-01-01", periods=365, freq="D")
    year = pd.concat(
        pd.DataFrame({"unique_id": uid, "ds": ds, "y": rng.poisson(level, 365)})
        for uid, level in (("north", 100), ("south", 60))
    )
    path = tmp_path / "year.csv"
    year.to_csv(path, index=False)
    overrides = ["data=csv", f"data.path={path}", f"tracking.store_dir={tmp_path / 'store'}"]
    result = train(compose_config("forecast", overrides), tmp_path / "out")
    assert result.promoted and "lightgbm left out: needs 392 days" in capsys.readouterr().out
    selection = pd.read_csv(result.output_dir / "auto_selection.csv")
    assert set(selection.loc[selection["left_out"].notna(), "name"]) == {"lightgbm"}
    name = result.model_uri.removeprefix("models:/").split("@")[0]  # registered under data.name
    description = MlflowClient(mlflow.get_tracking_uri()).get_model_version(name, "1").description
    assert "Auto: chose" in description and "lightgbm left out" in description
