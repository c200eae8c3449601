"""Batch scoring a Parquet folder with a registered model: verified first, same scores on the local
engine and on the cluster, nothing written when the input or config is wrong."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from forecasting.pipeline import train
from mlops.batch_scoring import _bundle, _partitions, score_directory, score_partition
from mlops.errors import ConfigError, DataValidationError
from mlops.integrity import load_verified_model, verify_model
from tests.conftest import compose_config, fast_forecast_overrides
from tests.engine.conftest import worker_pids

MODEL = "models:/daily-demand-synthetic@champion"


@pytest.fixture(scope="module")
def registered(tmp_path_factory, small_counts):
    """A seasonal-naive forecaster registered in a fresh store, and a request set in two files."""
    folder = tmp_path_factory.mktemp("batch")
    counts = folder / "counts.csv"
    small_counts.to_csv(counts, index=False)
    store = folder / "mlruns"
    train(
        compose_config("forecast", fast_forecast_overrides(counts, store, "seasonal_naive")), folder / "run"
    )
    days = pd.date_range(small_counts["ds"].max() + pd.Timedelta(days=1), periods=21)
    requests = pd.DataFrame(
        [(uid, day) for uid in sorted(small_counts["unique_id"].unique()) for day in days],
        columns=["unique_id", "ds"],
    )
    requests.insert(0, "request_id", range(len(requests)))
    inputs = folder / "requests"
    inputs.mkdir()
    half = len(requests) // 2
    for k, part in enumerate([requests.iloc[:half], requests.iloc[half:]]):  # 5 row groups each
        pq.write_table(
            pa.Table.from_pandas(part, preserve_index=False), inputs / f"r{k}.parquet", row_group_size=9
        )
    return {"store": store, "inputs": inputs, "requests": requests, "folder": folder}


def _score(registered, output, *extra):
    overrides = [
        f"model_uri={MODEL}",
        f"input={registered['inputs']}",
        f"output={output}",
        f"tracking.store_dir={registered['store']}",
        "keep=[request_id]",
        "rows_per_task=1000",
        *extra,
    ]
    return score_directory(compose_config("batch_score", overrides))


def _read(folder) -> pd.DataFrame:
    return pd.read_parquet(folder).sort_values("request_id", ignore_index=True)


def test_local_and_cluster_scores_equal_the_model_itself(registered, dask_engine):
    model = load_verified_model(MODEL, f"sqlite:///{registered['store'] / 'mlflow.db'}")
    requests = registered["requests"]
    expected = model.predict(requests[["unique_id", "ds"]])
    expected.insert(0, "request_id", requests["request_id"])

    local = _score(registered, registered["folder"] / "local")
    assert (local.rows, local.parts) == (len(requests), 2)
    pd.testing.assert_frame_equal(_read(local.output_dir), expected, check_dtype=False)
    summary = json.loads((local.output_dir / "_scoring.json").read_text())
    assert summary["model_version"] == "daily-demand-synthetic/1" and summary["rows"] == len(requests)

    address = dask_engine.client.scheduler.address  # the test cluster, on loopback
    small = _score(
        registered,
        registered["folder"] / "dask",
        "engine=dask",
        f"engine.address={address}",
        "rows_per_task=1000",
    )
    assert small.engine.startswith("dask (2 workers")
    pd.testing.assert_frame_equal(_read(small.output_dir), _read(local.output_dir))


def test_bad_input_is_refused_before_anything_is_written(registered, tmp_path):
    with pytest.raises(ConfigError, match="already exists; give a new folder"):
        _score(registered, registered["inputs"])
    with pytest.raises(ConfigError, match="^model_uri=runs:/abc/model: must be a registered model"):
        _score(registered, tmp_path / "out", "model_uri=runs:/abc/model")
    broken = tmp_path / "broken"
    broken.mkdir()
    registered["requests"].drop(columns="ds").to_parquet(broken / "a.parquet")
    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['ds'\]"):
        _score(registered, tmp_path / "out", f"input={broken}")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no hidden half-output


def test_a_worker_killed_while_scoring_loses_no_part(registered, dask_engine, tmp_path):
    """The tasks of a worker that dies are scored again on the other: every part is written whole,
    with the same scores as here (each task slowed so that the kill lands mid-job)."""
    _, local_model = verify_model(MODEL, f"sqlite:///{registered['store'] / 'mlflow.db'}")
    tasks = [
        (i, str(path), groups)
        for i, (path, groups) in enumerate(_partitions(sorted(registered["inputs"].glob("*.parquet")), 9))
    ]
    shared = {"bundle": _bundle(local_model), "keep": ["request_id"], "params": {}, "columns": None}
    (tmp_path / "here").mkdir()
    (tmp_path / "cluster").mkdir()
    expected = [score_partition(task, out_dir=str(tmp_path / "here"), **shared) for task in tasks]
    before = worker_pids(dask_engine)
    killer = threading.Timer(0.8, os.kill, args=(before[0], signal.SIGKILL))
    killer.start()
    started = time.monotonic()
    rows = dask_engine.map(_slow_score, tasks, {**shared, "out_dir": str(tmp_path / "cluster")})
    killer.join()
    assert time.monotonic() - started > 0.8  # the kill happened while tasks were running
    assert rows == expected and len(tasks) == 10
    pd.testing.assert_frame_equal(_read(tmp_path / "cluster"), _read(tmp_path / "here"))
    dask_engine.client.wait_for_workers(2, timeout=30)


def _slow_score(task, **shared):
    time.sleep(0.3)
    return score_partition(task, **shared)
