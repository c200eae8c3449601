"""Hydra callbacks that get the MLflow store ready before the jobs of a multirun start."""

from __future__ import annotations

import logging
import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from mlops.errors import UserInputError
from mlops.tracking import prepare_experiment, resolve_store

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
        experiment_id = prepare_experiment(store, str(experiment))
        log.info("MLflow store %s ready (experiment %s)", store.tracking_uri, experiment_id)
