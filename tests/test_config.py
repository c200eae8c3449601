"""The forecasting config composes, and overrides reach the objects they configure."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigAttributeError

from forecasting.config_checks import check_config
from forecasting.models import Ensemble, GlobalLightGBM, SeasonalNaive
from forecasting.pipeline import build_forecaster
from mlops.errors import ConfigError
from tests.conftest import compose_config


def test_defaults_compose_to_auto_on_synthetic_with_sqlite():
    from forecasting.models import AutoForecaster

    cfg = compose_config("forecast", [])
    assert cfg.data.name == "synthetic" and cfg.tracking.uri is None
    assert cfg.registry.model_name == "daily-demand-synthetic"
    model = build_forecaster(cfg.model)
    assert isinstance(model, AutoForecaster) and isinstance(model.candidates["lightgbm"], GlobalLightGBM)


def test_group_and_value_overrides():
    cfg = compose_config(
        "forecast", ["model=seasonal_naive", "model.season_length=14", "data=swast", "backtest.horizon=84"]
    )
    model = build_forecaster(cfg.model)
    assert isinstance(model, SeasonalNaive) and model.season_length == 14
    assert cfg.data.columns.ds == "Actual_dt" and list(cfg.data.exclude_series) == ["Trust", "OOA"]
    assert cfg.registry.model_name == "daily-demand-swast"
    assert cfg.backtest.horizon == 84


def test_mistyped_overrides_are_refused():
    with pytest.raises(ConfigCompositionException, match="model/lightgbmm"):
        compose_config("forecast", ["model=lightgbmm"])
    with pytest.raises(ConfigCompositionException):
        compose_config("forecast", ["backtest.horizn=7"])


def test_unknown_model_parameter_is_a_config_error():
    cfg = compose_config("forecast", ["+model.n_trees=5"])
    with pytest.raises(ConfigError, match="cannot build model"):
        build_forecaster(cfg.model)


@pytest.mark.parametrize(
    "override, message", [("levels=[80,120]", "between 0 and 100"), ("serving.max_horizon=0", "max_horizon")]
)
def test_impossible_values_are_config_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        check_config(compose_config("forecast", [override]))


def test_missing_path_for_own_csv_is_reported():
    cfg = compose_config("forecast", ["data=csv"])
    with pytest.raises(Exception, match="path") as info:
        _ = cfg.data.path
    assert not isinstance(info.value, ConfigAttributeError)


@pytest.mark.parametrize("name", ["seasonal_naive", "lightgbm", "glm", "ets", "arima", "ensemble"])
def test_every_model_config_builds(name):
    model = build_forecaster(compose_config("forecast", [f"model={name}"]).model)
    assert hasattr(model, "fit") and hasattr(model, "predict")


def test_ensemble_members_are_models():
    from forecasting.models import CalendarGLM

    model = build_forecaster(compose_config("forecast", ["model=ensemble", "model.combine=median"]).model)
    assert isinstance(model, Ensemble) and model.combine == "median"
    assert isinstance(model.members[0], GlobalLightGBM) and isinstance(model.members[1], CalendarGLM)
