"""Forecasters follow the interface and the global LightGBM beats the seasonal naive baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from forecasting.backtest import backtest_cutoffs, rolling_origin_backtest
from forecasting.metrics import summary_metrics
from forecasting.models import (
    ETS,
    ArimaRegression,
    CalendarGLM,
    Ensemble,
    GlobalLightGBM,
    SeasonalNaive,
    interval_columns,
)
from mlops.errors import ConfigError

LEVELS = [80, 95]


def _check_forecast_frame(forecast: pd.DataFrame, history: pd.DataFrame, h: int) -> None:
    assert list(forecast.columns) == ["unique_id", "ds", "mean", *interval_columns(LEVELS)]
    assert len(forecast) == history["unique_id"].nunique() * h
    first = forecast.groupby("unique_id")["ds"].min()
    last_seen = history.groupby("unique_id")["ds"].max()
    assert (first == last_seen + pd.Timedelta(days=1)).all()
    assert (forecast["lo_95"] <= forecast["lo_80"]).all()
    assert (forecast["lo_80"] <= forecast["mean"]).all() and (forecast["mean"] <= forecast["hi_80"]).all()
    assert (forecast["hi_80"] <= forecast["hi_95"]).all() and (forecast["lo_95"] >= 0).all()


def test_seasonal_naive_repeats_last_week_and_widens(small_counts):
    forecast = SeasonalNaive().fit(small_counts).predict(14, LEVELS)
    _check_forecast_frame(forecast, small_counts, 14)
    series = small_counts[small_counts["unique_id"] == "city/C2"]
    mine = forecast[forecast["unique_id"] == "city/C2"]
    np.testing.assert_array_equal(mine["mean"].to_numpy()[:7], series["y"].to_numpy()[-7:])
    np.testing.assert_array_equal(mine["mean"].to_numpy()[7:], series["y"].to_numpy()[-7:])
    width = (mine["hi_80"] - mine["mean"]).to_numpy()
    assert width[7] == pytest.approx(width[0] * np.sqrt(2))


def test_lightgbm_follows_interface_and_is_reproducible(small_counts):
    model = GlobalLightGBM(n_estimators=50, calibration_days=91)
    assert clone(model).get_params() == model.get_params()
    first = model.fit(small_counts).predict(21, LEVELS)
    _check_forecast_frame(first, small_counts, 21)
    again = clone(model).fit(small_counts).predict(21, LEVELS)
    pd.testing.assert_frame_equal(first, again)


def test_lightgbm_beats_seasonal_naive_and_nears_the_oracle(small_counts):
    results = {}
    for name, model in {"naive": SeasonalNaive(), "lgbm": GlobalLightGBM(n_estimators=150)}.items():
        backtest = rolling_origin_backtest(
            model, small_counts, horizon=28, n_origins=3, step=28, level=LEVELS, progress=False
        )
        results[name] = summary_metrics(backtest, LEVELS)
    assert results["lgbm"]["mase"] < 0.85 * results["naive"]["mase"]
    assert results["lgbm"]["mae_vs_oracle"] < 1.08
    assert 0.70 < results["lgbm"]["coverage_80"] < 0.90


def test_backtest_frame_and_origins(small_counts):
    backtest = rolling_origin_backtest(
        SeasonalNaive(), small_counts, horizon=7, n_origins=3, step=5, level=LEVELS, progress=False
    )
    last = small_counts["ds"].max()
    expected = [last - pd.Timedelta(days=7 + 5 * k) for k in (2, 1, 0)]
    assert sorted(backtest["cutoff"].unique()) == expected
    assert set(backtest["h"]) == set(range(1, 8))
    assert len(backtest) == 3 * 7 * small_counts["unique_id"].nunique()
    assert (backtest["scale"] > 0).all() and backtest["y_expected"].notna().all()


def test_backtest_rejects_impossible_protocol(small_counts):
    with pytest.raises(ConfigError, match="n_origins"):
        backtest_cutoffs(small_counts["ds"].max(), 7, 0, 7)
    with pytest.raises(ConfigError, match="training data"):
        rolling_origin_backtest(
            SeasonalNaive(), small_counts, horizon=7, n_origins=400, step=7, progress=False
        )


@pytest.mark.parametrize(
    "model",
    [CalendarGLM(window_days=730), ETS(window_days=365), ArimaRegression(window_days=365, annual_order=2)],
    ids=["glm", "ets", "arima"],
)
def test_local_models_follow_the_interface(small_counts, model):
    two = small_counts[small_counts["unique_id"].isin(["city/C2", "moor/C4"])]
    forecast = model.fit(two).predict(10, LEVELS)
    _check_forecast_frame(forecast, two, 10)
    city = forecast[forecast["unique_id"] == "city/C2"]
    assert city["mean"].between(150, 450).all()  # near the series' level, not a runaway


def test_glm_beats_seasonal_naive(small_counts):
    scores = {}
    for name, model in {"naive": SeasonalNaive(), "glm": CalendarGLM()}.items():
        backtest = rolling_origin_backtest(
            model, small_counts, horizon=28, n_origins=3, step=28, level=LEVELS, progress=False
        )
        scores[name] = summary_metrics(backtest, LEVELS)
    assert scores["glm"]["mase"] < 0.85 * scores["naive"]["mase"]
    assert 0.72 < scores["glm"]["coverage_80"] < 0.88 and 0.9 < scores["glm"]["coverage_95"] < 0.99


def test_ensemble_combines_means_and_bounds(small_counts):
    members = [SeasonalNaive(), CalendarGLM(window_days=730)]
    forecasts = [clone(m).fit(small_counts).predict(7, LEVELS) for m in members]
    mean = Ensemble(members).fit(small_counts).predict(7, LEVELS)
    _check_forecast_frame(mean, small_counts, 7)
    for column in ["mean", "lo_80", "hi_95"]:
        np.testing.assert_allclose(mean[column], (forecasts[0][column] + forecasts[1][column]) / 2)
    weighted = Ensemble(members, weights=[3, 1]).fit(small_counts).predict(7, LEVELS)
    np.testing.assert_allclose(weighted["mean"], 0.75 * forecasts[0]["mean"] + 0.25 * forecasts[1]["mean"])
    with pytest.raises(ValueError, match="one non-negative number per member"):
        Ensemble(members, weights=[1]).fit(small_counts)
    assert clone(Ensemble(members)).members[1].window_days == 730


def test_backtest_from_a_fixed_first_origin(small_counts):
    backtest = rolling_origin_backtest(
        SeasonalNaive(),
        small_counts,
        horizon=7,
        n_origins=3,
        step=7,
        first_cutoff="2023-01-01",
        progress=False,
    )
    assert sorted(backtest["cutoff"].unique()) == list(
        pd.to_datetime(["2023-01-01", "2023-01-08", "2023-01-15"])
    )
    with pytest.raises(ConfigError, match="runs past the data"):
        backtest_cutoffs(small_counts["ds"].max(), 84, 3, 7, first_cutoff="2023-12-01")


def test_arima_keeps_only_the_last_state_and_forecasts_as_the_full_fit(small_counts):
    # The fit stores no per-day filtered, predicted or smoothed states (2.7 GB for 28 series of
    # three years once), yet forecasts exactly what statsmodels' full fit of the same model does.
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    one = small_counts[small_counts["unique_id"] == "city/C2"].tail(400)
    model = ArimaRegression(window_days=None, annual_order=1, method="statespace").fit(one)
    state, columns = model.fitted_["city/C2"]
    assert state.filter_results.predicted_state_cov.shape[-1] < 5 and state.smoothed_state is None
    ds = pd.Series(pd.date_range(one["ds"].max() + pd.Timedelta(days=1), periods=14))
    design = model._design(one["ds"].reset_index(drop=True), np.empty((len(one), 0)))
    full = SARIMAX(one["y"].to_numpy(float), exog=design[:, columns], order=(1, 1, 1), mle_regression=False)
    expected = full.fit(disp=False).get_forecast(14, exog=model._design(ds, np.empty((14, 0)))[:, columns])
    forecast = model.predict(14, [80])
    np.testing.assert_allclose(forecast["mean"], expected.predicted_mean, rtol=1e-6)
    np.testing.assert_allclose(forecast["hi_80"], expected.conf_int(alpha=0.2)[:, 1], rtol=1e-6)


def test_arima_estimators_forecast_alike(small_counts):
    # The faster innovations-algorithm fit estimates the same model as the joint state-space fit
    # (the default): on a busy series the forecasts agree closely, and its intervals (without the
    # regression coefficients' uncertainty) are a little narrower, most on rare days (New Year).
    one = small_counts[small_counts["unique_id"] == "city/C2"]
    fast = ArimaRegression(window_days=730, method="innovations_mle").fit(one).predict(28, LEVELS)
    joint = ArimaRegression(window_days=730).fit(one).predict(28, LEVELS)
    np.testing.assert_allclose(fast["mean"], joint["mean"], rtol=0.015)
    width = (fast["hi_80"] - fast["lo_80"]) / (joint["hi_80"] - joint["lo_80"])
    assert width.median() > 0.9 and width.between(0.75, 1.0).all()


def test_ets_heuristic_start_forecasts_as_the_estimated_one_and_short_windows_still_fit(small_counts):
    # The initial states from the first seasons (the default, 5-10 times cheaper) barely matter
    # after a year of smoothing; a window too short for them estimates them instead of failing.
    one = small_counts[small_counts["unique_id"] == "city/C2"]
    fast = ETS(window_days=365).fit(one).predict(28, LEVELS)
    full = ETS(window_days=365, initialization="estimated").fit(one).predict(28, LEVELS)
    np.testing.assert_allclose(fast["mean"], full["mean"], rtol=0.05)
    short = one.head(15)
    np.testing.assert_allclose(
        ETS().fit(short).predict(7, LEVELS)["mean"],
        ETS(initialization="estimated").fit(short).predict(7, LEVELS)["mean"],
    )


class _ThreadRecordingGLM(CalendarGLM):
    """A CalendarGLM that notes the thread pools' sizes while it fits and forecasts each series."""

    def _fit_series(self, ds, y, exog):
        from threadpoolctl import threadpool_info

        self.threads_seen_ = [
            *getattr(self, "threads_seen_", []),
            *(p["num_threads"] for p in threadpool_info()),
        ]
        return super()._fit_series(ds, y, exog)

    def _forecast_series(self, state, ds, exog, level):
        from threadpoolctl import threadpool_info

        self.threads_seen_ += [p["num_threads"] for p in threadpool_info()]
        return super()._forecast_series(state, ds, exog, level)


def test_per_series_models_fit_with_one_thread_as_on_a_dask_worker(small_counts):
    # The GLM's loss runs on OpenMP threads: two of them on a small series spin against other work
    # (4 x the wall time on a loaded machine); a Dask worker has one (OMP_NUM_THREADS=1).
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(2):  # whatever the process's default, two threads outside the fits
        outside = [p["num_threads"] for p in threadpool_info()]
        model = _ThreadRecordingGLM(window_days=365).fit(small_counts)
        model.predict(7, LEVELS)
        after = [p["num_threads"] for p in threadpool_info()]
    assert any(n > 1 for n in outside) and after == outside  # pools present, and restored afterwards
    assert model.threads_seen_ and set(model.threads_seen_) == {1}
