"""Malformed requests to the three served models: always a 4xx with a message, never a request value.

The servers are the documented ones (``python -m mlops.serve``, fixture ``servers`` in conftest).
Every request carries distinctive markers (:data:`MARK`, :data:`NUMBER`) wherever the case allows,
so that an error body quoting anything the client sent is caught, including values inside rows,
unknown column or param names, and text in a broken JSON body.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import mlflow
import pandas as pd
import pytest
import requests
from mlflow.exceptions import MlflowException

from mlops.serve import (
    MAX_DEPTH,
    ModelContract,
    RequestRefused,
    check_content_type,
    check_depth,
    check_request,
    client_message,
)
from tests.serving.conftest import DISPOSITION, FORECAST, MAX_BODY_BYTES, PROJECTION

TIMEOUT = 60
MARK = "ZZQ-93817"
NUMBER = 987654.321
# Substrings of the markers: any of them in an error body means the server quoted the request.
LEAKS = ("ZZQ", "93817", "987654")
JSON = {"Content-Type": "application/json"}


@dataclass
class Sent:
    """One HTTP request: what a client sends."""

    body: bytes | None
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    method: str = "POST"
    path: str = "/invocations"
    chunked: bool = False


@dataclass
class Case:
    """A malformed request built from a valid row of the model, and what the answer must say."""

    build: Callable[[dict], Sent]
    words: tuple[str, ...] = ()
    status: int = 400
    forbidden: tuple[str, ...] = ()  # more request values that must not come back
    models: tuple[str, ...] = (FORECAST, PROJECTION, DISPOSITION)
    marker: bool = True  # the request carries a marker (False only where there is nothing to carry it)


def body(document) -> bytes:
    return json.dumps(document).encode()


def records(rows: list[dict], **extra) -> bytes:
    return body({"dataframe_records": rows, **extra})


def split(rows: list[dict], **extra) -> bytes:
    columns = list(rows[0])
    return body(
        {"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}, **extra}
    )


def marked(row: dict) -> list[dict]:
    """``row`` and a second row holding the markers: a row the model would refuse or score."""
    other = dict(row)
    for key, value in other.items():
        if isinstance(value, str) and key not in ("ds", "date", "call_time"):
            other[key] = MARK
            break
    return [row, other]


def tagged(call: dict) -> dict:
    """A call whose symptom group is the marker: an unseen category, which the model scores."""
    return dict(call, symptom_group=MARK)


def with_cell(row: dict, column: str, value) -> list[dict]:
    return [dict(row, **{column: value})]


def first_column(row: dict, kind: type) -> str:
    return next(key for key, value in row.items() if isinstance(value, kind) and not isinstance(value, bool))


def date_column(row: dict) -> str:
    return next(key for key in ("ds", "date", "call_time") if key in row)


def too_large(row: dict) -> bytes:
    """A valid request about twice the test servers' body limit."""
    copies = MAX_BODY_BYTES // len(json.dumps(row)) + 1
    return records(marked(row) * copies)


def without_date(row: dict) -> list[dict]:
    """``row`` without its date column, its first text column holding the marker."""
    rest = {key: value for key, value in row.items() if key != date_column(row)}
    return [dict(rest, **{first_column(rest, str): MARK})]


def raw(text: str, headers: dict | None = None) -> Callable[[dict], Sent]:
    return lambda row: Sent(text.replace("MARK", MARK).encode(), headers or dict(JSON))


