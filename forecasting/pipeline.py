"""The forecasting job: load data, backtest, fit, log to MLflow, register, promote on evidence."""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf
from sklearn.base import clone

from forecasting.backtest import rolling_origin_backtest
from forecasting.config_checks import check_config
from forecasting.data import future_dates, load_daily_counts, regressor_columns
from forecasting.hierarchy import (
    HierarchySettings,
    describe_levels,
    hierarchy_contract,
    level_metrics,
    metrics_by_level,
)
from forecasting.metrics import band_summary, metrics_by_band, metrics_by_horizon, summary_metrics
from forecasting.models.auto import AutoForecaster, left_out_lines, selection_table
from forecasting.models.base import Forecaster, interval_columns
from forecasting.models.conformal import recalibration_state, with_interval_settings
from forecasting.plots import busiest_series, components_figure, find_glm, forecast_figure
from forecasting.pyfunc_model import log_forecast_model
from mlops.concurrency import retry_transient, store_lock_path
from mlops.console import stage
from mlops.contract import CONTRACT_VERSION, contract_decision
from mlops.engine import start_engine
from mlops.engine_checks import check_engine, current_launcher
from mlops.errors import ConfigError, UserInputError
from mlops.gate import forecast_problems, refuse, score_problems
from mlops.integrity import ModelIntegrityError, load_verified_model
from mlops.registry import CHAMPION, PromotionDecision, register_and_promote
from mlops.staging import staged_outputs
from mlops.tracking import (
    config_choice,
    dataset_fingerprint,
    flatten_params,
    prepare_experiment,
    resolve_store,
    run_name,
    tracked_run,
)


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


