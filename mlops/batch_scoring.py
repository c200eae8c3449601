"""Score a folder of Parquet files with a registered model, on the engine (pipeline layer).

The model is checked against its registration manifest (:func:`mlops.integrity.verify_model`)
before anything is read; its verified files are then sent to the workers as bytes (they need not
see the registry or this machine's disk) and loaded once per worker process. The input's Parquet
row groups are batched into partitions of about ``rows_per_task`` rows; each task reads its
partition, calls the model's ``predict`` and writes one Parquet part. Parts go to a hidden folder
beside ``output`` that becomes ``output`` only when every part is written (:mod:`mlops.staging`),
with ``_scoring.json`` saying which model version scored how many rows: a failed job leaves nothing.

The model is called as the served pyfunc is (same params, same checks inside the model), except
that MLflow's input-schema enforcement runs column by column (:func:`predict_columnar`): for a
column declared ``Any`` MLflow rebuilds the column value by value and changes nothing else, which
cost more than the model itself on Parquet columns, whose values all have the column's one type.
On a cluster, ``input`` and the folder holding ``output`` must be on storage every worker sees.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig

from mlops.config_checks import ListOf, MappingOf, Text, WholeNumber, check_tracking, shown
from mlops.engine import start_engine
from mlops.engine_checks import check_engine, current_launcher
from mlops.errors import ConfigError, DataValidationError
from mlops.integrity import verify_model
from mlops.staging import staged_outputs
from mlops.tracking import resolve_store

# Per worker process: the loaded model of each bundle digest, so a worker loads it once per job.
_LOADED: dict[str, object] = {}


@dataclass(frozen=True)
class ScoringResult:
    model_uri: str
    version: str
    rows: int
    parts: int
    seconds: float
    output_dir: Path
    engine: str


@dataclass(frozen=True)
class ModelBundle:
    """A verified model's files, to be written and loaded where the task runs."""

    digest: str
    files: dict[str, bytes]


def score_directory(cfg: DictConfig) -> ScoringResult:
    """Run the batch-scoring job described by ``cfg`` (conf/batch_score.yaml)."""
    model_uri, input_files, output, keep, per_task, params = _checked(cfg)
    engine_settings = check_engine(cfg, launcher=current_launcher())
    store = resolve_store(cfg.tracking)
    version, local = verify_model(model_uri, store.tracking_uri)
    bundle = _bundle(local)
    partitions = _partitions(input_files, per_task)
    columns = _check_columns(input_files, keep, _load(bundle), params)
    started = time.perf_counter()
    with staged_outputs(output) as staging, start_engine(engine_settings) as engine:
        tasks = [(index, str(path), groups) for index, (path, groups) in enumerate(partitions)]
        shared = {
            "bundle": bundle,
            "out_dir": str(staging),
            "keep": keep,
            "params": params,
            "columns": columns,
        }
        try:
            rows = engine.map(score_partition, tasks, shared)
        except MlflowException as error:  # the model refused a row: say which file, not the value
            where = input_files[0].parent
            raise DataValidationError(f"{where}: the model refused the input: {error.message}") from None
        summary = {
            "model_uri": model_uri,
            "model_version": f"{version.name}/{version.version}",
            "rows": int(sum(rows)),
            "parts": len(tasks),
            "input": [str(path) for path in input_files],
            "engine": engine.describe(),
        }
        (staging / "_scoring.json").write_text(json.dumps(summary, indent=2))
    seconds = time.perf_counter() - started
    return ScoringResult(
        model_uri, str(version.version), summary["rows"], len(tasks), seconds, output, summary["engine"]
    )


def score_partition(
    task, bundle: ModelBundle, out_dir: str, keep: list[str], params: dict, columns: list[str] | None = None
) -> int:
    """Score one partition (row groups of one file) and write it as ``part-<index>.parquet``.

    Only ``columns`` (the model's inputs and ``keep``) are read, when given."""
    index, path, groups = task
    frame = pq.ParquetFile(path).read_row_groups(groups, columns=columns).to_pandas()
    model = _load(bundle)
    scored = predict_columnar(model, frame, params)
    scored = scored.reset_index(drop=True)
    for column in reversed(keep):
        scored.insert(0, column, frame[column].to_numpy())
    scored.to_parquet(Path(out_dir) / f"part-{index:05d}.parquet", index=False)
    return len(scored)


