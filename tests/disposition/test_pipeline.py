"""The training job end to end in-process: report, tags, registry, promotion, pyfunc contract."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote, urlparse

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import ErrorCode
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from disposition.pipeline import train
from tests.disposition.conftest import compose_disposition, fast_overrides

NAME = "disposition-remote-closure"


def _run(tmp_path, calls_path, *extra):
    overrides = fast_overrides(calls_path, tmp_path / "store")
    if "classifier=logistic" in extra:  # the fast settings name LightGBM's parameters
        overrides = [o for o in overrides if not o.startswith("classifier.")]
    cfg = compose_disposition(overrides + list(extra))
    return train(cfg, tmp_path / f"out-{len(list(tmp_path.iterdir()))}")


def test_first_run_is_champion_and_identical_rerun_is_challenger(tmp_path, calls_path, calls):
    first = _run(tmp_path, calls_path)
    assert first.promoted and first.version == "1", first.reason
    files = {p.name for p in first.output_dir.iterdir()}
    assert {"report.md", "model_card.md", "subgroups.csv", "reliability.png", "metrics.json"} <= files
    m = first.metrics
    assert m["selection_upper_bound"] <= 0.05 and m["selection_share"] > 0.05
    # Champion because the held-out TEST window's one-sided bound shows the limit, not its point rate.
    assert m["test_deployed_upper_bound"] <= 0.05 and "test-window bound" in first.reason
    assert m["test_auc"] > 0.9 and abs(m["auc_gap_to_oracle"]) < 0.02

    client = MlflowClient(mlflow.get_tracking_uri())
    run = client.get_run(first.run_id)
    assert run.data.tags["safety.n_flagged_subgroups"] == str(len(first.flagged))
    assert "promotion" in run.data.tags and run.data.params["safety.limit"] == "0.05"
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"synthetic-calls-training", "synthetic-calls-calibration", "synthetic-calls-test"}
    assert all(json.loads(d.dataset.profile)["num_rows"] == 0 for d in inputs.values())  # schema, no rows
    report = {a.path for a in client.list_artifacts(first.run_id, "report")}
    assert "report/model_card.md" in report and "report/reliability.png" in report

    second = _run(tmp_path, calls_path)
    assert not second.promoted and "not more than champion v1" in second.reason
    assert "same test calls" in second.reason
    assert client.get_model_version_by_alias(NAME, "champion").version == 1
    assert client.get_model_version_by_alias(NAME, "challenger").version == 2

    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    request = calls.tail(50).drop(columns=["safe_remote", "p_safe_remote_true", "adverse_outcome"])
    answer = model.predict(request)
    assert list(answer.columns) == ["p_safe_remote", "recommend_remote", "threshold", "reasons"]
    assert not answer.loc[request["category"].to_numpy() == "C1", "recommend_remote"].any()
    assert answer["reasons"].str.len().min() > 0
    with pytest.raises(MlflowException) as missing:
        model.predict(request.drop(columns=["age"]))
    assert missing.value.error_code == ErrorCode.Name(ErrorCode.INVALID_PARAMETER_VALUE)
    assert "age" in str(missing.value)

    # The logged input example is made up (a date outside the data), and the card travels with the model.
    local = mlflow.artifacts.download_artifacts(f"models:/{NAME}/1")
    example = json.loads(open(f"{local}/input_example.json").read())
    assert "2024-01-15" in json.dumps(example)
    assert "Not for autonomous closure" in open(f"{local}/artifacts/model_card.md").read()


def test_unseen_categories_and_missing_values_are_scored(tmp_path, calls_path, calls):
    result = _run(tmp_path, calls_path, "baseline_enabled=false", "tuning.enabled=false")
    model = mlflow.pyfunc.load_model(f"models:/{NAME}/{result.version}")
    request = calls.head(6).drop(columns=["safe_remote"]).copy()
    request["symptom_group"] = ["never_seen_before", None, "falls", "falls", "back_pain", "back_pain"]
    request["age"] = [np.nan, 40, np.nan, 85, 30, 30]
    request["area"] = request["area"].astype(object)
    request.loc[1, "area"] = None
    answer = model.predict(request)
    assert answer["p_safe_remote"].between(0, 1).all()
    # A missing symptom group could be a red flag: never recommended, and the reason says why.
    assert not answer.loc[1, "recommend_remote"] and "never remote by rule" in answer.loc[1, "reasons"]
    assert answer["reasons"].str.len().min() > 0 and answer["p_safe_remote"].notna().all()
    with pytest.raises(MlflowException) as wrong:
        model.predict(request.assign(age=["forty"] * 6))
    assert wrong.value.error_code == ErrorCode.Name(ErrorCode.INVALID_PARAMETER_VALUE)


def test_own_csv_with_target_expression_and_inferred_features(tmp_path, calls):
    own = calls.rename(columns={"call_time": "received"}).drop(columns=["p_safe_remote_true", "safe_remote"])
    own = own[own["closed_remotely"] == 1]  # outcome known only after a remote closure
    path = tmp_path / "own.csv"
    own.to_csv(path, index=False)
    cfg = compose_disposition(
        [
            "calls=csv",
            f"calls.path={path}",
            "calls.date_column=received",
            "calls.target.expression='adverse_outcome == 0'",
            "calls.exclude=[call_id,closed_remotely,disposition,adverse_type]",
            "calls.never_remote={category:[C1]}",
            "calls.checks.allow_unmatched_rules=true",  # only remote closures are kept: no C1 left
            "calls.subgroups={age:age,sex:sex,category:category}",
            f"tracking.store_dir={tmp_path / 'store'}",
            "tuning.enabled=false",
            "baseline_enabled=false",
            "classifier.estimator.n_estimators=30",
            "safety.limit=0.05",
        ]
    )
    result = train(cfg, tmp_path / "out")
    assert result.model_uri == "models:/disposition-remote-closure-own-calls@champion"
    card = (result.output_dir / "model_card.md").read_text()
    assert "adverse_outcome == 0" in card and "symptom_group" in card
    assert "oracle" not in json.dumps(list(result.metrics))
    subgroups = pd.read_csv(result.output_dir / "subgroups.csv")
    assert {"age_band", "sex", "category", "time_of_day"} <= set(subgroups["group"])


def test_minimal_own_records_command_runs_without_subgroups_or_times(tmp_path, calls):
    """calls=csv with only the required settings and a date-only column: no subgroup can be formed
    (none configured, no time of day), which once ended in KeyError: 'flagged' after fitting."""
    own = calls.drop(columns=["p_safe_remote_true", "safe_remote", "call_id"])
    own = own[own["closed_remotely"] == 1].assign(call_date=pd.to_datetime(own["call_time"]).dt.date)
    path = tmp_path / "own.csv"
    own.drop(columns=["call_time"]).to_csv(path, index=False)
    cfg = compose_disposition(
        [
            "calls=csv",
            f"calls.path={path}",
            "calls.date_column=call_date",
            "calls.target.expression='adverse_outcome == 0'",
            "calls.exclude=[closed_remotely,disposition,adverse_type]",
            "calls.never_remote=null",
            f"tracking.store_dir={tmp_path / 'store'}",
            "tuning.enabled=false",
            "baseline_enabled=false",
            "classifier.estimator.n_estimators=20",
            "classifier.estimator.n_jobs=1",
            "reasons.table_calls=500",
            "safety.limit=0.05",
        ]
    )
    assert OmegaConf.to_container(cfg.calls.subgroups) == {"age": None, "sex": None, "category": None}
    result = train(cfg, tmp_path / "out")
    assert result.version == "1" and result.flagged == []
    subgroups = pd.read_csv(result.output_dir / "subgroups.csv")
    assert subgroups.empty and {"group", "level", "flagged", "upper_bound"} <= set(subgroups.columns)
    report = (result.output_dir / "report.md").read_text()
    assert "No subgroups were evaluated" in report and "No subgroup's under-triage bound" not in report
    run = MlflowClient(mlflow.get_tracking_uri()).get_run(result.run_id)
    assert run.data.tags["safety.n_flagged_subgroups"] == "0"


def test_logistic_candidate_is_registered_and_explains_itself(tmp_path, calls_path, calls):
    result = _run(
        tmp_path, calls_path, "classifier=logistic", "baseline_enabled=false", "tuning.enabled=false"
    )
    assert "logistic" in (result.output_dir / "model_card.md").read_text()
    model = mlflow.pyfunc.load_model(f"models:/{NAME}/{result.version}")
    request = calls.tail(100).drop(columns=["safe_remote", "p_safe_remote_true"])
    answer = model.predict(request, params={"reasons": "exact"})
    ruled = answer["reasons"].str.startswith("never remote by rule")
    assert (~ruled).any() and answer.loc[~ruled, "reasons"].str.contains(r"\((?:raises|lowers)\)").all()
    assert not answer.loc[ruled, "recommend_remote"].any()


def test_other_safety_limit_is_a_challenger_and_a_tampered_champion_is_replaced(tmp_path, calls_path):
    """The contract includes the safety limit; a champion whose files changed is not kept."""
    # Three runs: no baseline and no tuning (neither is part of the contract or the integrity check).
    quick = ["baseline_enabled=false", "tuning.enabled=false"]
    first = _run(tmp_path, calls_path, *quick)
    assert first.promoted
    metadata = mlflow.models.get_model_info(f"models:/{NAME}@champion").metadata
    assert metadata["kind"] == "remote_closure" and metadata["safety_limit"] == 0.05
    assert (
        metadata["features"]["age"]["type"] == "double" and "C1" in metadata["features"]["category"]["levels"]
    )
    assert 0 < metadata["threshold"] < 1

    looser = _run(tmp_path, calls_path, *quick, "safety.limit=0.08")
    assert not looser.promoted and looser.version == "2"
    assert "contract differs from champion v1: safety_limit 0.08 instead of 0.05" in looser.reason
    assert "this model's test-window bound" in looser.reason  # the window and its numbers, as everywhere

    client = MlflowClient(mlflow.get_tracking_uri())
    source = client.get_model_version(NAME, "1").source.rsplit("/", 1)[-1]
    folder = Path(unquote(urlparse(client.get_logged_model(source).artifact_location).path))
    (folder / "artifacts" / "model_card.md").write_text("edited after registration\n")
    again = _run(tmp_path, calls_path, *quick)
    assert again.promoted and again.version == "3"
    assert "replaces champion v1, its files fail the integrity check" in again.reason
    assert "artifacts/model_card.md was changed" in again.reason