def train(cfg: DictConfig, output_dir: Path) -> TrainResult:
    """Run the forecasting job described by ``cfg``, writing tables and plots to ``output_dir``."""
    started = time.time()  # the MLflow run's start: its duration covers the backtest and the fit
    checked = check_config(cfg)  # every config value, before any file is read
    levels = checked.levels
    engine_settings = check_engine(cfg, launcher=current_launcher())
    given = cfg.get("hierarchy")
    hierarchy = HierarchySettings.from_config(OmegaConf.to_container(given, resolve=True) if given else None)
    columns, keep = hierarchy.load_options(cfg.data.columns, list(cfg.data.keep))
    data = load_daily_counts(
        cfg.data.path,
        columns=columns,
        keep=keep,
        exclude_series=list(cfg.data.exclude_series),
        records=bool(cfg.data.records),
        train_end=cfg.data.train_end,
        fill_missing=cfg.data.fill_missing,
        read=cfg.data.get("read"),
        checks=cfg.data.get("checks"),
    )
    filled_days = int(data.attrs.get("filled_days", 0))
    if filled_days:
        print(f"data: filled {filled_days} missing day(s) with {cfg.data.fill_missing} (data.fill_missing)")
    forecaster = build_forecaster(cfg.model)
    model_class = type(forecaster).__name__  # the configured model's, whatever wraps it below
    if hierarchy.enabled:  # every node's series (leaves and totals), forecast then reconciled
        # The hierarchy sets every node's intervals from the model's errors at its own earlier
        # origins (hierarchy.intervals); a recalibration inside each of its fits would square the fits.
        data, forecaster = hierarchy.wrap(forecaster, data)
    else:  # the `intervals` setting, for whatever model is configured (auto: its own inner errors)
        calibrated = max(int(cfg.backtest.horizon), int(cfg.serving.max_horizon))
        forecaster = with_interval_settings(forecaster, checked.intervals, calibrated, levels)
    protocol = {key: int(cfg.backtest[key]) for key in ("horizon", "n_origins", "step", "season_length")}
    if cfg.backtest.get("first_cutoff"):
        protocol["first_cutoff"] = str(cfg.backtest.first_cutoff)
    # Only a non-default scale enters the protocol, so champions scored before it existed still match.
    if cfg.backtest.get("mase_scale", "seasonal_naive") != "seasonal_naive":
        protocol["mase_scale"] = str(cfg.backtest.mase_scale)
    model_label = config_choice("model", model_class)
    clock = time.monotonic()
    with start_engine(engine_settings) as engine:  # a cluster started here stops after the backtest
        with stage(f"backtest: {model_label}, {protocol['n_origins']} origins"):
            backtest = _backtest(forecaster, data, protocol, levels, engine)
    timings = {"backtest_seconds": time.monotonic() - clock}
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero MASE scale: the gate says why
        by_horizon = metrics_by_horizon(backtest, levels)
        summary = summary_metrics(backtest, levels)
        bands = cfg.backtest.get("horizon_bands") or []
        by_band = metrics_by_band(backtest, levels, bands) if bands else None
    # e.g. mase_h43_84 beside the overall mase: a published protocol's band, no rescoring by hand
    summary |= band_summary(by_band) if by_band is not None else {}
    refuse("the backtest", score_problems(summary, ["mase", "mae"]), _why_not_finite(data, protocol))
    clock = time.monotonic()
    with stage(f"final fit: {model_label} on {data['unique_id'].nunique()} series"):
        final = clone(forecaster).fit(data)
    timings["fit_seconds"] = time.monotonic() - clock
    selection = _auto_selection(forecaster, final, data, backtest)
    print(f"intervals: {describe_intervals(final)}")
    max_horizon = int(cfg.serving.max_horizon)
    # Gate what would be served: the final fit's forecast over the whole servable horizon.
    served = served_forecast(final, data, max_horizon, levels)
    refuse(
        f"the model's {max_horizon}-day forecast (serving.max_horizon)",
        forecast_problems(served, data.groupby("unique_id")["y"].max(), levels),
        "check the data for implausible counts (e.g. one day of 1e12) or try another model",
    )
    # Regressors are part of the data: the same counts with other regressors are other data.
    modelled = data[["unique_id", "ds", "y", *regressor_columns(data)]]
    fingerprint = dataset_fingerprint(modelled)
    contract = forecast_contract(final, max_horizon, levels, str(cfg.data.name), fingerprint)
    by_level = None
    if hierarchy.enabled:  # scores per level; the contract lists every node a caller may ask for
        contract["hierarchy"] = hierarchy_contract(final)
        with np.errstate(divide="ignore", invalid="ignore"):
            by_level = metrics_by_level(backtest, final.hierarchy, levels)
        print(describe_levels(by_level, final.method_, levels))
    store = resolve_store(cfg.tracking)
    experiment_id = prepare_experiment(store, cfg.experiment_name)
    client = MlflowClient(store.tracking_uri)
    name = str(cfg.registry.model_name)

    # Results appear in output_dir only when everything, registration included, has succeeded.
    with staged_outputs(output_dir) as staging:
        backtest.to_csv(staging / "backtest.csv", index=False)
        if selection is not None:  # auto: inner scores behind the choice at each origin
            selection.to_csv(staging / "auto_selection.csv", index=False)
        by_horizon.to_csv(staging / "metrics_by_horizon.csv", index=False)
        if by_level is not None:
            by_level.to_csv(staging / "metrics_by_level.csv", index=False)
        if by_band is not None:
            by_band.to_csv(staging / "metrics_by_band.csv", index=False)
        # What is served: the whole servable horizon (the gate's forecast), not just the backtest's.
        forecast = (
            served if not final.fitted_regressors else _forecast_to_show(final, backtest, max_horizon, levels)
        )
        if not final.fitted_regressors:
            forecast.to_csv(staging / "forecast.csv", index=False)
        shown = busiest_series(data, int(cfg.plot.n_series))
        title = f"{model_label} ({model_class}) on {cfg.data.name}"
        history_days = int(cfg.plot.history_days)
        add_up = not hierarchy.enabled  # a hierarchy's totals are series of their own
        figure = forecast_figure(data, forecast, shown, levels, history_days, title, backtest, add_up)
        figure.savefig(staging / "forecast.png", dpi=110)
        plt.close(figure)
        if (glm := find_glm(final)) is not None:  # trend, weekly, yearly, holidays, as Prophet shows
            figure = components_figure(
                glm, shown[0], f"Components of the calendar GLM in {title}: {shown[0]}"
            )
            figure.savefig(staging / "components.png", dpi=110)
            plt.close(figure)

        title = run_name("forecast", model_label, cfg.data.name)
        with tracked_run(experiment_id, title, started, sweep_metric=("mase", "minimize")) as run:
            mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
            mlflow.log_params(flatten_params(OmegaConf.to_container(cfg, resolve=True)))
            mlflow.log_metrics(timings)
            with warnings.catch_warnings():  # MLflow cannot tell which kind of local source a path is
                warnings.simplefilter("ignore", UserWarning)
                dataset = mlflow.data.from_pandas(
                    modelled,
                    source=str(cfg.data.path),
                    name=str(cfg.data.name),
                    digest=fingerprint,
                )
            # Schema and digest only: no rows are copied. Retried because parallel sweep jobs into
            # a new store can insert the same dataset at once (a UNIQUE clash the retry gets past).
            retry_transient(lambda: mlflow.log_input(dataset, context="training"))
            mlflow.set_tags(
                {
                    "data_fingerprint": fingerprint,
                    "model_class": model_class,
                    "regressors": ",".join(final.fitted_regressors),
                }
            )
            mlflow.log_metrics(summary)
            mlflow.log_metric("data_filled_days", filled_days)  # repairs are counted, never silent
            if selection is not None:  # the registered model: the winner on all the data
                recalibrated = bool(final.recalibrated_)  # False also when not checked (never)
                mlflow.log_params({"auto.winner": final.winner_, "auto.recalibrated": recalibrated})
            # Whether the registered model's intervals were recalibrated (`intervals` config).
            mlflow.log_param("intervals.recalibrated", recalibration_state(final))
            if by_level is not None:  # e.g. total.mase, area.coverage_80
                mlflow.log_metrics(level_metrics(by_level))
                mlflow.set_tag("reconciliation", final.method_)
            for row in by_horizon.to_dict("records"):
                step = int(row.pop("h"))
                mlflow.log_metrics({f"{k}_by_horizon": value for k, value in row.items()}, step=step)
            mlflow.log_artifacts(str(staging), artifact_path="results")
            model_info = log_forecast_model(
                final, max_horizon, levels, staging / "model", history=data, metadata=contract
            )
            # The decision (re-scoring the champion, checking what it serves) is made before the
            # version is registered, and both happen atomically across the jobs of a multirun.
            version, decision = register_and_promote(
                client,
                model_info.model_uri,
                name,
                {
                    "data_fingerprint": fingerprint,
                    "backtest_protocol": json.dumps(protocol),
                    "backtest_mase": summary["mase"],
                    "model_class": model_class,
                },
                lambda champion: _promotion_decision(
                    champion,
                    name,
                    summary["mase"],
                    fingerprint,
                    protocol,
                    data,
                    levels,
                    contract,
                    store.tracking_uri,
                ),
                store_lock_path(store.tracking_uri),
                description=_version_description(
                    model_label, model_class, final, cfg, contract, protocol, summary, run
                ),
            )
            mlflow.set_tag("promotion", decision.reason)

    return TrainResult(
        run.info.run_id,
        f"models:/{name}@{CHAMPION}",
        str(version.version),
        decision.promoted,
        decision.reason,
        summary,
        output_dir,
        store.ui_command,
    )


