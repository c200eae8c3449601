"""The three registered models served over real HTTP, as docs/serving.md tells another service to.

Each champion is served by the documented command, ``python -m mlops.serve models:/<name>@champion``
(MLflow's scoring app behind the toolkit's request guard), on a free loopback port, once per
session (fixture ``servers`` in conftest); every request has a timeout, so a hang fails the test
instead of stalling the suite. tests/serving/test_malformed_requests.py sends the malformed ones.
"""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest
import requests

from tests.serving.conftest import DISPOSITION, FORECAST, PROJECTION

TIMEOUT = 30
FORECAST_COLUMNS = ["unique_id", "ds", "mean", "lo_80", "hi_80", "lo_95", "hi_95"]
MEASURES = ["calls", "C1", "C2", "C3", "C4", "hear_and_treat", "see_and_treat", "conveyed"]
MEASURES += ["needs_ambulance", "needs_ambulance_no_change"]
PROJECTION_COLUMNS = ["area", "date", "scenario"] + [
    f"{measure}_{stat}" for measure in MEASURES for stat in ("mean", "p10", "p50", "p90")
]
DISPOSITION_COLUMNS = ["p_safe_remote", "recommend_remote", "threshold", "reasons"]


@pytest.fixture(scope="module")
def call_records(trained_store, serving_calls) -> list[dict]:
    """Three calls as a dispatch system would send them: the signature's columns, ISO date-times."""
    mlflow.set_tracking_uri(trained_store)
    columns = mlflow.models.get_model_info(f"models:/{DISPOSITION}@champion").signature.inputs.input_names()
    return json.loads(serving_calls.tail(3)[columns].to_json(orient="records", date_format="iso"))


def invoke(url: str, body) -> requests.Response:
    data = body if isinstance(body, str) else json.dumps(body)
    headers = {"Content-Type": "application/json"}
    return requests.post(f"{url}/invocations", data=data, headers=headers, timeout=TIMEOUT)


def _not_json(constant: str):
    raise AssertionError(f"the answer holds {constant}, which strict JSON parsers refuse")


def answered(response: requests.Response) -> pd.DataFrame:
    """The predictions, read as a strict parser reads them (JavaScript's ``JSON.parse``, Jackson):
    ``NaN`` and ``Infinity`` in an answer fail the test."""
    assert response.status_code == 200, response.text[:500]
    return pd.DataFrame(json.loads(response.text, parse_constant=_not_json)["predictions"])


# Bad values the requests below send: an error body must name the problem, never repeat them.
SENT_VALUES = (
    "nowhere/C9",
    "mars",
    "utopia",
    "next tuesday",
    "soon",
    "yesterday",
    "1800-01-01",
    "everything",
)


