"""Batch scoring a Parquet folder with a registered model: verified first, same scores on the local
engine and on the cluster, nothing written when the input or config is wrong."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from forecasting.pipeline import train
from mlops.batch_scoring import score_directory
from mlops.errors import ConfigError, DataValidationError
from mlops.integrity import load_verified_model
from tests.conftest import compose_config, fast_forecast_overrides

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
