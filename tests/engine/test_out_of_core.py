"""Out-of-core remote-closure training from a Parquet folder on the test cluster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from disposition.distributed import (
    columns_from,
    encoded_features,
    fixed_encoder,
    read_calls,
    training_arrays,
    window_bounds,
)
from disposition.distributed_pipeline import train_distributed
from disposition.features import CallEncoder
from disposition.safety import rules_from_mapping
from mlops.batch_scoring import score_directory
from mlops.integrity import load_verified_model
from tests.conftest import compose_config

SYNTHETIC_CALLS = "data/synthetic/calls.parquet"


@pytest.fixture(scope="module")
def call_folder(tmp_path_factory):
    """60,000 synthetic calls in three time-ordered files (a partition each), and the frame."""
    calls = pd.read_parquet(SYNTHETIC_CALLS).iloc[:60_000].reset_index(drop=True)
    folder = tmp_path_factory.mktemp("calls")
    for k in range(3):
        calls.iloc[k * 20_000 : (k + 1) * 20_000].to_parquet(folder / f"part{k}.parquet", index=False)
    return folder, calls


def _columns():
    rules = rules_from_mapping({"category": ["C1"]})
    return columns_from(
        ["area", "symptom_group", "sex"], ["age"], "call_time", ["hour"], "safe_remote", rules
    )


def test_levels_are_fixed_across_partitions_and_windows_cut_whole_days(dask_engine, call_folder):
    folder, calls = call_folder
    frame = read_calls(str(folder), _columns())
    encoder = fixed_encoder(frame, _columns().features)
    in_memory = CallEncoder(["area", "symptom_group", "sex"], ["age", "hour"]).fit(calls)
    assert encoder.levels_ == in_memory.levels_  # the union over partitions = the whole file's levels
    cal_start, test_start = window_bounds(frame, "call_time", 0.2, 0.2)
    assert cal_start == cal_start.normalize() and test_start == test_start.normalize()
    share_before = (calls["call_time"] < cal_start).mean(), (calls["call_time"] < test_start).mean()
    assert share_before[0] == pytest.approx(0.6, abs=0.01) and share_before[1] == pytest.approx(0.8, abs=0.01)


def test_training_arrays_keep_every_training_call_with_labels_aligned(tmp_path):
    """Nine files: dask-expr fuses Parquet partitions by the share of the columns a graph reads, so
    counts or labels taken from another graph than the features' did not line up (calls dropped)."""
    calls = pd.read_parquet(SYNTHETIC_CALLS).iloc[:45_000].reset_index(drop=True)
    for k in range(9):
        calls.iloc[k * 5_000 : (k + 1) * 5_000].to_parquet(tmp_path / f"part{k}.parquet", index=False)
    frame = read_calls(str(tmp_path), _columns())
    cut = calls["call_time"].iloc[28_000]  # files 6-8 hold no training call
    encoder = fixed_encoder(frame, _columns().features)
    X, y = training_arrays(frame[frame["call_time"] < cut], encoder, _columns())
    train = calls[calls["call_time"] < cut]
    assert X.shape == (len(train), len(encoder.feature_names_)) and X.chunks[0] == y.chunks[0]
    expected = encoded_features(train, encoder, _columns().features).to_numpy()
    np.testing.assert_array_equal(X.compute(), expected)
    np.testing.assert_array_equal(y.compute(), train["safe_remote"].to_numpy(dtype="int8"))


@pytest.mark.slow
def test_out_of_core_training_registers_todays_pyfunc(dask_engine, call_folder, tmp_path):
    folder, calls = call_folder
    address = dask_engine.client.scheduler.address
    overrides = [
        f"calls.path={folder}",
        f"tracking.store_dir={tmp_path / 'mlruns'}",
        f"engine.address={address}",
        "classifier.n_estimators=40",
        # Champion needs the test window's bound within the limit: one these 60,000 calls support.
        "safety.limit=0.05",
        "safety.confirm_power=0.9",
    ]
    result = train_distributed(compose_config("disposition_distributed", overrides), tmp_path / "run")
    assert result.promoted, result.reason
    assert result.metrics["test_deployed_upper_bound"] <= 0.05 and "test-window bound" in result.reason
    assert result.metrics["n_training"] + result.metrics["n_test"] < len(calls)
    assert result.metrics["test_auc"] > 0.9
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    model = load_verified_model(result.model_uri, uri)
    answers = model.predict(calls.iloc[-500:], params={"reasons": "none"})
    assert answers["p_safe_remote"].between(0, 1).all() and answers["recommend_remote"].any()
    # The same model through the batch scorer, on the cluster.
    scored = score_directory(
        compose_config(
            "batch_score",
            [
                f"model_uri={result.model_uri}",
                f"input={folder}",
                f"output={tmp_path / 'scored'}",
                f"tracking.store_dir={tmp_path / 'mlruns'}",
                "keep=[call_id]",
                "+params.reasons=none",
                "engine=dask",
                f"engine.address={address}",
            ],
        )
    )
    assert scored.rows == len(calls)
    batch = pd.read_parquet(tmp_path / "scored").set_index("call_id").loc[calls["call_id"].iloc[-500:]]
    pd.testing.assert_series_equal(
        batch["p_safe_remote"].reset_index(drop=True),
        answers["p_safe_remote"].reset_index(drop=True),
        check_names=False,
    )
