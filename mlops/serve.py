"""Serve a registered model over HTTP: MLflow's own scoring app behind a guard that answers every
malformed request with a 4xx and a message that never repeats what the client sent.

Why not bare ``mlflow models serve``: MLflow's scoring app has no setting for any of this. It
answers a request without Content-Type or with a deeply nested body with 500, copies the request
rows into its 400 messages ("Failed to predict data '...'", even with
``MLFLOW_DISABLE_SCHEMA_DETAILS``), ignores unknown ``params`` and accepts NaN/Infinity. So this
module builds that same app (``mlflow.pyfunc.scoring_server.init``, FastAPI: the same endpoints
``/invocations``, ``/ping``, ``/health``, ``/version``) and wraps it in one ASGI middleware that

1. checks the request before MLflow sees it: POST ``/invocations`` only with
   ``Content-Type: application/json`` (UTF-8), a body of at most ``max_body_bytes``, valid JSON
   without NaN/Infinity or overflowing numbers, nested at most :data:`MAX_DEPTH` deep, one of
   ``dataframe_split`` / ``dataframe_records`` in the documented shape, exactly the columns of
   the model's input schema with cells of the schema's JSON types, and ``params`` that the model's
   params schema declares, with values of the declared type;
2. replaces the body of every error response, whatever produced it, with
   ``{"error_code": ..., "message": ...}`` built from this module's own messages or from a model
   error whose class declares ``client_safe = True`` (the toolkit's request errors, whose messages
   name columns, row positions and the model's own values, never the request's). Anything else
   (MLflow's schema errors, an old model's messages) becomes a generic message naming the schema.

Start it with ``python -m mlops.serve models:/<name>@champion --port 5001`` (``make serve``);
``--workers N`` runs N uvicorn worker processes (one per core, like ``mlflow models serve -w``).
With several workers the model is downloaded and checked against its manifest once, by the
command itself; each worker then loads that verified local folder, and only after re-hashing it
and finding the digest the check accepted (:func:`app_from_environment`).
"""

from __future__ import annotations

import argparse
import contextvars
import json
import logging
import math
import os
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger("mlops.serve")

MAX_DEPTH = 8
"""JSON nesting allowed in a request: ``dataframe_split`` needs 4 (object, object, rows, row)."""
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
FIRST_YEAR, LAST_YEAR = 1678, 2261  # whole years of pandas' nanosecond timestamps
FRAME_FIELDS = ("dataframe_split", "dataframe_records")
TOP_LEVEL_FIELDS = (*FRAME_FIELDS, "params")
EXAMPLE = '{"dataframe_records": [{"<column>": <value>, ...}], "params": {...}}'

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class RequestRefused(Exception):
    """A request the guard refuses; ``message`` is written for the client and holds no request value."""

    def __init__(self, status: int, error_code: str, message: str):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


def _bad(message: str, code: str = "BAD_REQUEST") -> RequestRefused:
    return RequestRefused(400, code, message)


def _rows(positions: Iterable[int]) -> str:
    """``rows 0, 3, 7`` (first five): positions in the request, never its values."""
    positions = list(positions)
    shown = ", ".join(str(p) for p in positions[:5])
    return f"row{'s' if len(positions) > 1 else ''} {shown}{', ...' if len(positions) > 5 else ''}"


# --------------------------------------------------------------------------- what the model takes