def assert_refused(response: requests.Response, *words: str) -> None:
    """A 4xx whose message names the problem (never a 500) and repeats nothing the request sent."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    assert set(response.json()) == {"error_code", "message"}, response.text[:500]
    message = response.json()["message"]
    for word in words:
        assert word in message, message[:800]
    for value in SENT_VALUES:
        assert value not in response.text, response.text[:800]


def test_forecast_answers_split_and_records(servers):
    url = servers[FORECAST]
    split = {"columns": ["unique_id", "ds"], "data": [["city/C2", "2024-01-01"], ["moor/C4", "2024-01-02"]]}
    frame = answered(invoke(url, {"dataframe_split": split}))
    assert list(frame.columns) == FORECAST_COLUMNS
    assert frame["unique_id"].tolist() == ["city/C2", "moor/C4"]
    assert (frame["lo_95"] <= frame["mean"]).all() and (frame["mean"] <= frame["hi_95"]).all()
    records = [{"unique_id": "coast/C3", "ds": "2024-03-24"}]  # the last day of the 84-day horizon
    assert answered(invoke(url, {"dataframe_records": records}))["mean"].iloc[0] > 0


@pytest.mark.parametrize(
    ("record", "words"),
    [
        ({"unique_id": "nowhere/C9", "ds": "2024-01-01"}, ["unknown series", "city/C2"]),
        ({"unique_id": "city/C2", "ds": "2024-03-25"}, ["out of range", "2024-01-01 to 2024-03-24"]),
        ({"unique_id": "city/C2", "ds": "2023-12-31"}, ["out of range"]),
        ({"unique_id": "city/C2", "ds": "next tuesday"}, ["'ds'", "ISO 8601", "row 0"]),
        ({"unique_id": "city/C2", "ds": None}, ["not dates", "row 0"]),
        ({"unique_id": "city/C2"}, ["lacks column", "ds"]),
    ],
    ids=["unknown-series", "after-horizon", "before-data", "not-a-date", "null-date", "missing-column"],
)
def test_forecast_refuses_bad_requests(servers, record, words):
    assert_refused(invoke(servers[FORECAST], {"dataframe_records": [record]}), *words)


def test_projection_answers_every_measure(servers):
    records = [
        {"area": "trust", "date": "2035-01-01", "scenario": "principal"},
        {"area": "trust", "date": "2035-07-15", "scenario": "more_remote_closure"},
    ]
    frame = answered(invoke(servers[PROJECTION], {"dataframe_records": records}))
    assert list(frame.columns) == PROJECTION_COLUMNS
    assert frame["scenario"].tolist() == ["principal", "more_remote_closure"]
    assert (frame["calls_p10"] <= frame["calls_p90"]).all()


@pytest.mark.parametrize(
    ("record", "words"),
    [
        ({"area": "mars", "date": "2035-01-01", "scenario": "principal"}, ["unknown area", "trust"]),
        ({"area": "trust", "date": "2035-01-01", "scenario": "utopia"}, ["unknown scenario", "principal"]),
        ({"area": "trust", "date": "2050-01-01", "scenario": "principal"}, ["out of range", "2035-12-31"]),
        ({"area": "trust", "date": "soon", "scenario": "principal"}, ["'date'", "ISO 8601"]),
        ({"area": "trust", "scenario": "principal"}, ["lacks column", "date"]),
    ],
    ids=["unknown-area", "unknown-scenario", "after-projection", "not-a-date", "missing-column"],
)
def test_projection_refuses_bad_requests(servers, record, words):
    assert_refused(invoke(servers[PROJECTION], {"dataframe_records": [record]}), *words)


def test_disposition_answers_calls(servers, call_records):
    frame = answered(invoke(servers[DISPOSITION], {"dataframe_records": call_records}))
    assert list(frame.columns) == DISPOSITION_COLUMNS
    assert frame["p_safe_remote"].between(0, 1).all() and frame["reasons"].str.len().min() > 0
    quick = {"dataframe_records": call_records, "params": {"reasons": "none"}}
    assert answered(invoke(servers[DISPOSITION], quick))["reasons"].eq("").all()


def test_disposition_scores_unseen_categories_and_missing_values(servers, call_records):
    """By contract (disposition/README.md) a category never seen in training is scored, not refused."""
    record = dict(call_records[0], symptom_group="never_seen_before", age=None)
    frame = answered(invoke(servers[DISPOSITION], {"dataframe_records": [record]}))
    assert "symptom_group=never_seen_before" in frame["reasons"].iloc[0]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"age": "old"}, ["'age'", "numbers"]),
        ({"care_home": "yes"}, ["'care_home'", "numbers"]),
        ({"call_time": "yesterday"}, ["'call_time'", "ISO 8601"]),
        ({"age": "<drop>"}, ["lacks column", "age"]),
        ({"category": "<drop>"}, ["lacks column", "category"]),
        ({"age": -40}, ["'age'", "impossible", "below 0"]),
        ({"call_time": "1800-01-01T12:00:00"}, ["'call_time'", "outside"]),
    ],
    ids=[
        "text-age",
        "text-flag",
        "not-a-date",
        "missing-age",
        "missing-category",
        "negative-age",
        "year-1800",
    ],
)
def test_disposition_refuses_bad_requests(servers, call_records, change, words):
    record = {**call_records[0], **change}
    record = {key: value for key, value in record.items() if value != "<drop>"}
    assert_refused(invoke(servers[DISPOSITION], {"dataframe_records": [record]}), *words)


def test_disposition_refuses_unknown_reasons_mode(servers, call_records):
    body = {"dataframe_records": call_records, "params": {"reasons": "everything"}}
    assert_refused(invoke(servers[DISPOSITION], body), "reasons must be one of")


@pytest.mark.parametrize("model", [FORECAST, PROJECTION, DISPOSITION])
@pytest.mark.parametrize(
    ("body", "words"),
    [("", ["empty body"]), ("{not json", ["not valid JSON"]), ({}, ["dataframe_split"])],
    ids=["empty-body", "broken-json", "no-input-field"],
)
def test_malformed_bodies_are_refused(servers, model, body, words):
    assert_refused(invoke(servers[model], body), *words)


@pytest.mark.parametrize(("model", "columns"), [(FORECAST, ["unique_id", "ds"]), (PROJECTION, ["area"])])
def test_no_rows_are_refused(servers, model, columns):
    body = {"dataframe_split": {"columns": columns, "data": []}}
    assert_refused(invoke(servers[model], body))


def test_python_consumer_loads_the_champions(trained_store, call_records):
    """The in-process route of docs/serving.md: ``mlflow.pyfunc.load_model`` by alias."""
    mlflow.set_tracking_uri(trained_store)
    forecast = mlflow.pyfunc.load_model(f"models:/{FORECAST}@champion")
    days = pd.DataFrame({"unique_id": ["city/C2"], "ds": pd.to_datetime(["2024-01-01"])})
    assert list(forecast.predict(days).columns) == FORECAST_COLUMNS
    disposition = mlflow.pyfunc.load_model(f"models:/{DISPOSITION}/1")  # a pinned version
    calls = pd.DataFrame(call_records).assign(call_time=lambda f: pd.to_datetime(f["call_time"]))
    # In-process, MLflow refuses int64 for a double column (not a safe cast): send numbers as float.
    numeric = calls.select_dtypes("number").columns
    calls[numeric] = calls[numeric].astype(float)
    assert list(disposition.predict(calls, params={"reasons": "none"}).columns) == DISPOSITION_COLUMNS


def test_disposition_refuses_no_rows(servers, call_records):
    body = {"dataframe_split": {"columns": list(call_records[0]), "data": []}}
    assert_refused(invoke(servers[DISPOSITION], body))