# ------------------------------------------------------------------ cases sent to all three models
COMMON = {
    # Content type
    "no-content-type": Case(lambda r: Sent(records(marked(r)), {}), ("Content-Type",), 415),
    "text-plain": Case(
        lambda r: Sent(records(marked(r)), {"Content-Type": "text/plain"}), ("Content-Type",), 415
    ),
    "csv": Case(
        lambda r: Sent(pd.DataFrame(marked(r)).to_csv(index=False).encode(), {"Content-Type": "text/csv"}),
        ("application/json",),
        415,
    ),
    "form-encoded": Case(
        lambda r: Sent(f"a={MARK}".encode(), {"Content-Type": "application/x-www-form-urlencoded"}),
        ("Content-Type",),
        415,
    ),
    "latin-1-charset": Case(
        lambda r: Sent(records(marked(r)), {"Content-Type": "application/json; charset=latin-1"}),
        ("charset",),
        415,
    ),
    "content-type-parameter": Case(
        lambda r: Sent(records(marked(r)), {"Content-Type": f"application/json; format={MARK}"}),
        ("parameter",),
        415,
    ),
    "gzip-body": Case(
        lambda r: Sent(
            gzip.compress(records(marked(r))),
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
        ),
        ("Content-Encoding",),
        415,
        marker=False,
    ),
    # Body
    "empty-body": Case(lambda r: Sent(b""), ("empty body",), marker=False),
    "blank-body": Case(lambda r: Sent(b"   \n "), ("empty body",), marker=False),
    "broken-json": Case(raw('{"dataframe_records": [{"MARK": 987654.321,'), ("not valid JSON",)),
    "not-json-at-all": Case(raw("MARK 987654.321"), ("not valid JSON",)),
    "single-quoted-json": Case(raw("{'dataframe_records': [{'MARK': 1}]}"), ("not valid JSON",)),
    "not-utf8": Case(lambda r: Sent(b'{"dataframe_records": [{"a": "\xff\xfe ZZQ-93817"}]}'), ("UTF-8",)),
    "top-level-list": Case(lambda r: Sent(body(marked(r))), ("JSON object", "list")),
    "top-level-string": Case(lambda r: Sent(body(MARK)), ("JSON object", "string")),
    "top-level-null": Case(lambda r: Sent(b"null"), ("JSON object", "null"), marker=False),
    "deep-nesting": Case(
        lambda r: Sent(b'{"dataframe_records": ' + b"[" * 100_000 + b'"ZZQ-93817"' + b"]" * 100_000 + b"}"),
        ("nested",),
    ),
    "deep-nesting-unclosed": Case(lambda r: Sent(b"[" * 50_000 + b'"ZZQ-93817"'), ("nested",)),
    "nested-cell-20": Case(
        lambda r: Sent(records([dict(r, **{next(iter(r)): json.loads("[" * 20 + f'"{MARK}"' + "]" * 20)})])),
        ("nested",),
    ),
    "nan": Case(raw('{"dataframe_records": [{"MARK": NaN}]}'), ("NaN",)),
    "infinity": Case(raw('{"dataframe_records": [{"MARK": Infinity}]}'), ("Infinity",)),
    "minus-infinity": Case(raw('{"dataframe_records": [{"a": -Infinity, "b": "MARK"}]}'), ("Infinity",)),
    "overflowing-number": Case(raw('{"dataframe_records": [{"MARK": 1e999}]}'), ("too large",)),
    "integer-too-long": Case(raw('{"dataframe_records": [{"MARK": ' + "9" * 5000 + "}]}"), ("digits",)),
    "body-too-large": Case(lambda r: Sent(too_large(r)), ("larger than",), 413),
    "body-too-large-chunked": Case(lambda r: Sent(too_large(r), chunked=True), ("larger than",), 413),
    # Orient and shape
    "unknown-top-level-field": Case(lambda r: Sent(records([r], **{MARK: NUMBER})), ("field",)),
    "two-input-fields": Case(
        lambda r: Sent(
            body({"dataframe_records": marked(r), "dataframe_split": {"columns": [], "data": []}})
        ),
        ("exactly one",),
    ),
    "no-input-field": Case(lambda r: Sent(body({"params": {MARK: NUMBER}})), ("dataframe_split",)),
    "instances-orient": Case(lambda r: Sent(body({"instances": marked(r)})), ("instances",)),
    "inputs-orient": Case(lambda r: Sent(body({"inputs": marked(r)})), ("instances/inputs",)),
    "columns-orient-records": Case(
        lambda r: Sent(body({"dataframe_records": {k: {"0": v} for k, v in marked(r)[1].items()}})),
        ("list of objects",),
    ),
    "split-as-list": Case(lambda r: Sent(body({"dataframe_split": marked(r)})), ("dataframe_split",)),
    "split-without-data": Case(
        lambda r: Sent(body({"dataframe_split": {"columns": list(r), MARK: NUMBER}})), ("columns", "data")
    ),
    "split-short-row": Case(
        lambda r: Sent(body({"dataframe_split": {"columns": list(r), "data": [[MARK]]}})), ("row 0",)
    ),
    "split-columns-not-text": Case(
        lambda r: Sent(body({"dataframe_split": {"columns": [NUMBER] * len(r), "data": [list(r.values())]}})),
        ("column names",),
    ),
    "split-duplicate-column": Case(
        lambda r: Sent(
            body({"dataframe_split": {"columns": [*r, next(iter(r))], "data": [[*r.values(), MARK]]}})
        ),
        ("twice",),
    ),
    "split-bad-index": Case(
        lambda r: Sent(
            body({"dataframe_split": {"columns": list(r), "data": [list(r.values())], "index": MARK}})
        ),
        ("index",),
    ),
    "record-not-object": Case(lambda r: Sent(records([r, [MARK, NUMBER]])), ("row 1",)),
    "no-rows": Case(
        lambda r: Sent(body({"dataframe_split": {"columns": list(r), "data": []}})), ("has no",), marker=False
    ),
    # Params
    "unknown-param": Case(lambda r: Sent(records(marked(r), params={MARK: NUMBER})), ("params",)),
    "params-not-object": Case(lambda r: Sent(records(marked(r), params=[MARK])), ("params",)),
    # Columns and cells
    "extra-column": Case(
        lambda r: Sent(records([dict(r, **{MARK: NUMBER})])), ("1 column(s) the model does not take",)
    ),
    "missing-column": Case(
        lambda r: Sent(records([{k: v for k, v in list(r.items())[1:]} | {"z": MARK}])), ("lacks column",)
    ),
    "missing-column-split": Case(lambda r: Sent(split(without_date(r) * 2)), ("lacks column",)),
    "cell-is-list": Case(
        lambda r: Sent(records(with_cell(r, date_column(r), [MARK, NUMBER]))), ("lists or objects",)
    ),
    "cell-is-object": Case(
        lambda r: Sent(records(with_cell(r, first_column(r, str), {MARK: NUMBER}))), ("lists or objects",)
    ),
    "text-column-gets-number": Case(
        lambda r: Sent(records(with_cell(r, first_column(r, str), NUMBER))), ("must hold text",)
    ),
    "text-column-gets-boolean": Case(
        lambda r: Sent(records(marked(r) + with_cell(r, first_column(r, str), True))),
        ("must hold text", "row 2"),
    ),
    "date-not-iso": Case(
        lambda r: Sent(records(marked(r) + with_cell(r, date_column(r), "31/01/2024 93817"))), ("ISO 8601",)
    ),
    "date-is-number": Case(lambda r: Sent(records(with_cell(r, date_column(r), NUMBER))), ("ISO 8601",)),
    "date-mixed-offsets": Case(
        lambda r: Sent(
            records(
                with_cell(r, date_column(r), "2024-01-01T10:00:00+01:00")
                + with_cell(r, date_column(r), "2024-01-01T10:00:00-05:00")
                + marked(r)
            )
        ),
        ("time-zone",),
    ),
    "date-with-offset": Case(
        lambda r: Sent(records(marked(r) + with_cell(r, date_column(r), "2024-01-01T10:00:00+09:38"))),
        ("time-zone",),
        forbidden=("09:38",),
    ),
    "date-is-words": Case(
        lambda r: Sent(records(with_cell(r, date_column(r), f"next {MARK}"))), ("ISO 8601",)
    ),
    "date-year-zero": Case(
        lambda r: Sent(records(marked(r) + with_cell(r, date_column(r), "0000-01-01"))),
        ("outside the years",),
    ),
    # Other endpoints and methods
    "get-invocations": Case(
        lambda r: Sent(None, {}, method="GET", path=f"/invocations?q={MARK}"), ("method",), 405
    ),
    "unknown-endpoint": Case(lambda r: Sent(records(marked(r)), path=f"/{MARK}"), ("endpoint",), 404),
    "put-ping": Case(lambda r: Sent(records(marked(r)), method="PUT", path="/ping"), ("method",), 405),
}