@dataclass(frozen=True)
class ModelContract:
    """The columns, types and params a request may carry, from the model's signature."""

    columns: dict[str, str]  # name -> MLflow type name (string, double, long, boolean, datetime, ...)
    params: dict[str, tuple[str, bool]] = field(default_factory=dict)  # name -> (type, is a list)

    @classmethod
    def from_model(cls, model) -> ModelContract:
        schema = model.metadata.get_input_schema()
        # A column the signature declares Any (MLflow's types cannot say "int or float", "int or
        # text") is checked against the type its served contract records, if it records one.
        described = (model.metadata.metadata or {}).get("features")
        described = described if isinstance(described, dict) else {}
        columns = {}
        if schema is not None and schema.has_input_names():
            for spec in schema.inputs:
                kind = getattr(spec.type, "name", None) or "any"  # DataType members; arrays/objects: None
                if kind == "any" and isinstance(described.get(spec.name), dict):
                    recorded = described[spec.name].get("type")
                    kind = recorded if recorded in _ALLOWED else kind
                columns[spec.name] = kind
        params_schema = model.metadata.get_params_schema()
        params = {}
        if params_schema is not None:
            for spec in params_schema.params:
                params[spec.name] = (getattr(spec.dtype, "name", "any"), spec.shape is not None)
        return cls(columns, params)

    def describe(self) -> str:
        return ", ".join(f"{name} ({kind})" for name, kind in self.columns.items())


# --------------------------------------------------------------------------- checks on one request


def check_content_type(header: str | None) -> None:
    if not header:
        raise RequestRefused(415, "UNSUPPORTED_MEDIA_TYPE", "missing Content-Type: send application/json")
    mime, *parameters = (part.strip().lower() for part in header.split(";"))
    if mime != "application/json":
        raise RequestRefused(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "unsupported Content-Type: this server takes application/json only (dataframe_split or "
            "dataframe_records)",
        )
    for parameter in parameters:
        key, _, value = parameter.partition("=")
        if key.strip() != "charset" or value.strip().strip('"') not in ("utf-8", "utf8"):
            raise RequestRefused(
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                "unsupported Content-Type parameter: only charset=utf-8 is taken",
            )


def _refuse_constant(name: str):
    raise _bad(
        "body holds NaN or Infinity, which are not JSON numbers: send null for a missing value and "
        "a finite number otherwise"
    )


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _bad(
            "body holds a number too large to represent (it overflows to infinity): send finite numbers"
        )
    return value


