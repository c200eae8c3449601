"""The registered model takes a user's own records as they come: category codes as numbers or text,
numbers as int or float, through the Python API and through ``mlops.serve``'s guard alike."""

from __future__ import annotations

import asyncio
import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from disposition.pipeline import train
from mlops import serve
from tests.disposition.conftest import compose_disposition, fast_overrides

CODED = ["category", "sex", "area"]  # text levels in the synthetic calls, integer codes here


@pytest.fixture(scope="module")
def coded(tmp_path_factory, calls):
    """A model trained on a file whose categories are integer-coded and whose ages are floats."""
    frame = calls.drop(columns=["p_safe_remote_true"]).copy()
    codes = {}
    for column in CODED:
        levels = sorted(frame[column].dropna().unique())
        codes[column] = {level: i + 1 for i, level in enumerate(levels)}
        frame[column] = frame[column].map(codes[column]).astype("int64")
    frame["age"] = frame["age"].astype("float64")
    folder = tmp_path_factory.mktemp("coded")
    path = folder / "coded.parquet"
    frame.to_parquet(path, index=False)
    cfg = compose_disposition(
        fast_overrides(path, folder / "store")
        + [
            "calls.oracle_column=null",
            f"calls.standard_never_remote.category=[{codes['category']['C1']}]",
            "baseline_enabled=false",
            "tuning.enabled=false",
        ]
    )
    result = train(cfg, folder / "out")
    model = mlflow.pyfunc.load_model(f"models:/{cfg.registry.model_name}/{result.version}")
    request = frame.tail(300).drop(columns=["safe_remote"])
    request = request[[c for c in model.metadata.get_input_schema().input_names()]].reset_index(drop=True)
    return model, request


def _predict(model, request):
    return model.predict(request, params={"reasons": "none"})


def test_integer_codes_text_codes_and_int_numbers_give_the_same_answer(coded):
    model, request = coded
    assert all(request[c].dtype == np.int64 for c in CODED)
    expected = _predict(model, request)  # (a) the codes as the file holds them (int64)
    assert expected["p_safe_remote"].between(0, 1).all()
    as_text = request.astype({c: str for c in CODED})  # (b) the codes sent as text
    as_float_codes = request.astype({c: float for c in CODED})
    int_numbers = request.assign(age=request["age"].round().astype("int64"))  # (c) ints for a float feature
    assert (request["age"] == int_numbers["age"]).all()
    for variant in (as_text, as_float_codes, int_numbers):
        pd.testing.assert_frame_equal(_predict(model, variant), expected)


def test_contract_records_the_data_types(coded):
    model, _ = coded
    features = model.metadata.metadata["features"]
    assert features["category"]["type"] == "category_code" and "1" in features["category"]["levels"]
    assert features["age"]["type"] == "double" and "range" in features["age"]


def _records(frame: pd.DataFrame) -> list[dict]:
    rows = json.loads(frame.to_json(orient="records", date_format="iso"))
    for row, (_, original) in zip(rows, frame.iterrows(), strict=True):
        for column, value in original.items():
            if isinstance(value, np.integer | int) and not isinstance(value, bool):
                row[column] = int(value)  # JSON integers, not 1.0
    return rows


def _post(app, body: bytes) -> tuple[int, dict]:
    """One POST /invocations through the guarded ASGI app, in-process."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/invocations",
        "raw_path": b"/invocations",
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "http_version": "1.1",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "server": ("test", 80),
        "client": ("test", 1),
    }
    sent: list[dict] = []
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(payload)


def test_served_model_takes_json_integers_and_strings_for_codes_and_numbers(coded):
    model, request = coded
    small = request.head(20)
    expected = _predict(model, small)["p_safe_remote"].to_numpy()
    contract = serve.ModelContract.from_model(model)
    app = serve.build_app(model)
    as_ints = _records(small.assign(age=small["age"].round().astype("int64")))
    as_text = [{**row, **{c: str(row[c]) for c in CODED}} for row in as_ints]
    as_floats = [{**row, "age": float(row["age"])} for row in as_ints]
    assert isinstance(as_ints[0]["category"], int) and isinstance(as_ints[0]["age"], int)
    for rows in (as_ints, as_text, as_floats):
        body = json.dumps({"dataframe_records": rows, "params": {"reasons": "none"}}).encode()
        serve.check_request(contract, body)  # the guard's own checks pass
        status, answer = _post(app, body)
        assert status == 200, answer
        got = np.array([p["p_safe_remote"] for p in answer["predictions"]])
        np.testing.assert_allclose(got, expected)
    # What is not a number is still refused, naming the column (by the model, behind the guard).
    bad = [{**row, "age": "old"} for row in as_ints]
    status, answer = _post(app, json.dumps({"dataframe_records": bad}).encode())
    assert status == 400 and "'age'" in answer["message"] and "numbers" in answer["message"]


def test_a_champion_that_cannot_rescore_is_reported_without_values(monkeypatch, capsys):
    from types import SimpleNamespace

    from mlflow.exceptions import MlflowException

    from disposition import promotion
    from disposition.evaluation import SafetySettings
    from disposition.safety import ClosureResult

    class Refuses:  # what an old champion with an all-double signature does with integer codes
        metadata = SimpleNamespace(get_input_schema=lambda: None)

        def predict(self, calls, params=None):
            raise MlflowException(
                "Failed to enforce schema of data '   category   age\n0  4  97.25' with schema "
                "'[category: double]'. Error: Incompatible input types for column category. Can not "
                "safely convert int64 to float64."
            )

    monkeypatch.setattr(promotion, "load_verified_model", lambda uri: Refuses())
    safe = ClosureResult(0.9, 1000, 200, 1, 0.2, 0.005, 0.009)
    calls = pd.DataFrame({"category": [4], "age": [97.25]})
    champion = SimpleNamespace(name="m", version="3")
    decision, rescored = promotion.decide(
        champion, "m", safe, safe, calls, np.array([1]), SafetySettings(limit=0.01)
    )
    assert not decision.promoted and rescored is None
    printed = capsys.readouterr().out
    for text in (decision.reason, printed):
        assert "could not re-score" in text or "could not be re-scored" in text
        assert "MlflowException: Incompatible input types for column category" in text
        assert "97.25" not in text and "[category: double]" not in text
    assert promotion.failure_summary(KeyError("97.25")) == "KeyError: '...'"


def test_the_guard_checks_codes_and_numbers_against_the_recorded_types(coded):
    model, request = coded
    contract = serve.ModelContract.from_model(model)
    assert contract.columns["category"] == "category_code" and contract.columns["age"] == "double"
    rows = _records(request.head(2))
    for cell in (3, "3"):
        serve.check_frame(contract, list(rows[0]), [{**rows[0], "category": cell}])
    for cell in (40, 40.5):
        serve.check_frame(contract, list(rows[0]), [{**rows[0], "age": cell}])
    for column, cell, words in (
        ("category", 2.5, "category codes"),
        ("category", True, "category codes"),
        ("age", "old", "numbers"),
        ("age", True, "numbers"),
    ):
        with pytest.raises(serve.RequestRefused) as refused:
            serve.check_frame(contract, list(rows[0]), [{**rows[0], column: cell}])
        assert f"'{column}'" in str(refused.value.message) and words in refused.value.message
