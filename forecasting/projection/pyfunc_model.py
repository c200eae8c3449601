"""The projection as an MLflow pyfunc: a simulation sends ``area, date, scenario`` rows (pipeline layer)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

import forecasting
import mlops
from forecasting.projection.scenario import Scenario
from forecasting.projection.serving import ProjectionRequestError, answer_requests
from mlops.model_logging import log_code_model

if TYPE_CHECKING:  # serving must not import the fitting stack (statsmodels) it does not need
    from forecasting.projection.projector import Projection

DAILY_COLUMNS = ("area", "scenario", "ds", "mean", "sd")


class ProjectionModel(mlflow.pyfunc.PythonModel):
    """Serves the projected daily table; categories and dispositions are split at request time.

    State lives in two artifacts: the daily table (Parquet) and ``serving.json`` with the base
    year, quantile labels and each scenario's assumptions, so this class carries nothing when pickled.
    A third, ``workforce`` (when the run computed it), holds the workforce table by area, scenario,
    year and measure: ``mlflow.pyfunc.load_model(uri).unwrap_python_model().workforce``.
    """

    def load_context(self, context):
        self.daily = pd.read_parquet(context.artifacts["daily"])
        settings = json.loads(Path(context.artifacts["serving"]).read_text())
        self.base_year = int(settings["base_year"])
        self.labels = list(settings["labels"])
        self.scenarios = {spec["name"]: Scenario.from_dict(spec) for spec in settings["scenarios"]}
        path = context.artifacts.get("workforce")
        self.workforce = pd.read_parquet(path) if path else None

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        try:
            return answer_requests(self.daily, self.scenarios, self.base_year, self.labels, model_input)
        except ProjectionRequestError as error:
            raise MlflowException(str(error), error_code=INVALID_PARAMETER_VALUE) from error


def log_projection_model(
    projection: Projection,
    work_dir: Path,
    metadata: dict | None = None,
    workforce: pd.DataFrame | None = None,
) -> mlflow.models.model.ModelInfo:
    """Log the projection as a pyfunc named ``model`` in the active run, with signature and example.

    ``metadata`` is the served contract (areas, scenarios, years, outputs); ``workforce`` the
    workforce table by area, scenario, year and measure, kept with the model.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    labels = projection.settings.labels
    daily = projection.daily[[*DAILY_COLUMNS, *labels]]
    daily_path = work_dir / "daily.parquet"
    daily.to_parquet(daily_path, index=False)
    serving_path = work_dir / "serving.json"
    serving = {
        "base_year": projection.settings.base_year,
        "labels": labels,
        "scenarios": [asdict(sc) for sc in projection.scenarios],
    }
    serving_path.write_text(json.dumps(serving, indent=2))
    first = daily.iloc[0]
    request = pd.DataFrame(
        {
            "area": [first["area"]] * 2,
            "date": pd.to_datetime([first["ds"], daily["ds"].max()]),
            "scenario": [first["scenario"]] * 2,
        }
    )
    scenarios = {sc.name: sc for sc in projection.scenarios}
    artifacts = {"daily": str(daily_path), "serving": str(serving_path)}
    if workforce is not None:
        workforce.to_parquet(work_dir / "workforce.parquet", index=False)
        artifacts["workforce"] = str(work_dir / "workforce.parquet")
    answer = answer_requests(daily, scenarios, projection.settings.base_year, labels, request)
    signature = infer_signature(request, answer)
    return log_code_model(
        Path(__file__).with_name("pyfunc_entry.py"),
        artifacts=artifacts,
        signature=signature,
        input_example=request,
        packages=["mlflow", "pandas", "numpy", "pyarrow", "holidays"],
        code_packages=[forecasting, mlops],
        metadata=metadata,
    )