# ------------------------------------------------------------------ cases for one model each
SPECIFIC = {
    "forecast-unknown-series": Case(
        lambda r: Sent(records(with_cell(r, "unique_id", MARK))),
        ("unknown series", "city/C2"),
        models=(FORECAST,),
    ),
    "forecast-null-series": Case(
        lambda r: Sent(records(marked(r) + with_cell(r, "unique_id", None))),
        ("unknown series",),
        models=(FORECAST,),
    ),
    "forecast-after-horizon": Case(
        lambda r: Sent(records([r] + with_cell(r, "ds", "2024-03-25"))),
        ("out of range", "2024-01-01 to 2024-03-24"),
        forbidden=("2024-03-25",),
        models=(FORECAST,),
        marker=False,
    ),
    "forecast-before-data": Case(
        lambda r: Sent(records(with_cell(r, "ds", "2023-12-31") + [r])),
        ("out of range", "row 0"),
        forbidden=("2023-12-31",),
        models=(FORECAST,),
        marker=False,
    ),
    "forecast-year-1800": Case(
        lambda r: Sent(records([r] + with_cell(r, "ds", "1800-06-01"))),
        ("ds",),
        forbidden=("1800",),
        models=(FORECAST,),
        marker=False,
    ),
    "forecast-year-9999": Case(
        lambda r: Sent(records([r] + with_cell(r, "ds", "9999-12-31"))),
        ("ds",),
        forbidden=("9999",),
        models=(FORECAST,),
        marker=False,
    ),
    "forecast-null-date": Case(
        lambda r: Sent(records(marked(r) + with_cell(r, "ds", None))),
        ("not dates", "row"),
        models=(FORECAST,),
    ),
    "forecast-params": Case(
        lambda r: Sent(records(marked(r), params={"level": NUMBER})), ("takes no params",), models=(FORECAST,)
    ),
    "projection-unknown-area": Case(
        lambda r: Sent(records(with_cell(r, "area", MARK))), ("unknown area", "trust"), models=(PROJECTION,)
    ),
    "projection-unknown-scenario": Case(
        lambda r: Sent(records(with_cell(r, "scenario", MARK))),
        ("unknown scenario", "principal"),
        models=(PROJECTION,),
    ),
    "projection-after-final-year": Case(
        lambda r: Sent(records([r] + with_cell(r, "date", "2050-01-01"))),
        ("out of range", "2035-12-31"),
        forbidden=("2050",),
        models=(PROJECTION,),
        marker=False,
    ),
    "projection-year-1800": Case(
        lambda r: Sent(records(with_cell(r, "date", "1800-01-01") + [r])),
        ("date",),
        forbidden=("1800",),
        models=(PROJECTION,),
        marker=False,
    ),
    "projection-params": Case(
        lambda r: Sent(records(marked(r), params={"scenario": MARK})),
        ("takes no params",),
        models=(PROJECTION,),
    ),
    "disposition-negative-age": Case(
        lambda r: Sent(records(with_cell(tagged(r), "age", -40))),
        ("'age'", "impossible", "below 0"),
        models=(DISPOSITION,),
    ),
    "disposition-negative-age-marker": Case(
        lambda r: Sent(records([r, r] + with_cell(r, "age", -NUMBER))),
        ("'age'", "row 2"),
        models=(DISPOSITION,),
    ),
    "disposition-age-300": Case(
        lambda r: Sent(records(with_cell(tagged(r), "age", 300))),
        ("'age'", "above 120"),
        forbidden=("300",),
        models=(DISPOSITION,),
    ),
    "disposition-age-huge": Case(
        lambda r: Sent(records(with_cell(tagged(r), "age", 1e300))),
        ("'age'", "impossible"),
        models=(DISPOSITION,),
    ),
    "disposition-age-infinity": Case(
        lambda r: Sent(records(with_cell(tagged(r), "age", "Infinity"))),
        ("age", "numbers"),
        models=(DISPOSITION,),
    ),
    "disposition-age-text": Case(
        lambda r: Sent(records(with_cell(tagged(r), "age", f"old {MARK}"))),
        ("age", "numbers"),
        models=(DISPOSITION,),
    ),
    "disposition-flag-text": Case(
        lambda r: Sent(records(with_cell(tagged(r), "care_home", "yes ZZQ"))),
        ("care_home", "numbers"),
        models=(DISPOSITION,),
    ),
    "disposition-flag-boolean": Case(
        lambda r: Sent(records(with_cell(tagged(r), "care_home", True))),
        ("care_home", "numbers"),
        models=(DISPOSITION,),
    ),
    "disposition-negative-count": Case(
        lambda r: Sent(records(with_cell(tagged(r), "contacts_7d", -3))),
        ("contacts_7d", "below 0"),
        models=(DISPOSITION,),
    ),
    "disposition-count-far-above-training": Case(
        lambda r: Sent(records(with_cell(tagged(r), "contacts_30d", NUMBER))),
        ("contacts_30d", "impossible"),
        models=(DISPOSITION,),
    ),
    "disposition-call-in-1800": Case(
        lambda r: Sent(records(with_cell(tagged(r), "call_time", "1800-05-04T09:38:17"))),
        ("call_time", "outside"),
        forbidden=("1800", "09:38:17"),
        models=(DISPOSITION,),
    ),
    "disposition-call-in-1950": Case(
        lambda r: Sent(records(with_cell(tagged(r), "call_time", "1950-05-04T09:38:17"))),
        ("call_time", "long before"),
        forbidden=("1950",),
        models=(DISPOSITION,),
    ),
    "disposition-call-in-future": Case(
        lambda r: Sent(records([r] + with_cell(tagged(r), "call_time", "2199-05-04T09:38:17"))),
        ("call_time", "future", "row 1"),
        forbidden=("2199",),
        models=(DISPOSITION,),
    ),
    "disposition-unknown-reasons-mode": Case(
        lambda r: Sent(records([r], params={"reasons": MARK})),
        ("reasons must be one of",),
        models=(DISPOSITION,),
    ),
    "disposition-reasons-number": Case(
        lambda r: Sent(records([r], params={"reasons": NUMBER})), ("reasons", "string"), models=(DISPOSITION,)
    ),
    "disposition-reasons-list": Case(
        lambda r: Sent(records([r], params={"reasons": [MARK]})), ("reasons", "string"), models=(DISPOSITION,)
    ),
    "disposition-reasons-and-unknown": Case(
        lambda r: Sent(records([r], params={"reasons": "none", "explain": MARK})),
        ("params",),
        models=(DISPOSITION,),
    ),
}

