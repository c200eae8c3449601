"""Extra regressors (x_* columns): models learn from them, need their future values, and say so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from sklearn.base import clone

from forecasting.backtest import rolling_origin_backtest
from forecasting.io import read_population
from forecasting.models import (
    ETS,
    ArimaRegression,
    CalendarGLM,
    Ensemble,
    Forecaster,
    GlobalLightGBM,
    SeasonalNaive,
)
from forecasting.models.regressors import FutureRegressorError
from forecasting.requests import ForecastRequestError, forecast_for_requests
from forecasting.synthetic import World, simulate_daily_counts
from tests.conftest import CONF_DIR, ROOT, compose_config

LEVELS = [80, 95]
CUTOFF, H = pd.Timestamp("2021-06-15"), 56  # a summer's worth of hot days after the origin


@pytest.fixture(scope="module")
def hot_world() -> pd.DataFrame:
    """Two series of a world where heat drives demand hard (+4 % per degree above 18 C)."""
    spec = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "generate.yaml").world, resolve=True)
    spec["areas"], spec["end"] = spec["areas"][:1], "2021-12-31"
    spec["temperature"] = {"enabled": True, "heat_threshold_c": 18.0, "heat_effect_per_c": 0.04}
    national = read_population(ROOT / "data/external/ons_population/england_npp2018_principal_5yr.csv")
    counts = simulate_daily_counts(World.from_dict(spec), national)
    counts = counts[counts["unique_id"].isin(["city/C2", "city/C3"])]
    return counts[["unique_id", "ds", "y", "y_expected", "x_temperature"]].reset_index(drop=True)


@pytest.fixture(scope="module")
def split(hot_world):
    train = hot_world[hot_world["ds"] <= CUTOFF]
    test = hot_world[(hot_world["ds"] > CUTOFF) & (hot_world["ds"] <= CUTOFF + pd.Timedelta(days=H))]
    return train, test


def _lightgbm() -> GlobalLightGBM:
    return GlobalLightGBM(n_estimators=100, calibration_days=91, n_jobs=1)


def _mae_vs_truth(model: Forecaster, train: pd.DataFrame, test: pd.DataFrame) -> float:
    forecast = model.fit(train).predict(H, LEVELS, future=test[["unique_id", "ds", "x_temperature"]])
    scored = test.merge(forecast, on=["unique_id", "ds"], validate="one_to_one")
    assert len(scored) == len(test)
    return float(np.abs(scored["mean"] - scored["y_expected"]).mean())


@pytest.mark.parametrize(
    "make",
    [
        lambda: CalendarGLM(window_days=730),
        lambda: ArimaRegression(window_days=365, annual_order=2),
        _lightgbm,
        lambda: Ensemble([_lightgbm(), CalendarGLM(window_days=730)]),
    ],
    ids=["glm", "arima", "lightgbm", "ensemble"],
)
def test_temperature_brings_the_forecast_closer_to_the_truth(split, make):
    train, test = split
    with_x = _mae_vs_truth(make(), train, test)
    without = _mae_vs_truth(make(), train.drop(columns="x_temperature"), test)
    assert with_x < 0.8 * without, (with_x, without)


@pytest.mark.parametrize("model", [SeasonalNaive(), ETS(window_days=365)], ids=["naive", "ets"])
def test_models_without_regressors_ignore_them(split, model):
    train, test = split
    fitted = clone(model).fit(train)
    assert fitted.fitted_regressors == []
    plain = clone(model).fit(train.drop(columns="x_temperature")).predict(7, LEVELS)
    pd.testing.assert_frame_equal(fitted.predict(7, LEVELS), plain)
    pd.testing.assert_frame_equal(fitted.predict(7, LEVELS, future=test), plain)


def test_missing_future_values_say_what_to_send(split):
    train, test = split
    model = CalendarGLM(window_days=365).fit(train)
    assert model.fitted_regressors == ["x_temperature"]
    with pytest.raises(FutureRegressorError, match=r"no future values given.*x_temperature.*2021-06-16 to"):
        model.predict(7, LEVELS)
    with pytest.raises(FutureRegressorError, match=r"lack column\(s\) \['x_temperature'\]"):
        model.predict(7, LEVELS, future=test.drop(columns="x_temperature"))
    with pytest.raises(FutureRegressorError, match=r"no number .* 1 of the 14 .*'city/C3' on 2021-06-18"):
        model.predict(7, LEVELS, future=test[(test["ds"] != "2021-06-18") | (test["unique_id"] != "city/C3")])
    clash = pd.concat([test, test.head(1).assign(x_temperature=-40.0)])
    with pytest.raises(FutureRegressorError, match="two different values"):
        model.predict(7, LEVELS, future=clash)
    later = test[test["ds"] > "2021-06-16"]  # extra rows are fine, a missing first day is not
    with pytest.raises(FutureRegressorError, match="2021-06-16"):
        model.predict(7, LEVELS, future=later)


def test_fitted_state_and_clone_follow_scikit_learn(split):
    train, test = split
    model = Ensemble([SeasonalNaive(), CalendarGLM(window_days=365)])
    fitted = clone(model).fit(train)
    assert fitted.regressors_ == ["x_temperature"] and not hasattr(clone(fitted), "regressors_")
    assert clone(fitted).get_params()["members"][1].window_days == 365
    naive_only = Ensemble([SeasonalNaive()]).fit(train)
    assert naive_only.fitted_regressors == [] and len(naive_only.predict(3, LEVELS)) == 6


def test_forecast_uses_the_values_it_is_given(split):
    train, test = split
    model = _lightgbm().fit(train)
    future = test[["unique_id", "ds", "x_temperature"]]
    mild = model.predict(14, LEVELS, future=future.assign(x_temperature=15.0))
    heatwave = model.predict(14, LEVELS, future=future.assign(x_temperature=30.0))
    assert (heatwave["mean"] > 1.1 * mild["mean"]).all()
    one = model.predict(14, LEVELS, future=future, series=["city/C3"])
    both = model.predict(14, LEVELS, future=future)
    pd.testing.assert_frame_equal(one, both[both["unique_id"] == "city/C3"].reset_index(drop=True))


class _EchoTemperature(Forecaster):
    """Forecasts the temperature it is given, to see what a backtest passes."""

    uses_regressors = True

    def fit(self, df):
        self._remember_history(df)
        return self

    def _predict(self, frame, h, level):
        out = frame[["unique_id", "ds"]].assign(mean=frame["x_temperature"].to_numpy())
        for lv in level:
            out[f"lo_{lv}"], out[f"hi_{lv}"] = out["mean"], out["mean"]
        return out


def test_backtest_passes_the_actual_values_of_each_test_window(hot_world):
    backtest = rolling_origin_backtest(
        _EchoTemperature(), hot_world, horizon=14, n_origins=3, step=10, level=LEVELS, progress=False
    )
    assert len(backtest) == 3 * 14 * 2
    np.testing.assert_array_equal(backtest["mean"], backtest["x_temperature"])


def test_requests_carry_regressor_values_up_to_the_furthest_day(split):
    train, test = split
    model = CalendarGLM(window_days=365).fit(train)
    days = pd.date_range(CUTOFF + pd.Timedelta(days=1), periods=5)
    values = test.set_index(["unique_id", "ds"])["x_temperature"]
    rows = pd.DataFrame({"unique_id": "city/C2", "ds": days})
    rows["x_temperature"] = values.loc[list(zip(rows["unique_id"], rows["ds"], strict=True))].to_numpy()
    answer = forecast_for_requests(model, rows, 84, LEVELS)
    direct = model.predict(5, LEVELS, future=test, series=["city/C2"])
    np.testing.assert_allclose(answer["mean"], direct["mean"])
    # Series asked up to different days are each forecast up to their own furthest day.
    other = rows.head(2).assign(unique_id="city/C3")
    mixed = forecast_for_requests(model, pd.concat([rows, other]), 84, LEVELS)
    assert mixed["mean"].notna().all() and len(mixed) == 7

    with pytest.raises(ForecastRequestError, match=r"lacks regressor column\(s\) \['x_temperature'\]"):
        forecast_for_requests(model, rows.drop(columns="x_temperature"), 84, LEVELS)
    with pytest.raises(ForecastRequestError, match=r"no number for \['x_temperature'\] on some day"):
        forecast_for_requests(model, rows.drop(index=2), 84, LEVELS)
    with pytest.raises(ForecastRequestError, match="no number"):
        forecast_for_requests(model, rows.assign(x_temperature=[20, None, 21, 22, 23]), 84, LEVELS)


def test_requests_to_a_model_without_regressors_need_none(split):
    train, _ = split
    model = CalendarGLM(window_days=365).fit(train.drop(columns="x_temperature"))
    rows = pd.DataFrame({"unique_id": ["city/C3"], "ds": [CUTOFF + pd.Timedelta(days=3)]})
    answer = forecast_for_requests(model, rows, 84, LEVELS)
    assert answer["mean"].notna().all()
    pd.testing.assert_frame_equal(
        answer, forecast_for_requests(model, rows.assign(x_temperature=1.0), 84, LEVELS)
    )


def test_cli_form_maps_a_column_to_a_regressor():
    cfg = compose_config(
        "forecast", ["data=csv", "data.path=calls.csv", "+data.columns.x_temperature=max_temp_c"]
    )
    assert cfg.data.columns.x_temperature == "max_temp_c"
    with pytest.raises(Exception, match=r"\+data.columns.x_temperature"):  # Hydra says to add the +
        compose_config(
            "forecast", ["data=csv", "data.path=calls.csv", "data.columns.x_temperature=max_temp_c"]
        )


def test_trained_model_serves_with_the_regressors_in_its_signature(tmp_path, hot_world):
    import mlflow
    from mlflow.models import get_model_info

    from forecasting.pipeline import train
    from tests.conftest import fast_forecast_overrides

    path = tmp_path / "calls.csv"
    hot_world.rename(columns={"x_temperature": "max_temp_c"}).drop(columns="y_expected").to_csv(
        path, index=False
    )
    overrides = ["data=csv", "+data.columns.x_temperature=max_temp_c"]
    cfg = compose_config("forecast", [*fast_forecast_overrides(path, tmp_path / "store", "glm"), *overrides])
    result = train(cfg, tmp_path / "out")
    assert (result.output_dir / "forecast.png").is_file() and not (
        result.output_dir / "forecast.csv"
    ).exists()
    assert "x_temperature" in get_model_info(result.model_uri).signature.inputs.input_names()

    model = mlflow.pyfunc.load_model(result.model_uri)
    days = pd.date_range(hot_world["ds"].max() + pd.Timedelta(days=1), periods=3)
    request = pd.DataFrame({"unique_id": "city/C2", "ds": days, "x_temperature": [15.0, 15.0, 15.0]})
    mild = model.predict(request)
    heatwave = model.predict(request.assign(x_temperature=30.0))
    assert (heatwave["mean"] > 1.1 * mild["mean"]).all()
    with pytest.raises(mlflow.exceptions.MlflowException, match="x_temperature"):
        model.predict(request.drop(columns="x_temperature"))
    with pytest.raises(mlflow.exceptions.MlflowException, match="no number"):
        model.predict(request.iloc[[0, 2]])  # the second day is missing
