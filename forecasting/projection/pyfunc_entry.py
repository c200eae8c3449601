"""MLflow "models from code" entry for the projection: names the pyfunc class without pickling it."""

from mlflow.models import set_model

from forecasting.projection.pyfunc_model import ProjectionModel

set_model(ProjectionModel())