def _version_description(
    model_label: str,
    model_class: str,
    final: Forecaster,
    cfg: DictConfig,
    contract: dict,
    protocol: dict,
    summary: dict,
    run,
) -> str:
    """What the registry shows for the version: the model, its data, its backtest scores, its run."""
    ends = contract["train_end"]
    scores = ", ".join(
        f"{label} {summary[key]:.3f}"
        for key, label in (
            ("mase", "MASE"),
            ("mae", "MAE"),
            ("coverage_80", "80 % coverage"),
            ("coverage_95", "95 % coverage"),
        )
        if key in summary
    )
    return (
        f"{model_label} ({model_class}): daily calls for {len(contract['series'])} series of "
        f"data '{cfg.data.name}' (fingerprint {contract['data']['fingerprint']}), trained to "
        f"{ends if isinstance(ends, str) else 'per-series ends'}, "
        f"serving up to {contract['max_horizon']} days.\n"
        f"Backtest ({protocol['n_origins']} origins, {protocol['horizon']}-day horizon): {scores}.\n"
        f"Intervals: {describe_intervals(final)}.\n"
        f"{_describe_choice(final)}"
        f"Run {run.info.run_id} ({run.info.run_name})."
    )


def _describe_choice(final: Forecaster) -> str:
    """For auto: the chosen model and the candidates its history left out (a card line, else '')."""
    if not isinstance(final, AutoForecaster):
        return ""
    left_out = "".join(f"; {why}" for why in final.left_out_.values())
    return f"Auto: chose {final.winner_} by inner MASE{left_out}.\n"


