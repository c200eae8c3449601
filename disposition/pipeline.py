"""The remote-closure training job: data -> model -> calibration -> safety threshold -> report -> registry.

Windows of the temporal split and what each is for:

- training (earliest calls): tuning by time-ordered cross-validation, then the final fit;
- calibration (next): probability calibration and the safety-limited threshold;
- test (latest, untouched by any choice): every reported metric, subgroups, the oracle and
  baseline comparisons, and the promotion decision.
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
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from disposition.calibration import fit_calibrator
from disposition.data import TARGET, CallSpec, PreparedCalls, check_windows, prepare_calls, temporal_split
from disposition.evaluation import (
    SafetySettings,
    eligible_auc,
    evaluate_window,
    oracle_comparison,
)
from disposition.features import add_time_features
from disposition.model import (
    TreeModel,
    fit_classifier,
    make_classifier_pipeline,
    model_input,
    tune,
    wrap_fitted,
)
from disposition.model_card import RunSummary, render_model_card, render_report
from disposition.promotion import SHARE_TAG, decide
from disposition.pyfunc_model import log_remote_closure_model
from disposition.reasons import ContributionTable, agreement
from disposition.report import reliability_figure, subgroup_labels, subgroup_table
from disposition.safety import excluded_by_rules
from disposition.scorer import RemoteClosureScorer
from forecasting.io import read_table
from mlops.errors import ConfigError
from mlops.registry import CHAMPION, apply_decision, register_version
from mlops.tracking import dataset_fingerprint, prepare_experiment, resolve_store


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


@dataclass
class Fitted:
    """A candidate fitted on the training window and calibrated and thresholded on the next."""

    scorer: RemoteClosureScorer
    selection: object
    params: dict
    tuning: pd.DataFrame
    seconds: float


def build_estimator(classifier_cfg: DictConfig):
    """Instantiate ``classifier.estimator``, turning a bad parameter into a one-line config error."""
    try:
        return instantiate(classifier_cfg.estimator, _convert_="all")
    except InstantiationException as error:
        cause = error.__cause__ or error
        raise ConfigError(
            f"cannot build classifier {classifier_cfg.estimator.get('_target_')}: {cause}"
        ) from error


def _subsample(mask: np.ndarray, max_rows: int | None, seed: int) -> np.ndarray:
    """Rows of ``mask``, at most ``max_rows`` of them drawn at random but kept in time order."""
    rows = np.flatnonzero(mask)
    if max_rows and len(rows) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=int(max_rows), replace=False))
    return rows


def fit_candidate(
    classifier_cfg: DictConfig,
    cfg: DictConfig,
    calls: PreparedCalls,
    frame: pd.DataFrame,
    windows: dict[str, np.ndarray],
    safety: SafetySettings,
    max_rows: int | None = None,
    tune_it: bool = True,
) -> Fitted:
    """Tune, fit, calibrate and threshold one classifier on the training and calibration windows."""
    start = time.perf_counter()
    features = calls.features
    categorical, numeric = features.categorical, features.model_numeric
    train_rows = _subsample(windows["training"], max_rows, cfg.seed)
    train = frame.iloc[train_rows]
    y = calls.y
    pipeline = make_classifier_pipeline(build_estimator(classifier_cfg), categorical, numeric, train)
    params, tuning = {}, pd.DataFrame()
    grid = OmegaConf.to_container(classifier_cfg.get("search") or {}, resolve=True)
    if tune_it and cfg.tuning.enabled and grid:
        rows = _subsample(windows["training"], cfg.tuning.max_rows, cfg.seed + 1)
        sample = frame.iloc[rows]
        params, tuning = tune(
            pipeline,
            model_input(pipeline, sample, categorical, numeric),
            y[rows],
            grid,
            int(cfg.tuning.n_splits),
            str(cfg.tuning.scoring),
            len(categorical),
        )
    fitted = fit_classifier(
        pipeline, model_input(pipeline, train, categorical, numeric), y[train_rows], params, len(categorical)
    )
    model = wrap_fitted(fitted, categorical, numeric, train)

    cal_rows = np.flatnonzero(windows["calibration"])
    encoded = model.encode(frame.iloc[cal_rows])
    raw = model.raw_score(encoded)
    calibrator = fit_calibrator(
        raw, y[cal_rows], cfg.calibration.method, int(cfg.calibration.isotonic_min_rows)
    )
    excluded, _ = excluded_by_rules(frame.iloc[cal_rows], calls.rules)
    selection = safety.choose(calibrator.predict(raw), y[cal_rows] == 0, ~excluded)
    table = None
    if isinstance(model, TreeModel):
        sample = np.random.default_rng(cfg.seed + 2).permutation(len(cal_rows))[
            : int(cfg.reasons.table_calls)
        ]
        table = ContributionTable(len(categorical)).fit(encoded[sample], model.contributions(encoded[sample]))
    scorer = RemoteClosureScorer(
        model,
        calibrator,
        selection.threshold,
        calls.rules,
        features,
        table,
        top_k=int(cfg.reasons.top_k),
        exact_max_rows=int(cfg.reasons.exact_max_rows),
    )
    return Fitted(scorer, selection, params, tuning, time.perf_counter() - start)


def _reason_agreement(scorer: RemoteClosureScorer, calls: pd.DataFrame, n: int, seed: int) -> dict | None:
    if scorer.reason_table is None or len(calls) == 0:
        return None
    sample = calls.iloc[np.random.default_rng(seed).permutation(len(calls))[:n]]
    encoded = scorer.model.encode(scorer.model_frame(sample))
    return agreement(scorer.model.contributions(encoded), scorer.reason_table.lookup(encoded), scorer.top_k)


def train(cfg: DictConfig, output_dir: Path) -> TrainResult:
    """Run the remote-closure job described by ``cfg``; write report, card and plots to ``output_dir``."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    spec = CallSpec.from_config(OmegaConf.to_container(cfg.calls, resolve=True))
    source = str(cfg.calls.path)
    calls = prepare_calls(read_table(source), spec, source=source)
    safety = SafetySettings(float(cfg.safety.limit), float(cfg.safety.confidence), bool(cfg.safety.two_sided))
    train_mask, cal_mask, test_mask, bounds = temporal_split(calls.dates, **OmegaConf.to_container(cfg.split))
    windows = {"training": train_mask, "calibration": cal_mask, "test": test_mask}
    check_windows(calls.y, windows)
    frame = add_time_features(calls.frame, spec.date_column, calls.features.time_features)
    timings["time_data_s"] = time.perf_counter() - started

    candidate = fit_candidate(cfg.classifier, cfg, calls, frame, windows, safety)
    timings["time_fit_s"] = candidate.seconds
    scorer = candidate.scorer

    # Test window: scored through the same object that will serve, from the raw request columns.
    test_calls = calls.frame.loc[test_mask].reset_index(drop=True)
    y_test = calls.y[test_mask]
    p_test = scorer.probabilities(test_calls)
    excluded_test, _ = excluded_by_rules(test_calls, calls.rules)
    eligible_test = ~excluded_test
    test = evaluate_window(
        y_test, p_test, eligible_test, scorer.threshold, safety, int(cfg.report.calibration_bins)
    )
    metrics = {**test.flat("test_"), **candidate.selection.as_dict("selection_")}
    metrics["test_eligible_auc"] = eligible_auc(y_test, p_test, eligible_test)

    oracle_eval, comparison = None, None
    if calls.oracle is not None:
        oracle = calls.oracle
        excluded_cal, _ = excluded_by_rules(calls.frame.loc[cal_mask], calls.rules)
        oracle_threshold = safety.choose(oracle[cal_mask], calls.y[cal_mask] == 0, ~excluded_cal).threshold
        oracle_eval = evaluate_window(y_test, oracle[test_mask], eligible_test, oracle_threshold, safety)
        comparison = oracle_comparison(
            test, oracle_eval, float(cfg.oracle_targets.auc_tolerance), float(cfg.oracle_targets.share_ratio)
        )
        metrics.update(oracle_eval.flat("oracle_test_"))
        metrics.update(comparison)

    baseline_eval = None
    if cfg.baseline_enabled and cfg.baseline.name != cfg.classifier.name:
        base = fit_candidate(
            cfg.baseline, cfg, calls, frame, windows, safety, cfg.baseline_max_rows, tune_it=False
        )
        p_base = base.scorer.probabilities(test_calls)
        baseline_eval = evaluate_window(y_test, p_base, eligible_test, base.scorer.threshold, safety)
        metrics.update(baseline_eval.flat("baseline_test_"))
        timings["time_baseline_s"] = base.seconds

    recommend = eligible_test & (p_test >= scorer.threshold)
    labels = subgroup_labels(test_calls, spec.subgroups, list(cfg.report.age_bands), spec.date_column)
    subgroups = subgroup_table(labels, y_test, p_test, recommend, safety, int(cfg.report.calibration_bins))
    flagged = [f"{r.group}={r.level}" for r in subgroups[subgroups["flagged"]].itertuples()]
    agreement_stats = _reason_agreement(scorer, test_calls, int(cfg.reasons.table_calls), cfg.seed + 3)
    fingerprint = dataset_fingerprint(calls.frame)
    summary = RunSummary(
        data_name=spec.name,
        fingerprint=fingerprint,
        target=_target_text(spec),
        window_sizes={name: int(mask.sum()) for name, mask in windows.items()},
        bounds=bounds,
        features=calls.features,
        rules=calls.rules,
        model_kind=scorer.model.kind,
        params={**OmegaConf.to_container(cfg.classifier.estimator, resolve=True), **candidate.params},
        calibration_method=scorer.calibrator.method,
        safety=safety,
        selection=candidate.selection,
        test=test,
        subgroups=subgroups,
        eligible_auc=metrics["test_eligible_auc"],
        baseline=baseline_eval,
        baseline_kind=cfg.baseline.name if baseline_eval else None,
        oracle=oracle_eval,
        oracle_comparison=comparison,
        tuning=candidate.tuning,
        reason_agreement=agreement_stats,
        notes=calls.notes,
    )
    paths = _write_outputs(output_dir, summary, y_test, p_test, labels, int(cfg.report.calibration_bins))
    if agreement_stats:
        metrics.update({f"reasons_fast_{k}": v for k, v in agreement_stats.items() if k != "calls"})
    timings["time_evaluate_s"] = time.perf_counter() - started - sum(timings.values())
    metrics.update(timings)

    return _log_and_register(
        cfg,
        calls,
        windows,
        scorer,
        summary,
        metrics,
        flagged,
        paths,
        test_calls,
        y_test,
        candidate.params,
        started,
    )