def parse_body(body: bytes) -> Any:
    """The decoded JSON, refusing what MLflow would take (NaN, Infinity) or crash on (deep nesting)."""
    if not body.strip():
        raise _bad(f"empty body: send a JSON object such as {EXAMPLE}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("body is not UTF-8 text: send UTF-8 encoded JSON") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RequestRefused:
        raise
    except RecursionError:
        raise _bad(
            f"body is nested too deeply: a request needs at most {MAX_DEPTH} levels of [] and {{}}"
        ) from None
    except json.JSONDecodeError as error:
        # Line and column locate the problem without quoting the body.
        raise _bad(
            f"body is not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from None
    except ValueError:  # e.g. an integer with more digits than Python converts
        raise _bad("body is not valid JSON for a model request: a number has too many digits") from None


def check_depth(document: Any) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH`, iteratively (no recursion to exhaust)."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise _bad(
                    f"body is nested too deeply: a request needs at most {MAX_DEPTH} levels of [] and {{}}"
                )
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def frame_cells(document: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """Column names and rows (as dicts) of a ``dataframe_split`` / ``dataframe_records`` request."""
    if not isinstance(document, dict):
        raise _bad(f"body must be a JSON object such as {EXAMPLE}, not a {_json_kind(document)}")
    unknown = [key for key in document if key not in TOP_LEVEL_FIELDS]
    if unknown:
        raise _bad(
            f"body has {len(unknown)} field(s) this server does not take; allowed: "
            f"{', '.join(TOP_LEVEL_FIELDS)} (instances/inputs are not supported for these models)"
        )
    given = [key for key in FRAME_FIELDS if key in document]
    if len(given) != 1:
        raise _bad("body must hold exactly one of dataframe_split or dataframe_records")
    orient = given[0]
    data = document[orient]
    if orient == "dataframe_split":
        if not isinstance(data, dict):
            raise _bad('dataframe_split must be an object {"columns": [...], "data": [[...], ...]}')
        extra = [key for key in data if key not in ("columns", "data", "index")]
        if extra or "columns" not in data or "data" not in data:
            raise _bad(
                'dataframe_split must hold "columns" and "data" (and optionally "index"), nothing else'
            )
        columns, rows = data["columns"], data["data"]
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise _bad("dataframe_split.columns must be a list of column names (strings)")
        if len(set(columns)) != len(columns):
            raise _bad("dataframe_split.columns names a column twice")
        if not isinstance(rows, list):
            raise _bad("dataframe_split.data must be a list of rows, each a list of values")
        bad_rows = [i for i, row in enumerate(rows) if not isinstance(row, list) or len(row) != len(columns)]
        if bad_rows:
            raise _bad(
                f"dataframe_split.data: {_rows(bad_rows)} not a list of {len(columns)} value(s) "
                "(one per column)"
            )
        if "index" in data and (not isinstance(data["index"], list) or len(data["index"]) != len(rows)):
            raise _bad("dataframe_split.index must be a list with one entry per row")
        return columns, [dict(zip(columns, row, strict=True)) for row in rows]
    if not isinstance(data, list):
        raise _bad("dataframe_records must be a list of objects, one per row: [{column: value, ...}, ...]")
    bad_rows = [i for i, row in enumerate(data) if not isinstance(row, dict)]
    if bad_rows:
        raise _bad(f"dataframe_records: {_rows(bad_rows)} not an object {{column: value, ...}}")
    return list(dict.fromkeys(key for row in data for key in row)), data


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list) else "object"


_ALLOWED = {  # MLflow type -> JSON kinds a cell may hold (null is always allowed: the model decides)
    "string": {"string"},
    "double": {"number"},
    "float": {"number"},
    "long": {"integer"},
    "integer": {"integer"},
    "boolean": {"boolean"},
    "datetime": {"string"},
    "category_code": {"integer", "string"},  # a category stored as numbers: 2 or "2"
}
_WANTED = {
    "string": "text",
    "double": "numbers",
    "float": "numbers",
    "long": "whole numbers",
    "integer": "whole numbers",
    "boolean": "true/false",
    "category_code": "category codes as whole numbers or text",
    "datetime": "ISO 8601 date(-time) strings, e.g. 2024-01-31 or 2024-01-31T14:05:00",
}


def _cell_kind(value: Any) -> str:
    kind = _json_kind(value)
    if kind == "number" and isinstance(value, int):
        return "integer"
    return kind


def _fits(kind: str, allowed: set[str]) -> bool:
    return kind in allowed or (kind == "integer" and "number" in allowed)


def check_frame(contract: ModelContract, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """Columns exactly those of the schema; every cell a scalar of the column's JSON type."""
    if not contract.columns:
        return
    missing = [name for name in contract.columns if name not in columns]
    if missing:
        raise _bad(
            f"request lacks column(s) {missing}: the model takes {contract.describe()}",
            "INVALID_PARAMETER_VALUE",
        )
    extra = [name for name in columns if name not in contract.columns]
    if extra:
        # Their names came from the client: counted, not quoted.
        raise _bad(
            f"request has {len(extra)} column(s) the model does not take; it takes exactly "
            f"{contract.describe()}",
            "INVALID_PARAMETER_VALUE",
        )
    for name, kind in contract.columns.items():
        allowed = _ALLOWED.get(kind)
        containers, wrong = [], []
        for i, row in enumerate(rows):
            value = row.get(name)
            if value is None:
                continue
            cell = _cell_kind(value)
            if cell in ("list", "object"):
                containers.append(i)
            elif allowed is not None and not _fits(cell, allowed):
                wrong.append(i)
        if containers:
            raise _bad(
                f"column {name!r} holds lists or objects in {_rows(containers)}: each cell must be a "
                "single value or null",
                "INVALID_PARAMETER_VALUE",
            )
        if wrong:
            raise _bad(
                f"column {name!r} must hold {_WANTED[kind]} (or null); {len(wrong)} value(s) are not "
                f"({_rows(wrong)})",
                "INVALID_PARAMETER_VALUE",
            )
        if kind == "datetime":
            check_dates(name, rows)


def check_dates(name: str, rows: list[dict[str, Any]]) -> None:
    """ISO 8601 strings only: MLflow would otherwise guess a format (and day-first dates would swap)."""
    given = [(i, row.get(name)) for i, row in enumerate(rows) if row.get(name) is not None]
    if not given:
        return
    values = pd.Series([value for _, value in given], dtype=object)
    try:
        parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
    except ValueError:  # offsets that differ between rows
        parsed = None
    if parsed is None or getattr(parsed.dt, "tz", None) is not None:
        # Hour and weekday are model features: they must be the caller's local clock, as in training.
        raise _bad(
            f"column {name!r} holds date-times with a time-zone offset: send local date-times without "
            "one, e.g. 2024-01-31T14:05:00",
            "INVALID_PARAMETER_VALUE",
        )
    bad = [given[j][0] for j in range(len(given)) if pd.isna(parsed.iloc[j])]
    if bad:
        raise _bad(
            f"column {name!r} holds {len(bad)} value(s) that are not ISO 8601 dates ({_rows(bad)}): send "
            "e.g. 2024-01-31 or 2024-01-31T14:05:00",
            "INVALID_PARAMETER_VALUE",
        )
    # MLflow converts dates to nanosecond timestamps, which hold only these years.
    years = parsed.dt.year.to_numpy()
    bad = [given[j][0] for j in range(len(given)) if not FIRST_YEAR <= years[j] <= LAST_YEAR]
    if bad:
        raise _bad(
            f"column {name!r} holds {len(bad)} date(s) outside the years {FIRST_YEAR} to {LAST_YEAR} "
            f"({_rows(bad)}): no model here answers for them",
            "INVALID_PARAMETER_VALUE",
        )
    # One format for every row: MLflow guesses a format from the first value and fails on others.
    for (i, _), text in zip(given, parsed.dt.strftime("%Y-%m-%dT%H:%M:%S.%f"), strict=True):
        rows[i][name] = text


_PARAM_KINDS = {
    "string": (str,),
    "double": (int, float),
    "float": (int, float),
    "long": (int,),
    "integer": (int,),
    "boolean": (bool,),
    "datetime": (str,),
}


def _param_fits(item: Any, types: tuple[type, ...] | None) -> bool:
    if item is None or isinstance(item, dict | list):
        return False
    if types is None:
        return True
    # JSON true/false are Python ints: only a boolean param takes them.
    return isinstance(item, types) and (bool in types or not isinstance(item, bool))


def check_params(contract: ModelContract, params: Any) -> None:
    """``params`` must be an object whose keys the model declares, with values of the declared type."""
    if params is None:
        return
    if not isinstance(params, dict):
        raise _bad('params must be an object {"name": value}', "INVALID_PARAMETER_VALUE")
    if not contract.params and params:
        raise _bad("this model takes no params: leave params out", "INVALID_PARAMETER_VALUE")
    unknown = [key for key in params if key not in contract.params]
    if unknown:
        raise _bad(
            f"params has {len(unknown)} name(s) the model does not take; it takes {sorted(contract.params)}",
            "INVALID_PARAMETER_VALUE",
        )
    for name, value in params.items():
        kind, is_list = contract.params[name]
        values = value if is_list and isinstance(value, list) else [value]
        types = _PARAM_KINDS.get(kind)
        ok = (is_list or not isinstance(value, list)) and all(_param_fits(item, types) for item in values)
        if not ok:
            raise _bad(f"param {name!r} must be a {kind}", "INVALID_PARAMETER_VALUE")


def check_request(contract: ModelContract, body: bytes) -> bytes:
    """Every check the guard makes on a ``/invocations`` body; raises :class:`RequestRefused`.

    Returns the body MLflow gets: the checked rows re-encoded as ``dataframe_split`` (dates in one
    ISO format) with the checked ``params``, so MLflow parses exactly what was checked.
    """
    document = parse_body(body)
    check_depth(document)
    columns, rows = frame_cells(document)
    check_params(contract, document.get("params"))
    check_frame(contract, columns, rows)
    forwarded: dict[str, Any] = {
        "dataframe_split": {"columns": columns, "data": [[row.get(c) for c in columns] for row in rows]}
    }
    if document.get("params"):
        forwarded["params"] = document["params"]
    return json.dumps(forwarded, allow_nan=False).encode()


# --------------------------------------------------------------------------- errors from the model


# What the model said about the request being served, found by the thread that ran `predict`
# (MLflow runs it in a worker thread, which starts with a copy of the request's context).
_REFUSAL: contextvars.ContextVar[dict | None] = contextvars.ContextVar("model_refusal", default=None)


def client_message(error: BaseException) -> str | None:
    """The message of the first error in ``error``'s chain that is written for clients, if any.

    The toolkit's request errors set ``client_safe = True`` on their class: their messages name
    columns, row positions and the model's own values, never values from the request. Checked by
    attribute, not by class, because a served model imports its own copy of the toolkit.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if getattr(type(error), "client_safe", False):
            return str(error)
        error = error.__cause__ or error.__context__
    return None


class GuardedModel:
    """The loaded pyfunc as MLflow's app sees it, noting the client-safe message of a refusal."""

    def __init__(self, model):
        self._model = model
        self.metadata = model.metadata

    def __getattr__(self, name):
        return getattr(self._model, name)

    def predict(self, data, params=None):
        try:
            return self._model.predict(data, params=params)
        except Exception as error:
            refusal = _REFUSAL.get()
            if refusal is not None:
                refusal["message"] = client_message(error)
                refusal["kind"] = type(error).__name__
            raise


# --------------------------------------------------------------------------- the ASGI middleware


_GENERIC = {
    404: ("ENDPOINT_NOT_FOUND", "no such endpoint: use POST /invocations, GET /ping, /health or /version"),
    405: ("METHOD_NOT_ALLOWED", "method not allowed: POST /invocations; GET /ping, /health, /version"),
    504: ("REQUEST_TIMEOUT", "the model took longer than the server's time limit to answer"),
}


class ScoringGuard:
    """ASGI middleware around MLflow's scoring app (see the module docstring)."""

    def __init__(self, app, contract: ModelContract, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES):
        self.app = app
        self.contract = contract
        self.max_body_bytes = int(max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self._serve(scope, receive, send)
        except RequestRefused as refused:
            await _respond(send, refused.status, refused.error_code, refused.message)
        except Exception:
            logger.exception("the guard failed on a request")  # our bug: no request value in the reply
            await _respond(
                send, 500, "INTERNAL_ERROR", "internal error in the server; its log has the details"
            )

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        is_scoring = scope["path"] == "/invocations" and scope["method"] == "POST"
        if is_scoring:
            headers = {
                key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]
            }
            check_content_type(headers.get("content-type"))
            if headers.get("content-encoding", "identity").strip().lower() != "identity":
                raise RequestRefused(
                    415,
                    "UNSUPPORTED_MEDIA_TYPE",
                    "compressed bodies (Content-Encoding) are not taken: send plain JSON",
                )
            body = await self._read_body(headers, receive)
            receive = _replay(check_request(self.contract, body))
        refusal: dict = {}
        token = _REFUSAL.set(refusal)
        try:
            await self.app(scope, receive, _Sanitiser(send, refusal, self.contract).send)
        finally:
            _REFUSAL.reset(token)

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes:
        too_large = RequestRefused(
            413,
            "REQUEST_TOO_LARGE",
            f"body larger than {self.max_body_bytes:,} bytes: send fewer rows per request",
        )
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                raise _bad("Content-Length is not a number")
            if int(length) > self.max_body_bytes:
                raise too_large
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _bad("the client closed the connection before the body was complete")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


class _Sanitiser:
    """Passes successful responses through; replaces the body of every error response."""

    def __init__(self, send: Send, refusal: dict, contract: ModelContract):
        self._send = send
        self._refusal = refusal
        self._contract = contract
        self._status: int | None = None

    async def send(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self._status = message["status"]
            if self._status < 400:
                await self._send(message)
            return
        if self._status is None or self._status < 400:
            await self._send(message)
            return
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            status, code, text = self._replacement(self._status)
            await _respond(self._send, status, code, text)

    def _replacement(self, status: int) -> tuple[int, str, str]:
        if status in _GENERIC:
            return (status, *_GENERIC[status])
        message = self._refusal.get("message")
        if message:
            return 400, "INVALID_PARAMETER_VALUE", message
        if "kind" in self._refusal:
            # MLflow's own schema enforcement or a model without client-safe messages: its text may
            # quote the request, so only its kind is logged and the client gets the schema.
            logger.warning("model refused a request with %s (message withheld)", self._refusal["kind"])
        return (
            400 if status < 500 else status,
            "INVALID_PARAMETER_VALUE" if status < 500 else "INTERNAL_ERROR",
            f"the model could not score this request; check it against the input schema: "
            f"{self._contract.describe()}",
        )


async def _respond(send: Send, status: int, error_code: str, message: str) -> None:
    body = json.dumps({"error_code": error_code, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


# --------------------------------------------------------------------------- building and running


def load(model_uri: str):
    """The pyfunc at ``model_uri``; a registered one (``models:/...``) only after its integrity check.

    :func:`mlops.integrity.load_verified_model` refuses a version whose files changed since
    registration. Other URIs (a local folder, ``runs:/``) have no recorded manifest: they load
    unchecked, with a warning, for development only.
    """
    if model_uri.startswith("models:/"):
        from mlops.integrity import load_verified_model

        return load_verified_model(model_uri)
    import mlflow

    logger.warning("%s is not a registered model: loaded without an integrity check", model_uri)
    return mlflow.pyfunc.load_model(model_uri)


def build_app(model, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES):
    """MLflow's scoring app for ``model`` (a loaded pyfunc) behind :class:`ScoringGuard`."""
    from mlflow.pyfunc import scoring_server

    contract = ModelContract.from_model(model)
    return ScoringGuard(scoring_server.init(GuardedModel(model)), contract, max_body_bytes)


# How the command tells its worker processes (fresh interpreters, started by uvicorn) what to serve.
MODEL_DIR_VARIABLE = "MLOPS_SERVE_MODEL_DIR"
DIGEST_VARIABLE = "MLOPS_SERVE_MANIFEST_SHA256"
MAX_BODY_VARIABLE = "MLOPS_SERVE_MAX_BODY_BYTES"
LABEL_VARIABLE = "MLOPS_SERVE_MODEL_URI"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def prepare(model_uri: str) -> tuple[Path, str]:
    """A local folder holding ``model_uri`` and the SHA-256 digest of its file manifest.

    A registered model (``models:/...``) is downloaded and checked against the manifest recorded
    at registration (:func:`mlops.integrity.verify_model`); its digest is the recorded one. Other
    URIs have no recorded manifest: they are used unchecked, with a warning, for development only,
    and the digest only pins the files as they are now.
    """
    from mlops.integrity import DIGEST_TAG, file_manifest, manifest_digest, verify_model

    if model_uri.startswith("models:/"):
        version, folder = verify_model(model_uri)
        return folder, version.tags[DIGEST_TAG]
    logger.warning("%s is not a registered model: served without an integrity check", model_uri)
    if Path(model_uri).is_dir():
        folder = Path(model_uri).resolve()
    else:  # runs:/..., a remote folder: one download, shared by the workers, removed at exit
        import atexit
        import shutil
        import tempfile

        import mlflow

        download = tempfile.mkdtemp(prefix="served-model-")
        atexit.register(shutil.rmtree, download, ignore_errors=True)
        folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=download))
    return folder, manifest_digest(file_manifest(folder))


def app_from_environment():
    """The guarded app of one worker process: uvicorn's factory when ``--workers`` is above 1.

    Serves only the folder the command prepared (:data:`MODEL_DIR_VARIABLE`), and only if the
    digest of its files is still the one the command accepted (:data:`DIGEST_VARIABLE`): a folder
    changed since the check, or a worker started without a digest, refuses to start. A refusal
    exits with uvicorn's start-up failure status, which stops the command instead of respawning.
    """
    from uvicorn.config import STARTUP_FAILURE

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    label = os.environ.get(LABEL_VARIABLE, "the model")
    try:
        folder, digest = os.environ[MODEL_DIR_VARIABLE], os.environ[DIGEST_VARIABLE]
    except KeyError as missing:
        logger.error("worker started without %s: it serves only a folder prepared by main()", missing)
        raise SystemExit(STARTUP_FAILURE) from None
    try:
        import mlflow

        from mlops.integrity import file_manifest, manifest_digest

        if manifest_digest(file_manifest(Path(folder))) != digest:
            raise RuntimeError(f"the files in {folder} changed after their integrity check; not served")
        model = mlflow.pyfunc.load_model(folder)
        return build_app(model, int(os.environ.get(MAX_BODY_VARIABLE, DEFAULT_MAX_BODY_BYTES)))
    except Exception as error:
        logger.error("worker cannot serve %s: %s", label, error)
        raise SystemExit(STARTUP_FAILURE) from None


def serve_workers(model_uri: str, host: str, port: int, workers: int, max_body_bytes: int) -> None:
    """Check ``model_uri`` once here, then serve it from ``workers`` uvicorn worker processes.

    Exits with status 2 if the check fails or a worker cannot start (its log line says why).
    """
    try:
        folder, digest = prepare(model_uri)
    except Exception as error:
        print(f"error: cannot load {model_uri}: {error}", file=sys.stderr)
        sys.exit(2)
    os.environ.update(
        {
            MODEL_DIR_VARIABLE: str(folder),
            DIGEST_VARIABLE: digest,
            MAX_BODY_VARIABLE: str(max_body_bytes),
            LABEL_VARIABLE: model_uri,
        }
    )
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    # What uvicorn.run does for workers > 1, keeping the supervisor to read the workers' exit codes.
    config = uvicorn.Config(
        "mlops.serve:app_from_environment", factory=True, host=host, port=port, workers=workers
    )
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        print(f"error: cannot serve {model_uri}: a worker could not start (see its log)", file=sys.stderr)
        sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mlops.serve",
        description="Serve a registered model over HTTP with MLflow's scoring app behind the toolkit's "
        "request guard (docs/serving.md, section Errors).",
    )
    parser.add_argument("model_uri", help="e.g. models:/disposition-remote-closure@champion")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default loopback)")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument(
        "--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES, help="larger bodies get 413"
    )
    parser.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="worker processes (default 1); the model is checked once, then each worker loads it",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    if args.workers > 1:
        serve_workers(args.model_uri, args.host, args.port, args.workers, args.max_body_bytes)
        return
    try:
        model = load(args.model_uri)
    except Exception as error:  # a wrong URI, a store that is not there, a refused model
        print(f"error: cannot load {args.model_uri}: {error}", file=sys.stderr)
        sys.exit(2)
    import uvicorn

    # Uvicorn's access log prints paths and statuses only, never bodies.
    uvicorn.run(build_app(model, args.max_body_bytes), host=args.host, port=args.port)


def _positive(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return int(text)


if __name__ == "__main__":
    main()