def predict_columnar(model, frame: pd.DataFrame, params: dict | None = None):
    """``model.predict(frame, params)`` of an MLflow pyfunc, with its input schema enforced per column.

    MLflow enforces a column declared ``Any`` by rebuilding it value by value from a Python list
    (``mlflow.models.utils._enforce_type`` returns each value unchanged): the values stay the same,
    at several microseconds a value. A column with a NumPy dtype (numbers, booleans, date-times) or
    pandas' string dtype, as every Parquet column is read, holds values of that one type, so it is
    passed as it is; any other ``Any`` column (object, nullable integers) is rebuilt as MLflow does.
    Typed columns go through MLflow's own (column-wise) enforcement, and params through its params
    schema, then the model's own ``predict`` runs with every check it makes (for the remote-closure
    model: request types, impossible values, hard rules, withheld levels). Models whose signature
    comes from type hints, or without named columns, are called the usual way.
    """
    from mlflow.models.utils import _enforce_params_schema, _enforce_schema, _enforce_type
    from mlflow.types.schema import AnyType, Schema

    metadata = model.metadata
    schema = metadata.get_input_schema()
    if (
        schema is None
        or not schema.has_input_names()
        or metadata._is_signature_from_type_hint()
        or metadata._is_type_hint_from_example()
    ):
        return model.predict(frame, params=params or None)
    if missing := [name for name in schema.required_input_names() if name not in frame.columns]:
        raise MlflowException.invalid_parameter_value(
            f"The input column(s) {missing} are required by the model signature but missing from the "
            "input data."
        )
    specs = [spec for spec in schema.inputs if spec.name in frame.columns]
    columns = {}
    for spec in specs:
        if not isinstance(spec.type, AnyType):
            continue
        values = frame[spec.name]
        if (
            isinstance(values.dtype, np.dtype)
            and values.dtype != object
            or isinstance(values.dtype, pd.StringDtype)
        ):
            columns[spec.name] = values
        else:
            columns[spec.name] = pd.Series(
                [_enforce_type(v, spec.type, spec.required) for v in values],
                index=frame.index,
                name=spec.name,
            )
    typed = Schema([spec for spec in specs if not isinstance(spec.type, AnyType)])
    if typed.inputs:
        try:
            enforced = _enforce_schema(frame[typed.input_names()], typed)
        except Exception as error:  # as the pyfunc reports it, without the data
            raise MlflowException.invalid_parameter_value(
                f"Failed to enforce model input schema: {error}", error_class="SCHEMA_ENFORCEMENT_FAILED"
            ) from None
        columns.update({name: enforced[name] for name in enforced.columns})
    data = pd.DataFrame({spec.name: columns[spec.name] for spec in specs}, index=frame.index)
    params = _enforce_params_schema(params or None, metadata.get_params_schema())
    return model._model_impl.predict(data, params=params)


def _checked(cfg: DictConfig):
    model_uri = Text(what="a registered model, e.g. models:/disposition-remote-closure@champion").check(
        cfg, "model_uri", "the model to score with, e.g. model_uri=models:/<name>@champion"
    )
    if not model_uri.startswith("models:/"):
        raise ConfigError(
            f"model_uri={shown(model_uri)}: must be a registered model, models:/<name>@<alias> or "
            "models:/<name>/<version> (only those carry the manifest that is checked)"
        )
    source = Text(what="a folder of Parquet files").check(
        cfg, "input", "the calls to score, e.g. input=calls/ (a folder of Parquet files)"
    )
    target = Text(what="a folder to create").check(cfg, "output", "where to write, e.g. output=scored/")
    keep = ListOf(Text(), min_length=0, what="a list of input columns, e.g. [call_id]").check(cfg, "keep")
    per_task = WholeNumber(1000, unit="rows").check(cfg, "rows_per_task")
    params = MappingOf(what="a mapping of predict params, e.g. {reasons: none}").check(cfg, "params") or {}
    check_tracking(cfg)
    path = Path(source).expanduser()
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    if not path.exists():
        raise ConfigError(f"input={shown(source)}: not found (looked for {path.resolve()})")
    if not files or any(f.suffix not in (".parquet", ".pq") for f in files):
        raise ConfigError(f"input={shown(source)}: holds no .parquet files; give a folder of Parquet files")
    output = Path(target).expanduser()
    if output.exists():
        raise ConfigError(
            f"output={shown(target)}: already exists; give a new folder (scores are never mixed with "
            "an earlier run's)"
        )
    return model_uri, files, output, keep, per_task, params


def _partitions(files: list[Path], per_task: int) -> list[tuple[Path, list[int]]]:
    """Consecutive row groups of each file, batched up to about ``per_task`` rows."""
    partitions = []
    for path in files:
        try:
            metadata = pq.ParquetFile(path).metadata
        except Exception as error:  # pyarrow raises several types for a file that is not Parquet
            raise DataValidationError(f"{path}: cannot be read as Parquet ({error})") from None
        groups: list[int] = []
        rows = 0
        for group in range(metadata.num_row_groups):
            groups.append(group)
            rows += metadata.row_group(group).num_rows
            if rows >= per_task:
                partitions.append((path, groups))
                groups, rows = [], 0
        if groups:
            partitions.append((path, groups))
    return partitions


def _check_columns(files: list[Path], keep: list[str], model, params: dict) -> list[str]:
    """Every file has the model's input columns and the kept ones, which are returned; the first
    rows score."""
    needed = list(dict.fromkeys([*model.metadata.get_input_schema().input_names(), *keep]))
    for path in files:
        names = pq.ParquetFile(path).schema_arrow.names
        if missing := [name for name in needed if name not in names]:
            raise DataValidationError(f"{path}: missing column(s) {missing} that the model or keep needs")
    head = pq.ParquetFile(files[0]).read_row_group(0, columns=needed).slice(0, 100).to_pandas()
    try:
        predict_columnar(model, head, params)
    except MlflowException as error:
        raise DataValidationError(f"{files[0]}: the model refused the first rows: {error.message}") from None
    return needed


def _bundle(local: Path) -> ModelBundle:
    files = {str(p.relative_to(local)): p.read_bytes() for p in sorted(local.rglob("*")) if p.is_file()}
    digest = hashlib.sha256()
    for name, data in files.items():
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return ModelBundle(digest.hexdigest(), files)


def _load(bundle: ModelBundle):
    if bundle.digest not in _LOADED:
        import mlflow.pyfunc

        folder = Path(tempfile.mkdtemp(prefix="batch-model-"))
        atexit.register(shutil.rmtree, folder, True)
        for name, data in bundle.files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        _LOADED[bundle.digest] = mlflow.pyfunc.load_model(str(folder))
    return _LOADED[bundle.digest]
