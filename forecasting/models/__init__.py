"""Daily-demand forecasters sharing one interface: ``fit(df)`` then ``predict(h, level, future)``."""

from forecasting.models.arima import ArimaRegression
from forecasting.models.auto import AutoForecaster
from forecasting.models.base import DEFAULT_LEVELS, Forecaster, interval_columns
from forecasting.models.conformal import BacktestConformal
from forecasting.models.ensemble import Ensemble
from forecasting.models.ets import ETS
from forecasting.models.glm import CalendarGLM
from forecasting.models.lightgbm_global import GlobalLightGBM
from forecasting.models.per_key import PerKey
from forecasting.models.regressors import FutureRegressorError
from forecasting.models.seasonal_naive import SeasonalNaive

__all__ = [
    "DEFAULT_LEVELS",
    "ETS",
    "ArimaRegression",
    "AutoForecaster",
    "BacktestConformal",
    "CalendarGLM",
    "Ensemble",
    "Forecaster",
    "FutureRegressorError",
    "GlobalLightGBM",
    "PerKey",
    "SeasonalNaive",
    "interval_columns",
]
