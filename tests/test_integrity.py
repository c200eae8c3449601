"""Registered models carry a SHA-256 manifest; the load helper refuses a model whose files changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import mlops.integrity as integrity
from forecasting.pipeline import train
from mlops.errors import UserInputError
from mlops.integrity import (
    DIGEST_TAG,
    MANIFEST_ARTIFACT_TAG,
    MANIFEST_TAG,
    ModelIntegrityError,
    file_manifest,
    load_verified_model,
    manifest_digest,
)
from tests.conftest import compose_config, fast_forecast_overrides

NAME = "daily-demand-synthetic"


@pytest.fixture(scope="module")
def registered(tmp_path_factory, small_counts) -> tuple[str, Path]:
    """A store with one version registered by the forecasting job (seasonal naive: quick)."""
    tmp = tmp_path_factory.mktemp("integrity")
    small_counts.to_csv(tmp / "counts.csv", index=False)
    cfg = compose_config(
        "forecast", fast_forecast_overrides(tmp / "counts.csv", tmp / "store", "seasonal_naive")
    )
    train(cfg, tmp / "out")
    return f"sqlite:///{tmp / 'store' / 'mlflow.db'}", tmp


def _stored_folder(tracking_uri: str, version: str = "1") -> Path:
    """Where the artifact store keeps the version's files (what an attacker would overwrite)."""
    client = MlflowClient(tracking_uri)
    model_id = client.get_model_version(NAME, version).source.rsplit("/", 1)[-1]  # models:/m-...
    location = client.get_logged_model(model_id).artifact_location
    return Path(unquote(urlparse(location).path))


def test_version_records_manifest_and_digest(registered):
    tracking_uri, _ = registered
    tags = MlflowClient(tracking_uri).get_model_version(NAME, "1").tags
    manifest = json.loads(tags[MANIFEST_TAG])
    assert manifest_digest(manifest) == tags[DIGEST_TAG]
    assert {"MLmodel", "artifacts/forecaster.joblib", "artifacts/serving.json"} <= set(manifest)
    assert any(path.startswith("code/forecasting/") for path in manifest)  # code run at load is covered
    assert manifest == file_manifest(_stored_folder(tracking_uri))


def test_untampered_model_loads_and_answers(registered, small_counts):
    tracking_uri, _ = registered
    model = load_verified_model(f"models:/{NAME}@champion", tracking_uri)
    day = small_counts["ds"].max() + pd.Timedelta(days=1)
    answer = model.predict(pd.DataFrame({"unique_id": ["city/C2"], "ds": [day]}))
    assert answer["mean"].iloc[0] > 0


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda folder: (folder / "artifacts" / "forecaster.joblib").write_bytes(b"not the model"),
         r"file artifacts/forecaster.joblib was changed"),
        (lambda folder: (folder / "code" / "forecasting" / "evil.py").write_text("import os\n"),
         r"file code/forecasting/evil.py was added"),
        (lambda folder: (folder / "artifacts" / "serving.json").unlink(),
         r"file artifacts/serving.json is missing"),
    ],
    ids=["changed", "added", "removed"],
)  # fmt: skip
def test_tampered_artifacts_are_refused_at_load(registered, tamper, message):
    tracking_uri, tmp = registered
    folder = _stored_folder(tracking_uri)
    backup = tmp / "backup"
    shutil.copytree(folder, backup)
    try:
        tamper(folder)
        with pytest.raises(ModelIntegrityError, match=message) as refused:
            load_verified_model(f"models:/{NAME}@champion", tracking_uri)
        assert isinstance(refused.value, UserInputError)
        assert f"{NAME} v1" in str(refused.value) and "\n" not in str(refused.value)
    finally:
        shutil.rmtree(folder)
        shutil.copytree(backup, folder)
        shutil.rmtree(backup)
    load_verified_model(f"models:/{NAME}/1", tracking_uri)  # restored: loads again


def test_a_changed_manifest_tag_is_refused(registered):
    tracking_uri, _ = registered
    client = MlflowClient(tracking_uri)
    original = client.get_model_version(NAME, "1").tags[MANIFEST_TAG]
    forged = json.loads(original)
    forged["artifacts/forecaster.joblib"] = "0" * 64
    client.set_model_version_tag(NAME, "1", MANIFEST_TAG, json.dumps(forged))
    try:
        with pytest.raises(ModelIntegrityError, match="does not match the digest"):
            load_verified_model(f"models:/{NAME}/1", tracking_uri)
    finally:
        client.set_model_version_tag(NAME, "1", MANIFEST_TAG, original)


def test_a_version_without_manifest_is_refused(registered):
    tracking_uri, _ = registered
    client = MlflowClient(tracking_uri)
    source = client.get_model_version(NAME, "1").source
    mlflow.set_tracking_uri(tracking_uri)
    bare = mlflow.register_model(source, "registered-by-hand")
    with pytest.raises(ModelIntegrityError, match="registered-by-hand v1 has no integrity manifest"):
        load_verified_model(f"models:/registered-by-hand/{bare.version}", tracking_uri)
    with pytest.raises(ModelIntegrityError, match="only registered models"):
        load_verified_model(source, tracking_uri)


def test_a_long_manifest_is_kept_as_a_run_artifact(tmp_path, small_counts_csv, monkeypatch):
    monkeypatch.setattr(integrity, "MAX_TAG_CHARS", 100)
    cfg = compose_config(
        "forecast", fast_forecast_overrides(small_counts_csv, tmp_path / "store", "seasonal_naive")
    )
    result = train(cfg, tmp_path / "out")
    tracking_uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    tags = MlflowClient(tracking_uri).get_model_version(NAME, result.version).tags
    assert MANIFEST_TAG not in tags and tags[MANIFEST_ARTIFACT_TAG].startswith("integrity/")
    load_verified_model(f"models:/{NAME}/{result.version}", tracking_uri)
    (_stored_folder(tracking_uri, result.version) / "MLmodel").write_text("flavors: {}\n")
    with pytest.raises(ModelIntegrityError, match="file MLmodel was changed"):
        load_verified_model(f"models:/{NAME}/{result.version}", tracking_uri)


def test_a_tampered_champion_is_replaced_by_the_next_passing_run(tmp_path, small_counts_csv):
    cfg = compose_config(
        "forecast", fast_forecast_overrides(small_counts_csv, tmp_path / "store", "seasonal_naive")
    )
    train(cfg, tmp_path / "first")
    tracking_uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (_stored_folder(tracking_uri) / "artifacts" / "serving.json").write_text(
        '{"max_horizon": 1, "levels": []}'
    )
    again = train(cfg, tmp_path / "second")  # the same model and data: its score only ties
    assert again.promoted and "replaces champion v1, whose files fail the integrity check" in again.reason
    assert "artifacts/serving.json was changed" in again.reason
