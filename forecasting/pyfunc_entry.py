"""MLflow "models from code" entry: names the pyfunc class without pickling it."""

from mlflow.models import set_model

from forecasting.pyfunc_model import DailyForecastModel

set_model(DailyForecastModel())