def describe_intervals(final: Forecaster) -> str:
    """Where the fitted model's intervals come from, in words (console and model card)."""
    state = recalibration_state(final)
    if state == "not checked" and getattr(final, "windows_used_", None) == 0:
        return (
            f"the model's own, not checked: too little history for {final.min_windows} calibration "
            f"windows {final.step} days apart (intervals.n_windows, intervals.step)"
        )
    if state == "not checked":
        return "the model's own (no recalibration: intervals.recalibrate=never, or a hierarchy's own)"
    if isinstance(final, AutoForecaster):
        source = f"the winner's errors at its {final.n_origins} inner origins"
    else:
        source = f"its errors at {getattr(final, 'windows_used_', final.n_windows)} earlier origins"
    if state == "recalibrated":
        return f"recalibrated horizon by horizon on {source}"
    return f"the model's own: their coverage on {source} was within tolerance"


def served_forecast(
    forecaster: Forecaster, history: pd.DataFrame, horizon: int, levels: list[int]
) -> pd.DataFrame:
    """The forecast ``forecaster`` would serve for every series over ``horizon`` days.

    A model with ``x_*`` regressors gets each series' last observed values held constant: the
    gate checks the fitted model's sanity, not a regressor scenario.
    """
    future = None
    if forecaster.fitted_regressors:
        regressors = [r for r in forecaster.fitted_regressors if r in history.columns]
        last = history.sort_values("ds").groupby("unique_id")[regressors].last()
        future = future_dates(forecaster.last_dates_, horizon).join(last, on="unique_id")
    return forecaster.predict(horizon, levels, future=future)


def forecast_contract(
    forecaster: Forecaster, max_horizon: int, levels: list[int], data_name: str, fingerprint: str
) -> dict:
    """What the registered forecast serves, for its MLmodel metadata (see :mod:`mlops.contract`)."""
    ends = forecaster.last_dates_.dt.strftime("%Y-%m-%d")
    return {
        "kind": "daily_forecast",
        "contract_version": CONTRACT_VERSION,
        "series": sorted(str(uid) for uid in ends.index),
        "max_horizon": int(max_horizon),
        "levels": [int(lv) for lv in levels],
        "regressors": list(forecaster.fitted_regressors),
        # One date when every series ends together (the usual case), else one per series.
        "train_end": ends.iloc[0] if ends.nunique() == 1 else {str(k): v for k, v in ends.items()},
        "data": {"name": data_name, "fingerprint": fingerprint},
        "request_columns": ["unique_id", "ds", *forecaster.fitted_regressors],
        "output_columns": ["unique_id", "ds", "mean", *interval_columns(levels)],
    }


