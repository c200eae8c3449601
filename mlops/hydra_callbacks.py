"""Hydra callbacks for multiruns: the MLflow store made ready before the jobs start, and the sweep
gathered under one parent run with a summary table and its best run tagged."""

from __future__ import annotations

import atexit
import logging
import math
import os
import sys
import time
from typing import Any

import pandas as pd
from hydra.experimental.callback import Callback
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from mlops.console import quiet_mlflow
from mlops.errors import UserInputError
from mlops.tracking import (
    OVERRIDES_TAG,
    PARENT_RUN_ENV,
    PARENT_TAG,
    SWEEP_GOAL_TAG,
    SWEEP_METRIC_TAG,
    prepare_experiment,
    resolve_store,
    run_name,
)

BEST_TAG = "best_in_sweep"

log = logging.getLogger(__name__)


class PrepareTrackingStore(Callback):
    """Create the store's schema and the experiment once, before parallel jobs race to do it.

    MLflow creates a new SQLite store's tables on first use, with dozens of schema migrations
    that are not safe to run from several processes at once (seen as alembic "Online migration
    expected to match one row" or "duplicate column" errors when a joblib multirun starts on a
    fresh store). Doing it here, in the launching process, leaves the jobs only ordinary writes.

    Registered under ``hydra.callbacks`` in ``conf/shared/tracking_callbacks.yaml``, which every
    app that writes to MLflow (forecast, disposition, project) includes in its defaults list;
    single runs skip it.

    It also opens the sweep's parent run (named after the app and the swept values) and puts its
    id in ``AMBULANCE_PARENT_RUN_ID``, which the jobs (in this process or in joblib workers, which
    inherit the environment) read to nest their runs under it (:func:`mlops.tracking.tracked_run`).
    When the sweep ends, the parent gets ``sweep_summary.csv`` and ``.md`` (one row per run: name,
    status, overrides, the metric the runs name in their ``sweep_metric`` tag) and the best run is
    tagged ``best_in_sweep=true``; the parent's ``best_run``/``best_<metric>`` say the same.

    Parameters
    ----------
    tracking_key : str, default "tracking"
        Where the app config keeps its tracking group.
    experiment_key : str, default "experiment_name"
        Where the app config keeps the MLflow experiment name.
    """

    def __init__(self, tracking_key: str = "tracking", experiment_key: str = "experiment_name") -> None:
        self.tracking_key = tracking_key
        self.experiment_key = experiment_key

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Resolve the store as the jobs will and create its schema and experiment."""
        tracking = OmegaConf.select(config, self.tracking_key)
        experiment = OmegaConf.select(config, self.experiment_key)
        if tracking is None or experiment is None:
            # e.g. swept keys, which the launching process does not know: the jobs' own retries
            # in prepare_experiment are then the only protection.
            log.warning("no %s/%s in the config: store not prepared", self.tracking_key, self.experiment_key)
            return
        try:
            store = resolve_store(tracking)
        except UserInputError as error:
            # Hydra turns a callback's exception into a warning and launches the jobs anyway, each
            # to fail on the same store: say it once, as the jobs would, and launch nothing.
            # SystemExit is not an Exception, so Hydra lets it through.
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        with quiet_mlflow():
            experiment_id = prepare_experiment(store, str(experiment))
            log.info("MLflow store %s ready (experiment %s)", store.tracking_uri, experiment_id)
            self._open_parent(config, store.tracking_uri, experiment_id)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Summarise the sweep on its parent run, tag the best run and close the parent."""
        parent = getattr(self, "_parent", None)
        if parent is None:
            return
        with quiet_mlflow():
            client = MlflowClient(self._tracking_uri)
            table, best = summarise_sweep(client, parent, self._experiment_id)
            _close_parent(client, parent, table)
            if best is not None:
                print(f"sweep: {len(table)} runs under parent run {parent}; best: {best}")
        os.environ.pop(PARENT_RUN_ENV, None)
        self._parent = None

    def _open_parent(self, config: DictConfig, tracking_uri: str, experiment_id: str) -> None:
        app = OmegaConf.select(config, "hydra.job.name") or "sweep"
        swept = [str(o) for o in OmegaConf.select(config, "hydra.overrides.task", default=[]) or []]
        varied = [o for o in swept if "," in o or "(" in o]  # the overrides that vary between jobs
        client = MlflowClient(tracking_uri)
        name = run_name(app, "sweep", *(o.split("=", 1)[0] for o in varied))
        run = client.create_run(
            experiment_id,
            start_time=int(time.time() * 1000),
            run_name=name,
            tags={"sweep": "true", OVERRIDES_TAG: " ".join(swept)[:5000]},
        )
        self._parent, self._tracking_uri, self._experiment_id = run.info.run_id, tracking_uri, experiment_id
        os.environ[PARENT_RUN_ENV] = run.info.run_id
        # A job that fails stops the sweep before on_multirun_end: the parent must not stay RUNNING.
        atexit.register(_fail_if_open, tracking_uri, run.info.run_id)


