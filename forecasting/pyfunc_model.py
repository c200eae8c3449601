"""The daily forecast as an MLflow pyfunc: other services send ``unique_id, ds`` (and ``x_*``) rows."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

import forecasting
import mlops
from forecasting.data import future_dates
from forecasting.models.base import Forecaster
from forecasting.requests import ForecastRequestError, forecast_for_requests
from mlops.model_logging import log_code_model


class DailyForecastModel(mlflow.pyfunc.PythonModel):
    """Loads a fitted forecaster and answers requests for days after its training data.

    State lives in two artifacts (the pickled forecaster and ``serving.json`` with the maximum
    horizon and interval levels), so this class itself carries nothing when pickled.
    """

    def load_context(self, context):
        self.forecaster: Forecaster = joblib.load(context.artifacts["forecaster"])
        settings = json.loads(Path(context.artifacts["serving"]).read_text())
        self.max_horizon = int(settings["max_horizon"])
        self.levels = [int(lv) for lv in settings["levels"]]

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        try:
            return forecast_for_requests(self.forecaster, model_input, self.max_horizon, self.levels)
        except ForecastRequestError as error:
            raise MlflowException(str(error), error_code=INVALID_PARAMETER_VALUE) from error


def log_forecast_model(
    forecaster: Forecaster,
    max_horizon: int,
    levels: list[int],
    work_dir: Path,
    history: pd.DataFrame | None = None,
    metadata: dict | None = None,
) -> mlflow.models.model.ModelInfo:
    """Log ``forecaster`` as a pyfunc named ``model`` in the active run, with signature and example.

    A model fitted with ``x_*`` regressors needs ``history`` (its training data): the input
    example carries each series' last observed regressor values, so that the signature lists
    the regressor columns a request must send. ``metadata`` is the served contract.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    forecaster_path = work_dir / "forecaster.joblib"
    joblib.dump(forecaster, forecaster_path)
    serving_path = work_dir / "serving.json"
    serving_path.write_text(json.dumps({"max_horizon": max_horizon, "levels": levels}))
    request = _example_request(forecaster, history)
    signature = infer_signature(request, forecast_for_requests(forecaster, request, max_horizon, levels))
    return log_code_model(
        Path(__file__).with_name("pyfunc_entry.py"),
        artifacts={"forecaster": str(forecaster_path), "serving": str(serving_path)},
        signature=signature,
        input_example=request,
        packages=[
            "mlflow",
            "pandas",
            "numpy",
            "scikit-learn",
            "lightgbm",
            "scipy",
            "statsmodels",
            "holidays",
            "joblib",
        ],
        code_packages=[forecasting, mlops],
        metadata=metadata,
    )


def _example_request(forecaster: Forecaster, history: pd.DataFrame | None) -> pd.DataFrame:
    """The first two days after the data for two series, with regressor values if the model has any."""
    series = list(forecaster.last_dates_.index[:2])
    request = future_dates(forecaster.last_dates_[series], 2)
    regressors = forecaster.fitted_regressors
    if regressors:
        if history is None:
            raise ValueError(f"the model uses regressors {regressors}: pass its training data as history")
        # Only an example of the columns and types: real requests send forecast values.
        last = history.sort_values("ds").groupby("unique_id")[regressors].last()
        request = request.join(last, on="unique_id")
    return request
