"""The forecasting job: load data, backtest, fit, log to MLflow, register, promote on evidence."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf
from sklearn.base import clone

from forecasting.backtest import rolling_origin_backtest
from forecasting.data import load_daily_counts, regressor_columns
from forecasting.metrics import metrics_by_horizon, summary_metrics
from forecasting.models.base import Forecaster, check_levels
from forecasting.plots import forecast_figure
from forecasting.pyfunc_model import log_forecast_model
from mlops.concurrency import store_lock_path
from mlops.errors import ConfigError, UserInputError
from mlops.registry import (
    CHAMPION,
    PromotionDecision,
    promote_on_evidence,
    register_version,
)
from mlops.tracking import dataset_fingerprint, flatten_params, prepare_experiment, resolve_store


@dataclass(frozen=True)
class TrainResult:
    """What a forecasting run produced, for the entry point to report."""

    run_id: str
    model_uri: str
    version: str
    promoted: bool
    reason: str
    metrics: dict[str, float]
    output_dir: Path
    ui_command: str


def build_forecaster(model_cfg: DictConfig) -> Forecaster:
    """Instantiate the configured model, turning a bad parameter into a one-line config error."""
    try:
        return instantiate(model_cfg, _convert_="all")
    except InstantiationException as error:
        cause = error.__cause__ or error
        raise ConfigError(f"cannot build model {model_cfg.get('_target_')}: {cause}") from error


def validate_config(cfg: DictConfig) -> list[int]:
    """Check values no type system catches; return the interval levels."""
    try:
        levels = check_levels(cfg.levels)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"levels: {error}") from error
    if int(cfg.serving.max_horizon) < 1:
        raise ConfigError(f"serving.max_horizon must be at least 1 day, got {cfg.serving.max_horizon}")
    return levels


def train(cfg: DictConfig, output_dir: Path) -> TrainResult:
    """Run the forecasting job described by ``cfg``, writing tables and plots to ``output_dir``."""
    levels = validate_config(cfg)
    data = load_daily_counts(
        cfg.data.path,
        columns=cfg.data.columns,
        keep=list(cfg.data.keep),
        exclude_series=list(cfg.data.exclude_series),
        records=bool(cfg.data.records),
        train_end=cfg.data.train_end,
        fill_missing=cfg.data.fill_missing,
    )
    filled_days = int(data.attrs.get("filled_days", 0))
    if filled_days:
        print(f"data: filled {filled_days} missing day(s) with {cfg.data.fill_missing} (data.fill_missing)")
    forecaster = build_forecaster(cfg.model)
    protocol = {key: int(cfg.backtest[key]) for key in ("horizon", "n_origins", "step", "season_length")}
    if cfg.backtest.get("first_cutoff"):
        protocol["first_cutoff"] = str(cfg.backtest.first_cutoff)
    backtest = _backtest(forecaster, data, protocol, levels)
    by_horizon = metrics_by_horizon(backtest, levels)
    summary = summary_metrics(backtest, levels)
    final = clone(forecaster).fit(data)
    output_dir.mkdir(parents=True, exist_ok=True)
    backtest.to_csv(output_dir / "backtest.csv", index=False)
    by_horizon.to_csv(output_dir / "metrics_by_horizon.csv", index=False)
    forecast = _forecast_to_show(final, backtest, int(cfg.backtest.horizon), levels)
    if not final.fitted_regressors:
        forecast.to_csv(output_dir / "forecast.csv", index=False)
    shown = sorted(data["unique_id"].unique())[: int(cfg.plot.n_series)]
    figure = forecast_figure(data, forecast, shown, levels, int(cfg.plot.history_days))
    figure.savefig(output_dir / "forecast.png", dpi=110)

    store = resolve_store(cfg.tracking)
    experiment_id = prepare_experiment(store, cfg.experiment_name)
    # Regressors are part of the data: the same counts with other regressors are other data.
    modelled = data[["unique_id", "ds", "y", *regressor_columns(data)]]
    fingerprint = dataset_fingerprint(modelled)
    client = MlflowClient(store.tracking_uri)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
        mlflow.log_params(flatten_params(OmegaConf.to_container(cfg, resolve=True)))
        with warnings.catch_warnings():  # MLflow cannot tell which kind of local source a path is
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_pandas(
                modelled,
                source=str(cfg.data.path),
                name=str(cfg.data.name),
                digest=fingerprint,
            )
        mlflow.log_input(dataset, context="training")  # schema and digest only: no rows are copied
        mlflow.set_tags(
            {
                "data_fingerprint": fingerprint,
                "model_class": type(forecaster).__name__,
                "regressors": ",".join(final.fitted_regressors),
            }
        )
        mlflow.log_metrics(summary)
        mlflow.log_metric("data_filled_days", filled_days)  # repairs are counted, never silent
        for row in by_horizon.to_dict("records"):
            step = int(row.pop("h"))
            mlflow.log_metrics({f"{name}_by_horizon": value for name, value in row.items()}, step=step)
        mlflow.log_artifacts(str(output_dir), artifact_path="results")
        model_info = log_forecast_model(
            final, int(cfg.serving.max_horizon), levels, output_dir / "model", history=data
        )

        version = register_version(
            model_info.model_uri,
            cfg.registry.model_name,
            {
                "data_fingerprint": fingerprint,
                "backtest_protocol": json.dumps(protocol),
                "backtest_mase": summary["mase"],
                "model_class": type(forecaster).__name__,
            },
        )
        decision = promote_on_evidence(  # atomic across the parallel jobs of a multirun
            client,
            version,
            lambda champion: _promotion_decision(
                champion, cfg.registry.model_name, summary["mase"], fingerprint, protocol, data, levels
            ),
            store_lock_path(store.tracking_uri),
        )
        mlflow.set_tag("promotion", decision.reason)

    return TrainResult(
        run.info.run_id,
        f"models:/{cfg.registry.model_name}@{CHAMPION}",
        str(version.version),
        decision.promoted,
        decision.reason,
        summary,
        output_dir,
        store.ui_command,
    )


def _forecast_to_show(
    final: Forecaster, backtest: pd.DataFrame, horizon: int, levels: list[int]
) -> pd.DataFrame:
    """The forecast after the data, or, when the model needs regressor values nobody has yet, the
    newest backtest fold (made with the actual values) so the plot still shows the model at work."""
    if not final.fitted_regressors:
        return final.predict(horizon, levels)
    print(
        f"data: regressors {final.fitted_regressors} have no values after the data, so forecast.png "
        "shows the newest backtest fold and no forecast.csv is written; the registered model forecasts "
        "from requests that carry them"
    )
    return backtest[backtest["cutoff"] == backtest["cutoff"].max()]


def _backtest(forecaster: Forecaster, data: pd.DataFrame, protocol: dict, levels: list[int]) -> pd.DataFrame:
    try:
        return rolling_origin_backtest(
            forecaster,
            data,
            protocol["horizon"],
            protocol["n_origins"],
            protocol["step"],
            levels,
            season_length=protocol["season_length"],
            first_cutoff=protocol.get("first_cutoff"),
        )
    except UserInputError:
        raise  # already says what to fix (e.g. "backtest.n_origins must be at least 1")
    except ValueError as error:  # e.g. too little history for the model at the oldest origin
        raise ConfigError(f"backtest: {error}") from error


def _promotion_decision(
    champion: ModelVersion | None,
    name: str,
    mase: float,
    fingerprint: str,
    protocol: dict,
    data: pd.DataFrame,
    levels: list[int],
) -> PromotionDecision:
    """Champion moves only if this model's backtest MASE beats the champion's on the same data.

    When the champion was scored on other data or another protocol, its estimator is refitted
    in the same backtest here, so the comparison is like for like.
    """
    if champion is None:
        return PromotionDecision(True, f"first model: champion with backtest MASE {mase:.4f}")
    same = champion.tags.get("data_fingerprint") == fingerprint and champion.tags.get(
        "backtest_protocol"
    ) == json.dumps(protocol)
    if same:
        champion_mase = float(champion.tags["backtest_mase"])
    else:
        loaded = mlflow.pyfunc.load_model(f"models:/{name}/{champion.version}")
        champion_forecaster = loaded.unwrap_python_model().forecaster
        rerun = _backtest(champion_forecaster, data, protocol, levels)
        champion_mase = summary_metrics(rerun, levels)["mase"]
    mlflow.log_metric("champion_mase_same_data", champion_mase)
    if mase < champion_mase:
        return PromotionDecision(
            True, f"MASE {mase:.4f} beats champion v{champion.version} ({champion_mase:.4f}) on the same data"
        )
    return PromotionDecision(
        False,
        f"MASE {mase:.4f} does not beat champion v{champion.version} ({champion_mase:.4f})",
    )