def summarise_sweep(client: MlflowClient, parent: str, experiment_id: str) -> tuple[pd.DataFrame, str | None]:
    """The sweep's runs as a table, best first, and a line naming the best; the best run is tagged.

    The metric and its goal come from the runs' own ``sweep_metric``/``sweep_goal`` tags (each app
    names its own, e.g. MASE for forecasts); runs without the metric are listed last.
    """
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent}'", max_results=10_000
    )
    metric = next((r.data.tags[SWEEP_METRIC_TAG] for r in runs if SWEEP_METRIC_TAG in r.data.tags), None)
    goal = next((r.data.tags[SWEEP_GOAL_TAG] for r in runs if SWEEP_GOAL_TAG in r.data.tags), "minimize")
    rows = [
        {
            "run_name": r.info.run_name,
            "run_id": r.info.run_id,
            "status": r.info.status,
            "overrides": r.data.tags.get(OVERRIDES_TAG, ""),
            "minutes": ((r.info.end_time or r.info.start_time) - r.info.start_time) / 60_000,
            **({metric: r.data.metrics.get(metric, math.nan)} if metric else {}),
        }
        for r in runs
    ]
    table = pd.DataFrame(
        rows, columns=["run_name", "run_id", "status", "overrides", "minutes", *([metric] if metric else [])]
    )
    if not metric or table[metric].isna().all():
        return table, None
    table = table.sort_values(metric, ascending=goal != "maximize", na_position="last", ignore_index=True)
    best = table.iloc[0]
    client.set_tag(best["run_id"], BEST_TAG, "true")
    client.set_tag(parent, "best_run", f"{best['run_name']} ({best['run_id']})")
    client.log_metric(parent, f"best_{metric}", float(best[metric]))
    return table, f"{best['run_name']} ({metric} {best[metric]:.4g}, {best['overrides']})"


def _close_parent(client: MlflowClient, parent: str, table: pd.DataFrame) -> None:
    client.log_text(parent, table.to_csv(index=False), "sweep_summary.csv")
    client.log_text(parent, _markdown(table), "sweep_summary.md")
    failed = (table["status"] != "FINISHED").any() if len(table) else False
    client.set_terminated(parent, RunStatus.to_string(RunStatus.FAILED if failed else RunStatus.FINISHED))


def _fail_if_open(tracking_uri: str, run_id: str) -> None:
    try:
        client = MlflowClient(tracking_uri)
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, "FAILED")
    except Exception:  # noqa: BLE001 - at exit, a store that is gone is nothing to report
        pass


def _markdown(table: pd.DataFrame) -> str:
    """The summary as a Markdown table (readable in the MLflow artifact viewer)."""
    shown = table.drop(columns=["run_id"]).round(4).astype(str)
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in shown.to_numpy().tolist()]
    return "\n".join(lines) + "\n"