def _target_text(spec: CallSpec) -> str:
    rule = f"column `{spec.target_column}`" if spec.target_column else f"`{spec.target_expression}`"
    return f"{rule} = 1 means the call was (or would have been) safely closed remotely"


def _write_outputs(
    output_dir: Path,
    summary: RunSummary,
    y: np.ndarray,
    p: np.ndarray,
    labels: dict,
    bins: int,
) -> dict[str, Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "report": output_dir / "report.md",
        "card": output_dir / "model_card.md",
        "subgroups": output_dir / "subgroups.csv",
        "reliability": output_dir / "reliability.png",
    }
    paths["report"].write_text(render_report(summary))
    paths["card"].write_text(render_model_card(summary))
    summary.subgroups.to_csv(paths["subgroups"], index=False)
    by = {"age_band": labels["age_band"]} if "age_band" in labels else None
    figure = reliability_figure(y, p, by, bins)
    figure.savefig(paths["reliability"], dpi=110)
    if summary.tuning is not None and len(summary.tuning):
        paths["tuning"] = output_dir / "tuning.csv"
        summary.tuning.to_csv(paths["tuning"], index=False)
    return paths


def _log_and_register(
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
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
        mlflow.log_params(_flatten(OmegaConf.to_container(cfg, resolve=True)))
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
        model_info = log_remote_closure_model(
            scorer, calls.frame.loc[windows["training"]], paths["card"], output_dir
        )
        version = register_version(
            model_info.model_uri,
            name,
            {
                "data_fingerprint": summary.fingerprint,
                SHARE_TAG: f"{summary.test.deployed.share:.6f}",
                "test_under_triage": f"{summary.test.deployed.under_triage:.6f}",
                "threshold": f"{scorer.threshold:.6f}",
                "model_kind": scorer.model.kind,
            },
        )
        decision, champion = decide(
            client, name, summary.selection, summary.test.deployed, test_calls, y_test, summary.safety
        )
        if champion is not None:
            metrics.update(champion.as_dict("champion_same_calls_"))
        metrics["time_total_s"] = time.perf_counter() - started
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
        apply_decision(client, version, decision)
        mlflow.set_tag("promotion", decision.reason)
        metrics_path = output_dir / "metrics.json"
        metrics_path.write_text(json.dumps(metrics, indent=2, default=float))
        mlflow.log_artifact(str(metrics_path), artifact_path="report")
    return TrainResult(
        run.info.run_id,
        f"models:/{name}@{CHAMPION}",
        str(version.version),
        decision.promoted,
        decision.reason,
        metrics,
        flagged,
        summary.params,
        output_dir,
        store.ui_command,
    )


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
            mlflow.log_input(dataset, context=window, tags={"rows": str(len(part))})


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