def _why_not_finite(data: pd.DataFrame, protocol: dict) -> str:
    """Why MASE cannot be computed, when a series has no seasonal-naive error to scale by."""
    season = int(protocol["season_length"])

    def naive_error(y: pd.Series) -> float:
        values = y.to_numpy(dtype=float)
        return float(abs(values[season:] - values[:-season]).mean()) if len(values) > season else 0.0

    flat = data.groupby("unique_id")["y"].agg(naive_error)
    flat = sorted(flat[flat == 0].index)
    if not flat:
        return "check the data for missing or non-numeric counts"
    return (
        f"MASE divides by each series' in-sample seasonal-naive error, which is 0 for {flat[:5]} "
        "(a constant series, e.g. all zeros), so no model can be scored on it; check the file or drop "
        "the series with data.exclude_series"
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


def _auto_selection(
    forecaster: Forecaster, final: Forecaster, data: pd.DataFrame, backtest: pd.DataFrame
) -> pd.DataFrame | None:
    """For ``model=auto``: the inner scores at every backtest origin and of the final fit (``cutoff``
    empty), winners ranked 1; printed in short. None for other models."""
    if not isinstance(forecaster, AutoForecaster):
        return None
    table = selection_table(forecaster, data, sorted(backtest["cutoff"].unique()))
    final_scores = final.scores_.assign(cutoff=pd.NaT)
    table = pd.concat([table, final_scores[table.columns]], ignore_index=True)
    winners = table[table["rank"] == 1]["name"].value_counts()
    chosen = ", ".join(f"{name} x{count}" for name, count in winners.items())
    calibration = "recalibrated on its inner errors" if final.recalibrated_ else "its own"
    print(f"auto: winners at the backtest origins and the final fit: {chosen}")
    for line in left_out_lines(table):  # candidates the history could not serve, and why
        print(f"auto: {line}")
    print(f"auto: registered model = {final.winner_} refitted on all the data; intervals {calibration}")
    return table


def _backtest(
    forecaster: Forecaster, data: pd.DataFrame, protocol: dict, levels: list[int], engine=None
) -> pd.DataFrame:
    # The local engine keeps the plain loop (and its progress bar); others map the folds.
    on_cluster = engine is not None and engine.kind != "local"
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
            mase_scale=protocol.get("mase_scale", "seasonal_naive"),
            map_tasks=engine.map if on_cluster else None,
            series_per_task=engine.settings.series_per_task if on_cluster else None,
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
    contract: dict,
    tracking_uri: str,
) -> PromotionDecision:
    """Champion moves only if it serves the same contract and this model's MASE beats it on the same data.

    The comparison covers what would actually be served: the stored champion is loaded (its files
    checked against its manifest) and its own forecast passes the same gate as the candidate's,
    against this data's history. A champion that fails either is replaced by this (passing)
    candidate whatever the scores. When the champion was scored on other data or another
    protocol, its method is refitted in the same backtest here, so the scores are like for like;
    if that is impossible on this data, the champion stays (there is no evidence against it).
    """
    if champion is None:
        return PromotionDecision(True, f"first model: champion with backtest MASE {mase:.4f}")
    label = f"champion v{champion.version}"
    if (different := contract_decision(contract, champion)) is not None:
        return different
    try:
        loaded = load_verified_model(f"models:/{name}/{champion.version}", tracking_uri)
    except ModelIntegrityError as error:
        return PromotionDecision(True, f"replaces {label}, whose files fail the integrity check ({error})")
    champion_forecaster = loaded.unwrap_python_model().forecaster
    try:
        problems = _champion_served_problems(loaded, data)
    except (UserInputError, ValueError, KeyError) as error:
        return PromotionDecision(
            False,
            f"{label} cannot forecast from this data ({error}), so what it serves cannot be checked "
            "against it; it stays champion",
        )
    if problems:
        return PromotionDecision(
            True,
            f"replaces {label}, whose served forecast fails the gate on this data: {'; '.join(problems)}",
        )
    same = champion.tags.get("data_fingerprint") == fingerprint and champion.tags.get(
        "backtest_protocol"
    ) == json.dumps(protocol)
    scored = "on the same data"
    if same:
        champion_mase = float(champion.tags["backtest_mase"])
    else:
        why = "data" if champion.tags.get("data_fingerprint") != fingerprint else "backtest protocol"
        registered = champion.tags.get("backtest_mase", "?")
        print(
            f"promotion: re-scoring {label} on this run's data: it was scored on other {why} "
            f"(registered MASE {registered}), which cannot be compared with this run's"
        )
        scored = f"on the same data (re-scored here: its registered MASE {registered} was on other {why})"
        try:
            with stage(f"promotion: re-scoring {label}"):
                rerun = _backtest(clone(champion_forecaster), data, protocol, levels)
            champion_mase = summary_metrics(rerun, levels)["mase"]
        except (UserInputError, ValueError, ArithmeticError) as error:
            return PromotionDecision(
                False,
                f"{label} ({champion.tags.get('model_class', 'its model')}) cannot be re-scored on this data "
                f"({error}), so there is no evidence this model is better; it stays champion",
            )
    mlflow.log_metric("champion_mase_same_data", champion_mase)
    if not math.isfinite(champion_mase):
        return PromotionDecision(
            True,
            f"MASE {mase:.4f} replaces {label}, whose MASE on the same data is {champion_mase}",
        )
    if mase < champion_mase:
        return PromotionDecision(True, f"MASE {mase:.4f} beats {label} ({champion_mase:.4f}) {scored}")
    return PromotionDecision(
        False,
        f"MASE {mase:.4f} does not beat {label} ({champion_mase:.4f}) {scored}",
    )


def _champion_served_problems(loaded, data: pd.DataFrame) -> list[str]:
    """Gate problems of the stored champion's own forecast, judged against this data's history."""
    model = loaded.unwrap_python_model()
    served = served_forecast(model.forecaster, data, model.max_horizon, model.levels)
    return forecast_problems(served, data.groupby("unique_id")["y"].max(), model.levels)
