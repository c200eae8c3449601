"""The out-of-core remote-closure job: Parquet folder -> Dask cluster -> registered pyfunc (pipeline).

``python -m disposition.train_distributed calls.path=<folder>`` (conf/disposition_distributed.yaml).
The model is today's scorer (encoder, LightGBM booster, calibrator, threshold, hard rules) logged as
the same pyfunc, so serving, batch scoring and monitoring use it unchanged. What the in-memory job
adds and this one does not (yet): hyper-parameter tuning, the logistic baseline, fast reasons
(every answer gets exact TreeSHAP reasons), the subgroup report and the oracle comparison.
A version registers as champion only when there is none and its test-window bound is within the
limit; otherwise as a challenger, for review.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import mlflow
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from disposition.distributed import columns_from, read_calls, train_out_of_core
from disposition.evaluation import nothing_recommended_text, safety_settings
from disposition.promotion import refusal_on_test_window, window_bound_text
from disposition.pyfunc_model import log_remote_closure_model
from disposition.run_logging import remote_closure_contract
from disposition.safety import rules_from_mapping
from mlops.concurrency import store_lock_path
from mlops.config_checks import ListOf, Number, Text, WholeNumber, check_all, check_tracking
from mlops.engine import start_engine
from mlops.engine_checks import check_engine, current_launcher
from mlops.errors import ConfigError
from mlops.gate import probability_problems, refuse
from mlops.registry import CHAMPION, PromotionDecision, register_and_promote
from mlops.staging import staged_outputs
from mlops.tracking import flatten_params, prepare_experiment, resolve_store, run_name, tracked_run

RULES = {
    "calls.path": Text(what="a folder of Parquet files (or one Parquet file)"),
    "calls.date_column": Text(what="the call time column"),
    "calls.target.column": Text(what="the 0/1 target column"),
    "calls.features.categorical": ListOf(Text(), min_length=0, what="a list of column names"),
    "calls.features.numeric": ListOf(Text(), min_length=0, what="a list of column names"),
    "calls.features.time": ListOf(Text(), min_length=0, what="a list of hour, day_of_week"),
    "split.calibration_fraction": Number(0, 0.5, low_open=True),
    "split.test_fraction": Number(0, 0.5, low_open=True),
    "classifier.n_estimators": WholeNumber(1),
    "classifier.num_leaves": WholeNumber(2),
    "classifier.learning_rate": Number(0, 1, low_open=True),
    "classifier.min_child_samples": WholeNumber(1),
    "max_rows": WholeNumber(1000, unit="calls", nullable=True),
    "seed": WholeNumber(0),
}


@dataclass(frozen=True)
class DistributedResult:
    run_id: str
    model_uri: str
    version: str
    promoted: bool
    reason: str
    metrics: dict[str, float]
    output_dir: Path


def train_distributed(cfg: DictConfig, output_dir: Path) -> DistributedResult:
    """Run the out-of-core job described by ``cfg``; the report goes to ``output_dir``."""
    values = check_all(cfg, RULES)
    check_tracking(cfg)
    settings = check_engine(cfg, launcher=current_launcher())
    if settings.kind != "dask":
        raise ConfigError("engine=local: the out-of-core trainer needs a Dask cluster; use engine=dask")
    path = Path(values["calls.path"]).expanduser()
    if not path.exists():
        raise ConfigError(f"calls.path={values['calls.path']}: not found (looked for {path.resolve()})")
    columns = columns_from(
        values["calls.features.categorical"],
        values["calls.features.numeric"],
        values["calls.date_column"],
        values["calls.features.time"],
        values["calls.target.column"],
        rules_from_mapping(
            OmegaConf.to_container(cfg.calls.never_remote, resolve=True) if cfg.calls.never_remote else None
        ),
    )
    fractions = (values["split.calibration_fraction"], values["split.test_fraction"])
    safety = safety_settings(cfg.safety, fractions[1] / fractions[0])
    params = {
        **OmegaConf.to_container(cfg.classifier, resolve=True),
        "random_state": int(cfg.seed),
        "verbose": -1,
    }
    started = time.perf_counter()
    with start_engine(settings) as engine:
        calls = read_calls(str(path), columns)
        missing = [name for name in columns.read if name not in calls.columns]
        if missing:
            raise ConfigError(f"calls.path={values['calls.path']}: missing column(s) {missing}")
        result = train_out_of_core(
            engine.client,
            calls,
            columns,
            params,
            fractions,
            safety,
            OmegaConf.to_container(cfg.calibration),
            values["max_rows"],
            int(cfg.seed),
        )
        cluster = engine.describe()
    fit_seconds = time.perf_counter() - started
    scorer = result.scorer
    metrics = {
        "test_auc": result.test_auc,
        "test_deployed_share": result.test.share,
        "test_deployed_under_triage": result.test.under_triage,
        "test_deployed_upper_bound": result.test.upper_bound,
        "time_fit_s": fit_seconds,
        **{f"n_{name}": float(n) for name, n in result.window_sizes.items()},
    }
    # The gate before anything is written or registered: what it would serve must be probabilities.
    refuse(
        "the model's probabilities on training calls",
        probability_problems(scorer.probabilities(result.example)),
    )
    store = resolve_store(cfg.tracking)
    experiment_id = prepare_experiment(store, cfg.experiment_name)
    client = MlflowClient(store.tracking_uri)
    name = str(cfg.registry.model_name)
    summary = SimpleNamespace(
        safety=safety, data_name=str(cfg.calls.name), fingerprint=f"parquet:{path.name}"
    )
    with staged_outputs(output_dir) as staging:
        card = staging / "model_card.md"
        card.write_text(_card(cfg, result, metrics, cluster))
        title = run_name("disposition-distributed", cfg.calls.name)
        began = time.time() - (time.perf_counter() - started)
        with tracked_run(experiment_id, title, began) as run:
            mlflow.log_params(flatten_params(OmegaConf.to_container(cfg, resolve=True)))
            mlflow.log_metrics(metrics)
            mlflow.log_artifact(str(card), artifact_path="report")
            contract = remote_closure_contract(scorer, result.example, summary, float(cfg.safety.limit))
            info = log_remote_closure_model(scorer, result.example, card, staging, metadata=contract)
            version, decision = register_and_promote(
                client,
                info.model_uri,
                name,
                {
                    "model_kind": scorer.model.kind,
                    "threshold": f"{scorer.threshold:.6f}",
                    "trainer": "out-of-core",
                },
                lambda champion: _decide(champion, result, safety),
                store_lock_path(store.tracking_uri),
                description=(
                    f"out-of-core LightGBM on {path} ({cluster}): test AUC {result.test_auc:.3f}, "
                    f"{result.test.share:.1%} of test calls recommended, "
                    f"{window_bound_text(result.test, 'test', safety)}; run {run.info.run_id}"
                ),
            )
            mlflow.set_tag("promotion", decision.reason)
    uri = f"models:/{name}@{CHAMPION}" if decision.promoted else f"models:/{name}/{version.version}"
    return DistributedResult(
        run.info.run_id, uri, str(version.version), decision.promoted, decision.reason, metrics, output_dir
    )


def _decide(champion, result, safety) -> PromotionDecision:
    """Champion only as the first model AND with the test window's one-sided bound within the limit
    (as for the in-memory job, :mod:`disposition.promotion`); otherwise a challenger, for review."""
    if result.selection.n_recommended == 0:
        return PromotionDecision(False, nothing_recommended_text(result.selection, safety))
    if (refusal := refusal_on_test_window(result.selection, result.test, safety)) is not None:
        return PromotionDecision(False, refusal)
    if champion is None:
        return PromotionDecision(
            True, f"first model whose {window_bound_text(result.test, 'test', safety)} is within the limit"
        )
    return PromotionDecision(
        False, f"out-of-core runs register as challengers; champion v{champion.version} stays until reviewed"
    )


def _card(cfg: DictConfig, result, metrics: dict, cluster: str) -> str:
    sizes = ", ".join(f"{name} {n:,}" for name, n in result.window_sizes.items())
    return (
        "# Remote-closure model (out-of-core training)\n\n"
        f"- Data: `{cfg.calls.path}` ({sizes} calls; calibration from {result.bounds['calibration_start']}, "
        f"test from {result.bounds['test_start']})\n"
        f"- Trained with lightgbm.dask on {cluster}\n"
        f"- Threshold {result.scorer.threshold:.4f} under the limit {float(cfg.safety.limit):.1%} "
        f"(calibration: {result.scorer.calibrator.method})\n"
        f"- Test: AUC {metrics['test_auc']:.4f}, {metrics['test_deployed_share']:.1%} of calls recommended, "
        f"under-triage {metrics['test_deployed_under_triage']:.2%} "
        f"(upper bound {metrics['test_deployed_upper_bound']:.2%})\n"
        "- Not done by this trainer: tuning, baseline, subgroup report, fast reasons\n"
    )
