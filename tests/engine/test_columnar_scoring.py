"""The batch scorer's column-wise schema enforcement gives the served pyfunc's answers exactly,
and refuses what the pyfunc refuses."""

from __future__ import annotations

import copy
import io
import json

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlflow.exceptions import MlflowException

from disposition.calibration import fit_calibrator
from disposition.features import CallEncoder, add_time_features
from disposition.model import TreeModel
from disposition.pyfunc_model import RemoteClosureModel, request_signature
from disposition.safety import rules_from_mapping
from disposition.scorer import FeatureSpec, RemoteClosureScorer, training_ranges
from disposition.withheld import WithheldLevels
from mlops.batch_scoring import predict_columnar

CATEGORICAL = ["area", "category", "sex"]
NUMERIC = ["age", "care_home", "contacts_30d"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A small remote-closure pyfunc (LightGBM, hard rule, withheld level) saved and loaded as MLflow
    serves it, and calls it was not trained on, as Parquet reads them."""
    calls = pd.read_parquet("data/synthetic/calls.parquet").iloc[:12_000].reset_index(drop=True)
    train, fresh = calls.iloc[:8_000], calls.iloc[8_000:].reset_index(drop=True)
    features = FeatureSpec(CATEGORICAL, NUMERIC, "call_time", ["hour"])
    frame = add_time_features(train, "call_time", ["hour"])
    encoder = CallEncoder(CATEGORICAL, features.model_numeric).fit(frame)
    booster = (
        lgb.LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1, random_state=0, n_jobs=1)
        .fit(encoder.transform(frame), train["safe_remote"], categorical_feature=[0, 1, 2])
        .booster_
    )
    model = TreeModel(encoder, booster)
    raw = model.raw_score(encoder.transform(frame))
    calibrator = fit_calibrator(pd.Series(raw), train["safe_remote"], "sigmoid", 10_000)
    threshold = float(np.quantile(calibrator.predict(raw), 0.7))
    withheld = WithheldLevels(columns={"sex": "sex"}, age_edges=[18, 65, 85], levels={"sex": ["F"]})
    scorer = RemoteClosureScorer(
        model,
        calibrator,
        threshold,
        rules_from_mapping({"category": ["C1"]}),
        features,
        ranges=training_ranges(train, features),
        withheld=withheld,
    )
    folder = tmp_path_factory.mktemp("served")
    saved = scorer.save(folder / "scorer")
    signature = request_signature(train, scorer.required_columns, "call_time", CATEGORICAL)
    mlflow.pyfunc.save_model(
        str(folder / "pyfunc"),
        python_model=RemoteClosureModel(),
        artifacts={"scorer": str(saved)},
        signature=signature,
        pip_requirements=["mlflow"],  # no requirement inference (a subprocess): the test runs it here
    )
    # Missing values, a level never seen in training, and a nullable integer column.
    fresh = fresh[[*scorer.required_columns, "call_id"]].copy()
    fresh.loc[::7, "age"] = None
    fresh.loc[::11, "area"] = None
    fresh.loc[::13, "area"] = "an area never seen"
    fresh["contacts_30d"] = fresh["contacts_30d"].astype("Int16")
    fresh.loc[::5, "contacts_30d"] = pd.NA
    fresh.to_parquet(folder / "fresh.parquet", index=False)
    return mlflow.pyfunc.load_model(str(folder / "pyfunc")), pd.read_parquet(folder / "fresh.parquet")


@pytest.mark.parametrize("reasons", ["none", "exact"])
def test_columnar_answers_equal_the_pyfunc(served, reasons):
    model, calls = served
    expected = model.predict(calls, params={"reasons": reasons})
    got = predict_columnar(model, calls, {"reasons": reasons})
    pd.testing.assert_frame_equal(got, expected)
    # The rule, the withheld level and the threshold all decided some calls.
    assert got["recommend_remote"].any()
    assert not got.loc[calls["category"].eq("C1") | calls["sex"].eq("F"), "recommend_remote"].any()


def test_columnar_refuses_what_the_pyfunc_refuses(served):
    model, calls = served
    impossible = calls.head(50).copy()
    impossible.loc[[3, 9], "age"] = -4.0
    with pytest.raises(MlflowException) as served_error:
        model.predict(impossible, params={"reasons": "none"})
    with pytest.raises(MlflowException) as batch_error:
        predict_columnar(model, impossible, {"reasons": "none"})
    assert batch_error.value.message == served_error.value.message
    assert "impossible value(s)" in batch_error.value.message and "rows 3, 9" in batch_error.value.message
    with pytest.raises(MlflowException, match=r"\['age'\] are required"):
        predict_columnar(model, calls.drop(columns="age"), {"reasons": "none"})
    with pytest.raises(MlflowException):  # the params schema, as MLflow enforces it
        predict_columnar(model, calls.head(5), {"reasons": 3})


def _strict_json(answer: pd.DataFrame) -> list[dict]:
    """The answer as MLflow's scoring server writes it, read by a strict parser (as JavaScript's
    ``JSON.parse`` or Jackson would: ``NaN`` and ``Infinity`` are refused)."""
    from mlflow.pyfunc.scoring_server import predictions_to_json

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    text = io.StringIO()
    predictions_to_json(answer, text)
    return json.loads(text.getvalue(), parse_constant=refuse)["predictions"]


def test_answers_are_strict_json_with_null_where_a_call_has_no_threshold(served, tmp_path):
    model, calls = served
    withheld = calls["sex"].eq("F").to_numpy()
    answer = model.predict(calls, params={"reasons": "none"})
    records = _strict_json(answer)
    thresholds = [row["threshold"] for row in records]
    assert all((t is None) == held for t, held in zip(thresholds, withheld, strict=True))
    assert not any(row["recommend_remote"] for row, held in zip(records, withheld, strict=True) if held)
    assert all(isinstance(row["p_safe_remote"], float) for row in records)
    # Batch scoring writes the same column as a Parquet double with nulls.
    predict_columnar(model, calls, {"reasons": "none"}).to_parquet(tmp_path / "part.parquet")
    column = pq.read_table(tmp_path / "part.parquet").column("threshold")
    assert column.type == pa.float64() and column.null_count == withheld.sum()

    # No threshold met the safety bound: every call is served null and none is recommended.
    nothing_met = RemoteClosureModel()
    nothing_met.scorer = copy.copy(model.unwrap_python_model().scorer)
    nothing_met.scorer.threshold = float("inf")
    records = _strict_json(nothing_met.predict(None, calls.head(300), {"reasons": "none"}))
    assert all(row["threshold"] is None and not row["recommend_remote"] for row in records)
