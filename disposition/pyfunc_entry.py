"""MLflow "models from code" entry: names the pyfunc class without pickling it."""

from mlflow.models import set_model

from disposition.pyfunc_model import RemoteClosureModel

set_model(RemoteClosureModel())