CASES = [
    pytest.param(model, case, id=f"{model.split('-')[0]}-{name}")
    for name, case in {**COMMON, **SPECIFIC}.items()
    for model in case.models
]


def send(url: str, sent: Sent) -> requests.Response:
    data = sent.body
    if sent.chunked and data is not None:
        whole = data
        data = (whole[i : i + 65536] for i in range(0, len(whole), 65536))  # no Content-Length
    return requests.request(sent.method, url + sent.path, data=data, headers=sent.headers, timeout=TIMEOUT)


def assert_clean_refusal(response: requests.Response, case: Case) -> None:
    """A 4xx, a JSON body of exactly error_code and message, the message naming the problem, no echo."""
    assert response.status_code == case.status, (response.status_code, response.text[:500])
    document = response.json()
    assert set(document) == {"error_code", "message"}, document
    message = document["message"]
    assert isinstance(message, str) and len(message) > 10, document
    for word in case.words:
        assert word in message, message
    for leak in (*LEAKS, *case.forbidden):
        assert leak not in response.text, f"{leak!r} echoed in {response.text[:500]}"


def test_enough_distinct_malformed_requests():
    assert len(CASES) >= 75


@pytest.mark.parametrize(("model", "case"), CASES)
def test_malformed_request_is_refused_without_echo(servers, valid_rows, model, case):
    sent = case.build(valid_rows[model])
    # The no-echo check means something only if the request carried a marker to echo.
    assert not case.marker or any(leak.encode() in (sent.body or sent.path.encode()) for leak in LEAKS)
    assert_clean_refusal(send(servers[model], sent), case)


