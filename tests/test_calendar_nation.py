"""One setting, calendar.nation, sets the bank holidays of every model, member and candidate."""

from __future__ import annotations

import pandas as pd
import pytest

from forecasting.calendar import is_bank_holiday
from forecasting.config_checks import check_config
from forecasting.pipeline import build_forecaster
from mlops.errors import ConfigError
from tests.conftest import compose_config

MODELS_WITH_A_CALENDAR = ["auto", "ensemble", "conformal", "glm", "arima", "lightgbm"]


def nations(model) -> list[str]:
    """The ``nation`` of every model inside ``model`` (members, candidates, wrapped model)."""
    found = [model.nation] if hasattr(model, "nation") else []
    for value in model.get_params(deep=False).values():
        inner = list(value.values()) if isinstance(value, dict) else value
        inner = inner if isinstance(inner, list | tuple) else [inner]
        for item in inner:
            if hasattr(item, "get_params") and hasattr(item, "fit"):
                found += nations(item)
    return found


@pytest.mark.parametrize("name", MODELS_WITH_A_CALENDAR)
def test_every_model_inside_follows_calendar_nation(name):
    cfg = compose_config("forecast", [f"model={name}", "calendar.nation=wales"])
    check_config(cfg)
    found = nations(build_forecaster(cfg.model))
    assert found and set(found) == {"wales"}
    # The default is England, for every model inside too.
    assert set(nations(build_forecaster(compose_config("forecast", [f"model={name}"]).model))) == {"england"}


def test_an_unknown_nation_is_one_line_naming_the_key():
    with pytest.raises(ConfigError, match=r"calendar\.nation=france") as info:
        check_config(compose_config("forecast", ["calendar.nation=france"]))
    assert "\n" not in str(info.value) and "wales" in str(info.value)


def test_the_nations_differ_where_their_bank_holidays_do():
    # 2 January 2024 is a bank holiday in Scotland only, 12 July 2023 in Northern Ireland only.
    days = pd.to_datetime(["2024-01-02", "2023-07-12"])
    assert list(is_bank_holiday(days, "scotland")) == [True, False]
    assert list(is_bank_holiday(days, "northern_ireland")) == [False, True]
    assert list(is_bank_holiday(days, "england")) == list(is_bank_holiday(days, "wales")) == [False, False]
