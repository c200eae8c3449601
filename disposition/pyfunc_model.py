"""The remote-closure scorer as an MLflow pyfunc: a frame of calls in, recommendations out.

Contract
--------
Input: one row per call with the columns in the model's signature (features, the call date-time
when hour/weekday are used, and the hard-rule columns). Missing values and categories never seen in
training are scored; a missing column, a value of the wrong type or an impossible value (see
:meth:`~disposition.scorer.RemoteClosureScorer.check_plausible`) is rejected with
``MlflowException(error_code=INVALID_PARAMETER_VALUE)`` (a 400 when served), whose message names
columns and row positions but never a request value.
Output: ``p_safe_remote`` (float), ``recommend_remote`` (bool), ``threshold`` (float, the call's
own; missing, JSON ``null``, when the call has none: withheld, or no threshold met the safety bound)
and ``reasons`` (str). Optional param ``reasons``: ``auto`` (default), ``exact``, ``fast`` or ``none``.

Nothing about real patients is logged: the input example is made up from per-column summaries
(:func:`made_up_example`), and the model's artifacts hold only fitted parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models.signature import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema

import disposition
import mlops
from disposition.scorer import RemoteClosureScorer, RequestError
from mlops.model_logging import log_code_model


class RemoteClosureModel(mlflow.pyfunc.PythonModel):
    """Loads a saved :class:`~disposition.scorer.RemoteClosureScorer` and answers requests."""

    def load_context(self, context):
        self.scorer = RemoteClosureScorer.load(Path(context.artifacts["scorer"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        mode = (params or {}).get("reasons") or "auto"
        try:
            # Impossible values (negative or infinite numbers, calls before 1900 or in the future)
            # are refused here, so a Python consumer is protected as well as an HTTP one.
            self.scorer.check_plausible(model_input)
            return self.scorer.predict(model_input, reasons=mode)
        except RequestError as error:
            raise MlflowException(str(error), error_code=INVALID_PARAMETER_VALUE) from error


def made_up_example(
    frame: pd.DataFrame,
    columns: list[str],
    date_column: str | None,
    n: int = 3,
    categorical: Sequence[str] = (),
) -> pd.DataFrame:
    """``n`` calls that exist in no data set: each column filled independently with a common value.

    Categories cycle through the most frequent levels, numbers through quartiles; the date is fixed.
    No row of the result is a patient's row, yet every value is plausible for the signature.
    """
    data = {}
    for column in columns:
        values = frame[column]
        if column == date_column:
            data[column] = pd.date_range("2024-01-15 09:30", periods=n, freq="5h")
        elif column in categorical and pd.api.types.is_numeric_dtype(values):
            # Integer-coded categories: the most frequent codes, as codes (a quartile may be no level);
            # only codes shared by EXAMPLE_MIN_CALLS calls, so an identifier allowed as a feature is
            # never copied (a code above every one seen stands in).
            common = _shared_levels(values, n)
            data[column] = np.resize(common if len(common) else np.array([values.max() + 1]), n)
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            quartiles = np.round(values.dropna().quantile([0.5, 0.25, 0.75]).to_numpy(dtype=float), 2)
            counts = values.value_counts()
            # A quartile that is the value of fewer than EXAMPLE_MIN_CALLS calls (an identifier-like
            # number) is moved off it by a half.
            rare = np.array([0 < counts.get(q, 0) < EXAMPLE_MIN_CALLS for q in quartiles])
            data[column] = np.resize(np.where(rare, quartiles + 0.5, quartiles), n)
        else:
            common = _shared_levels(values.dropna().astype(str), n).tolist() or ["(example)"]
            data[column] = np.resize(np.asarray(common, dtype=object), n)
    return pd.DataFrame(data)


# A level shown in the input example must be shared by at least this many training calls.
EXAMPLE_MIN_CALLS = 10


def _shared_levels(values: pd.Series, n: int) -> np.ndarray:
    counts = values.dropna().value_counts()
    return counts[counts >= EXAMPLE_MIN_CALLS].index[:n].to_numpy()


def request_types(
    frame: pd.DataFrame, columns: list[str], date_column: str | None, categorical: Sequence[str] = ()
) -> dict[str, str]:
    """The data's own type of each request column, as the training calls hold it.

    ``datetime`` (the call date-time), ``boolean``, ``string`` (a category stored as text),
    ``category_code`` (a category stored as numbers, e.g. 1 = male, 2 = female) or ``double`` (a
    number, whole or not: callers may send either, so whole-number columns are not told apart, and
    a model's contract does not change when a retrain reads 37 where it read 37.0).
    """
    types = {}
    for column in columns:
        values = frame[column]
        if column == date_column:
            types[column] = "datetime"
        elif pd.api.types.is_bool_dtype(values):
            types[column] = "boolean"
        elif not pd.api.types.is_numeric_dtype(values):
            types[column] = "string"
        elif column in categorical:
            types[column] = "category_code"
        else:
            types[column] = "double"
    return types


def _signature_type(kind: str):
    """The MLflow column type that accepts every form a user may send for a column of ``kind``.

    MLflow's schema enforcement refuses int64 for a ``double`` column (only int8-int32 are "safe"),
    any float for a ``long`` column and any number for a ``string`` column, so numbers and
    integer-coded categories are declared ``Any``: a caller may send 37, 37.0 or "37" for a number
    and 2 or "2" for a category code, and :meth:`RemoteClosureScorer.check_request` refuses, naming
    the column, what is not a number. The data's own types stay in the model's metadata contract.
    """
    return kind if kind in ("datetime", "boolean", "string") else AnyType()


def request_signature(
    frame: pd.DataFrame, columns: list[str], date_column: str | None, categorical: Sequence[str] = ()
) -> ModelSignature:
    """Input types that accept what users send for the training data's types, plus outputs.

    See :func:`_signature_type`.
    """
    types = request_types(frame, columns, date_column, categorical)
    inputs = [ColSpec(_signature_type(types[column]), column) for column in columns]
    outputs = [
        ColSpec("double", "p_safe_remote"),
        ColSpec("boolean", "recommend_remote"),
        ColSpec("double", "threshold", required=False),  # null when the call has no threshold
        ColSpec("string", "reasons"),
    ]
    params = ParamSchema([ParamSpec("reasons", "string", "auto")])
    return ModelSignature(Schema(inputs), Schema(outputs), params)


def log_remote_closure_model(
    scorer: RemoteClosureScorer,
    training_frame: pd.DataFrame,
    model_card: Path,
    work_dir: Path,
    metadata: dict | None = None,
) -> mlflow.models.model.ModelInfo:
    """Log ``scorer`` as a models-from-code pyfunc named ``model`` in the active run.

    ``metadata`` is the served contract (features with types and ranges, threshold, safety limit).
    """
    columns = scorer.required_columns
    date_column = scorer.features.date_column if scorer.features.time_features else None
    example = made_up_example(training_frame, columns, date_column, categorical=scorer.features.categorical)
    folder = scorer.save(work_dir / "scorer")
    return log_code_model(
        Path(__file__).with_name("pyfunc_entry.py"),
        artifacts={"scorer": str(folder), "model_card": str(model_card)},
        signature=request_signature(training_frame, columns, date_column, scorer.features.categorical),
        input_example=example,
        packages=["mlflow", "pandas", "numpy", "scikit-learn", "lightgbm", "scipy", "joblib", "matplotlib"],
        code_packages=[disposition, mlops],
        metadata=metadata,
    )