def test_server_still_answers_after_the_malformed_requests(servers, valid_rows):
    """Well-formed requests get 200 with the documented columns; the markers are scored as data."""
    for model, columns in (
        (FORECAST, ["unique_id", "ds", "mean", "lo_80", "hi_80", "lo_95", "hi_95"]),
        (PROJECTION, ["area", "date", "scenario", "calls_mean", "calls_p10"]),
        (DISPOSITION, ["p_safe_remote", "recommend_remote", "threshold", "reasons"]),
    ):
        for payload in (records([valid_rows[model]]), split([valid_rows[model]] * 2)):
            response = send(servers[model], Sent(payload))
            assert response.status_code == 200, response.text[:500]
            frame = pd.DataFrame(response.json()["predictions"])
            assert columns == list(frame.columns)[: len(columns)]
    # A category never seen in training is scored (by contract), markers included.
    unseen = dict(valid_rows[DISPOSITION], symptom_group=MARK)
    response = send(servers[DISPOSITION], Sent(records([unseen], params={"reasons": "none"})))
    assert response.status_code == 200 and response.json()["predictions"][0]["reasons"] == ""
    for endpoint in ("/ping", "/health", "/version"):
        assert requests.get(servers[FORECAST] + endpoint, timeout=TIMEOUT).status_code == 200


