"""Logging a toolkit model to MLflow the same way for every app.

Every registered model is "models from code" (the wrapper class is imported from its entry
file, never unpickled), carries its input signature and example, pins the packages it needs to
load, and ships the toolkit's own packages so a consumer needs nothing of ours installed.
"""

from __future__ import annotations

import warnings
from importlib.metadata import version
from pathlib import Path
from types import ModuleType

import mlflow
import pandas as pd
from mlflow.models import ModelSignature


def pinned(packages: list[str]) -> list[str]:
    """``name==version`` for each package, read from this environment."""
    return [f"{name}=={version(name)}" for name in packages]


def log_code_model(
    entry_file: Path,
    artifacts: dict[str, str],
    signature: ModelSignature,
    input_example: pd.DataFrame,
    packages: list[str],
    code_packages: list[ModuleType],
    metadata: dict | None = None,
) -> mlflow.models.model.ModelInfo:
    """Log a pyfunc named ``model`` in the active run.

    Parameters
    ----------
    entry_file : Path
        File that calls ``mlflow.models.set_model`` with the wrapper instance.
    artifacts : dict
        Files or folders the wrapper's ``load_context`` reads.
    signature, input_example
        The request schema MLflow enforces, and a made-up request (never patient rows).
    packages : list of str
        PyPI packages needed to load and call the model; pinned to this environment's versions.
    code_packages : list of module
        The toolkit's packages the wrapper imports; copied into the model.
    metadata : dict, optional
        The served contract (see :mod:`mlops.contract`), written to the MLmodel file where
        ``mlflow.models.get_model_info(uri).metadata`` reads it.
    """
    with warnings.catch_warnings():
        # Requests are validated by the explicit signature, not by type hints on `predict`.
        warnings.filterwarnings("ignore", message=".*type hint.*", category=UserWarning)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=str(entry_file),
            artifacts=artifacts,
            signature=signature,
            input_example=input_example,
            pip_requirements=pinned(packages),
            code_paths=[str(Path(module.__file__).parent) for module in code_packages],
            metadata=metadata,
        )
