"""Logging a remote-closure run to MLflow, registering the model and applying the promotion decision.

Only aggregates leave the process: config, metrics, tags, the report files, the model's fitted
parameters, and each data window by name, content hash, size and schema.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from disposition.data import TARGET, PreparedCalls
from disposition.model_card import RunSummary
from disposition.promotion import SHARE_TAG, decide
from disposition.pyfunc_model import log_remote_closure_model, request_types
from disposition.scorer import RemoteClosureScorer
from mlops.concurrency import retry_transient, store_lock_path
from mlops.contract import CONTRACT_VERSION
from mlops.registry import CHAMPION, register_and_promote
from mlops.tracking import (
    dataset_fingerprint,
    flatten_params,
    prepare_experiment,
    resolve_store,
    run_name,
    tracked_run,
)


@dataclass(frozen=True)
class TrainResult:
    """What a run produced, for the entry point to report."""

    run_id: str
    model_uri: str
    version: str
    promoted: bool
    reason: str
    metrics: dict[str, float]
    flagged: list[str]
    params: dict
    output_dir: Path
    ui_command: str


def log_and_register(
    cfg: DictConfig,
    calls: PreparedCalls,
    windows: dict[str, np.ndarray],
    scorer: RemoteClosureScorer,
    summary: RunSummary,
    metrics: dict[str, float],
    flagged: list[str],
    paths: dict[str, Path],
    test_calls: pd.DataFrame,
    y_test: np.ndarray,
    tuned: dict,
    started: float,
) -> TrainResult:
    store = resolve_store(cfg.tracking)
    experiment_id = prepare_experiment(store, cfg.experiment_name)
    client = MlflowClient(store.tracking_uri)
    name = str(cfg.registry.model_name)
    output_dir = paths["report"].parent
    title = run_name("disposition", cfg.classifier.name, cfg.calls.name)
    began = time.time() - (time.perf_counter() - started)  # the job's start: the run's duration is the job's
    with tracked_run(experiment_id, title, began, sweep_metric=("test_deployed_share", "maximize")) as run:
        mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
        mlflow.log_params(flatten_params(OmegaConf.to_container(cfg, resolve=True)))
        mlflow.log_params({f"tuned.{k}": v for k, v in tuned.items()})
        _log_datasets(calls, windows, str(cfg.calls.path))
        mlflow.set_tags(
            {
                "data_fingerprint": summary.fingerprint,
                "model_kind": scorer.model.kind,
                "calibration": scorer.calibrator.method,
                "threshold": f"{scorer.threshold:.6f}",
                "safety.flagged_subgroups": ", ".join(flagged) if flagged else "none",
                "safety.n_flagged_subgroups": str(len(flagged)),
                "safety.test_bound_within_limit": str(
                    summary.test.deployed.upper_bound <= cfg.safety.limit
                ).lower(),
            }
        )
        for path in paths.values():
            mlflow.log_artifact(str(path), artifact_path="report")
        contract = remote_closure_contract(
            scorer, calls.frame.loc[windows["training"]], summary, float(cfg.safety.limit)
        )
        model_info = log_remote_closure_model(
            scorer, calls.frame.loc[windows["training"]], paths["card"], output_dir, metadata=contract
        )
        rescored = {}

        def decide_against(champion):
            decision, rescored["champion"] = decide(
                champion,
                name,
                summary.selection,
                summary.test.deployed,
                test_calls,
                y_test,
                summary.safety,
                contract,
            )
            return decision

        # The decision (re-scoring the champion) is made before the version exists, and deciding,
        # registering and moving the alias are atomic across the parallel jobs of a multirun.
        version, decision = register_and_promote(
            client,
            model_info.model_uri,
            name,
            {
                "data_fingerprint": summary.fingerprint,
                SHARE_TAG: f"{summary.test.deployed.share:.6f}",
                "test_under_triage": f"{summary.test.deployed.under_triage:.6f}",
                "test_upper_bound": f"{summary.test.deployed.upper_bound:.6f}",
                "threshold": f"{scorer.threshold:.6f}",
                "model_kind": scorer.model.kind,
            },
            decide_against,
            store_lock_path(store.tracking_uri),
            description=(
                f"{scorer.model.kind} remote-closure model ({scorer.calibrator.method} calibration) on "
                f"'{summary.data_name}' (fingerprint {summary.fingerprint}; {summary.target}). Test window: "
                f"{summary.test.deployed.share:.1%} of calls recommended for remote closure at threshold "
                f"{scorer.threshold:.4f}, under-triage {summary.test.deployed.under_triage:.2%}, "
                f"test-window bound {summary.test.deployed.upper_bound:.2%} (one-sided at "
                f"{1 - summary.safety.delta:.0%}; limit "
                f"{float(cfg.safety.limit):.1%}); flagged subgroups: {', '.join(flagged) or 'none'}.\n"
                f"Run {run.info.run_id} ({title})."
            ),
        )
        if rescored.get("champion") is not None:
            metrics.update(rescored["champion"].as_dict("champion_same_calls_"))
        metrics["time_total_s"] = time.perf_counter() - started
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
        mlflow.set_tag("promotion", decision.reason)
        metrics_path = output_dir / "metrics.json"
        metrics_path.write_text(json.dumps(metrics, indent=2, default=float))
        mlflow.log_artifact(str(metrics_path), artifact_path="report")
    return TrainResult(
        run.info.run_id,
        f"models:/{name}@{CHAMPION}" if decision.promoted else f"models:/{name}/{version.version}",
        str(version.version),
        decision.promoted,
        decision.reason,
        metrics,
        flagged,
        summary.params,
        output_dir,
        store.ui_command,
    )


def remote_closure_contract(
    scorer: RemoteClosureScorer, training: pd.DataFrame, summary: RunSummary, limit: float
) -> dict:
    """What the registered model serves, for its MLmodel metadata (see :mod:`mlops.contract`).

    Each request column with its type and, from the training calls, its range (numbers, dates) or
    its levels (text); the threshold and the safety limit it was chosen under. Only aggregates:
    no call's row can be read back from it.
    """
    columns = scorer.required_columns
    date_column = scorer.features.date_column if scorer.features.time_features else None
    types = request_types(training, columns, date_column, scorer.features.categorical)
    features = {}
    for column in columns:
        spec: dict = {"type": types[column]}
        values = training[column].dropna()
        if types[column] == "double" and len(values):
            spec["range"] = [float(values.min()), float(values.max())]
        elif types[column] == "datetime" and len(values):
            dates = pd.to_datetime(values)
            spec["range"] = [dates.min().isoformat(), dates.max().isoformat()]
        elif types[column] in ("string", "boolean", "category_code"):
            levels = sorted(values.astype(str).unique())
            spec["levels"] = levels[:200]
        features[column] = spec
    return {
        "kind": "remote_closure",
        "contract_version": CONTRACT_VERSION,
        "features": features,
        "never_remote_rules": [rule.column for rule in scorer.rules],
        "threshold": float(scorer.threshold) if np.isfinite(scorer.threshold) else None,
        "safety_limit": float(limit),
        "safety_confidence": float(summary.safety.confidence),
        "outputs": ["p_safe_remote", "recommend_remote", "threshold", "reasons"],
        "data": {"name": summary.data_name, "fingerprint": summary.fingerprint},
    }


def _log_datasets(calls: PreparedCalls, windows: dict[str, np.ndarray], source: str) -> None:
    """Each window by name, content hash, size and schema: MLflow stores no rows."""
    for window, mask in windows.items():
        part = calls.frame.loc[mask]
        # MLflow warns that it cannot tell the kind of a local source and that integer columns
        # cannot hold missing values; neither matters for a schema record.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_pandas(
                part.head(0).astype(part.dtypes.to_dict()),
                source=source,
                name=f"{calls.spec.name}-{window}",
                digest=dataset_fingerprint(part),
                targets=TARGET,
            )
            # Parallel jobs of a sweep into a new store can insert the same dataset at once; the
            # loser's retry finds the row and only links it to its run.
            retry_transient(
                lambda: mlflow.log_input(dataset, context=window, tags={"rows": str(len(part))})  # noqa: B023
            )