def test_impossible_calls_are_refused_in_python_too(trained_store, valid_rows):
    """The plausibility checks live in the model's predict, so a Python consumer gets them as well."""
    mlflow.set_tracking_uri(trained_store)
    model = mlflow.pyfunc.load_model(f"models:/{DISPOSITION}@champion")
    call = pd.DataFrame([valid_rows[DISPOSITION]]).assign(call_time=lambda f: pd.to_datetime(f["call_time"]))
    numeric = call.select_dtypes("number").columns
    call[numeric] = call[numeric].astype(float)
    assert len(model.predict(call)) == 1
    for change, words in (
        ({"age": -40.0}, "'age' holds 1 impossible value(s) (below 0)"),
        ({"age": float("inf")}, "'age' holds 1 impossible value(s) (infinite)"),
        ({"contacts_7d": float("-inf")}, "'contacts_7d' holds 1 impossible value(s) (infinite)"),
        ({"call_time": pd.Timestamp("1800-01-01")}, "'call_time' holds 1 date-time(s) outside"),
    ):
        with pytest.raises(MlflowException) as error:
            model.predict(call.assign(**change))
        assert words in error.value.message and "1800" not in error.value.message


# ------------------------------------------------------------------ the guard's checks, in-process
CONTRACT = ModelContract(
    {"unique_id": "string", "ds": "datetime", "x_rain": "double"}, {"reasons": ("string", False)}
)


def test_guard_forwards_exactly_what_it_checked():
    """MLflow gets the checked rows as dataframe_split, dates in one format, and the checked params."""
    sent = records(
        [
            {"unique_id": "a", "ds": "2024-01-01", "x_rain": 1},
            {"ds": "2024-01-02T10:30:00.5", "unique_id": "b", "x_rain": None},
        ],
        params={"reasons": "none"},
    )
    forwarded = json.loads(check_request(CONTRACT, sent))
    assert forwarded == {
        "dataframe_split": {
            "columns": ["unique_id", "ds", "x_rain"],
            "data": [["a", "2024-01-01T00:00:00.000000", 1], ["b", "2024-01-02T10:30:00.500000", None]],
        },
        "params": {"reasons": "none"},
    }


def test_guard_takes_nesting_up_to_its_limit_only():
    check_depth(json.loads("[" * MAX_DEPTH + "]" * MAX_DEPTH))
    with pytest.raises(RequestRefused, match="nested too deeply"):
        check_depth(json.loads("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)))


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("application/json", True),
        ("Application/JSON; charset=UTF-8", True),
        ('application/json; charset="utf-8"', True),
        (None, False),
        ("application/json; charset=utf-16", False),
        ("application/jsonx", False),
        ("text/csv", False),
    ],
)
def test_guard_content_types(header, ok):
    if ok:
        check_content_type(header)
    else:
        with pytest.raises(RequestRefused) as refused:
            check_content_type(header)
        assert refused.value.status == 415


def test_client_message_trusts_only_client_safe_errors():
    class Safe(ValueError):
        client_safe = True

    class Chatty(ValueError):
        pass

    try:
        try:
            raise Safe("`ds` out of range in 1 row(s) (row 0)")
        except Safe as error:
            raise MlflowException("Failed to predict data 'ZZQ-93817'") from error
    except MlflowException as wrapped:
        assert client_message(wrapped) == "`ds` out of range in 1 row(s) (row 0)"
    assert client_message(MlflowException(f"Failed to enforce schema of data '{MARK}'")) is None
    assert client_message(Chatty(MARK)) is None
