"""Where runs and models are stored: an embedded SQLite file by default, a team server on demand."""

from __future__ import annotations

import hashlib
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlops.errors import ConfigError, PermissionDeniedError


@dataclass(frozen=True)
class TrackingStore:
    """Resolved location of an MLflow tracking store.

    Attributes
    ----------
    tracking_uri : str
        Where runs and registered models live (``sqlite:///...`` or ``http://...``).
    artifact_root : str or None
        Where new experiments keep their artifacts; None lets a tracking server decide.
    """

    tracking_uri: str
    artifact_root: str | None

    @property
    def ui_command(self) -> str:
        """The one command that opens the MLflow UI on this store."""
        if self.tracking_uri.startswith("sqlite:"):
            mlflow_cli = Path(sys.executable).with_name("mlflow")  # the one in this environment
            return f"{mlflow_cli} ui --backend-store-uri {self.tracking_uri} --port 5000"
        return f"open {self.tracking_uri} in a browser"


# Schemes MLflow has tracking stores for (database ones may name a driver, e.g. postgresql+psycopg2).
TRACKING_SCHEMES = ("http", "https", "file", "sqlite", "postgresql", "mysql", "mssql", "databricks")


def check_uri(uri: str, key: str = "tracking.uri") -> None:
    """Refuse a tracking URI MLflow has no store for: a bare word would be taken as a local folder
    (silently another store), and ``localhost:5000`` fails only once the run has started."""
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower() if ":" in uri else uri
    if scheme not in TRACKING_SCHEMES:
        raise ConfigError(
            f"{key}={uri}: must be an address with its scheme, e.g. http://host:5000 or "
            "sqlite:////abs/path/mlflow.db, or null for the local store"
        )


def resolve_store(tracking_cfg) -> TrackingStore:
    """Turn the ``tracking`` config group into an absolute store location.

    The SQLite file and artifact folder are resolved against the current directory once, here,
    so that nothing later depends on where the process happens to be.
    """
    if tracking_cfg.get("uri"):
        uri = str(tracking_cfg.uri)
        check_uri(uri)
        return TrackingStore(uri, tracking_cfg.get("artifact_root"))
    store_dir = tracking_cfg.get("store_dir")
    if not store_dir:
        raise ConfigError("tracking needs either `uri` or `store_dir`; set tracking.store_dir=mlruns")
    given = str(store_dir)
    store_dir = Path(given).expanduser().resolve()
    if store_dir.exists() and not store_dir.is_dir():
        raise ConfigError(f"tracking.store_dir={given}: is a file; give a folder for the MLflow store")
    try:
        store_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a parent is a file, or no permission
        raise ConfigError(
            f"tracking.store_dir={given}: cannot create the folder ({error.strerror}); "
            "give a folder you can write to"
        ) from error
    return TrackingStore(
        tracking_uri=f"sqlite:///{store_dir / 'mlflow.db'}",
        artifact_root=(store_dir / "artifacts").as_uri(),
    )


def prepare_experiment(store: TrackingStore, experiment_name: str, retries: int = 5) -> str:
    """Point MLflow at the store, create the schema and the experiment if needed, return its id.

    Parallel workers of a multirun may race to create the SQLite schema or the experiment; the
    loser retries and then finds what the winner created.
    """
    mlflow.set_tracking_uri(store.tracking_uri)
    client = MlflowClient(store.tracking_uri)
    for attempt in range(retries):
        try:
            experiment = client.get_experiment_by_name(experiment_name)
            if experiment is not None:
                _mark_classic(client, experiment)
                return experiment.experiment_id
            return client.create_experiment(
                experiment_name, artifact_location=store.artifact_root, tags={EXPERIMENT_KIND_TAG: CLASSIC_ML}
            )
        except Exception as error:  # noqa: BLE001 - a lost race shows up as various database errors
            if is_permission_denied(error):
                raise permission_denied(f"experiment {experiment_name!r}", "experiment_name") from error
            if attempt == retries - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


# MLflow 3's UI opens an experiment on its GenAI overview (traces, evaluations) unless the experiment
# says it holds model-development runs; with this tag it opens on the runs table.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
CLASSIC_ML = "custom_model_development"


def _mark_classic(client: MlflowClient, experiment) -> None:
    """Tag an experiment made before the tag existed (or by hand), unless it already has a kind."""
    if EXPERIMENT_KIND_TAG in (experiment.tags or {}):
        return
    try:
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, CLASSIC_ML)
    except MlflowException as error:  # another user's experiment on a team server: theirs to set
        if not is_permission_denied(error):
            raise


def is_permission_denied(error: BaseException) -> bool:
    """Whether a team server refused the current user (HTTP 403), as opposed to a failure."""
    return isinstance(error, MlflowException) and error.error_code == "PERMISSION_DENIED"


def permission_denied(what: str, key: str) -> PermissionDeniedError:
    """One line for a refusal by the team server: whose it is not, and the two ways forward."""
    return PermissionDeniedError(
        f"the tracking server refused user {mlflow_user()!r} access to {what}, which another user owns: "
        f"ask its owner to run `scripts/tracking_server.sh grant <you> edit ...`, or use a name of your "
        f"own with {key}=<name>"
    )


def mlflow_user() -> str:
    """The user MLflow authenticates as (basic auth), for messages."""
    return os.environ.get("MLFLOW_TRACKING_USERNAME", "(none)")


def dataset_fingerprint(frame: pd.DataFrame) -> str:
    """A short content hash of a table, so runs on the same data can be recognised.

    Logged instead of the rows themselves: it identifies data without copying it.
    """
    row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest = hashlib.sha256(row_hashes.tobytes())
    digest.update(",".join(map(str, frame.columns)).encode())
    return digest.hexdigest()[:16]


def flatten_params(tree: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    """Nested config values as dotted keys (``model.n_estimators``), as written on the command line."""
    flat: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# A sweep's parent run, for the jobs to nest under (set by mlops.hydra_callbacks.PrepareTrackingStore
# in the launching process; parallel joblib workers inherit it).
PARENT_RUN_ENV = "AMBULANCE_PARENT_RUN_ID"
PARENT_TAG = "mlflow.parentRunId"  # what the MLflow UI nests runs by
SWEEP_METRIC_TAG = "sweep_metric"  # the metric a sweep ranks its runs by, e.g. "mase"
SWEEP_GOAL_TAG = "sweep_goal"  # "minimize" or "maximize"
OVERRIDES_TAG = "overrides"  # the job's command-line overrides, as the sweep varied them


def run_name(app: str, *parts: object) -> str:
    """A readable run name from the app, the model and the data, e.g. ``forecast-ensemble-swast``."""
    words = [re.sub(r"[^a-z0-9]+", "-", str(p).lower()).strip("-") for p in (app, *parts) if p]
    return "-".join(w for w in words if w)


def config_choice(group: str, fallback: object) -> str:
    """The option chosen for a config group in this Hydra job (``model=glm`` gives ``glm``); outside a
    Hydra job (tests, notebooks) or for a group without a choice, ``fallback``."""
    try:
        from hydra.core.hydra_config import HydraConfig

        choice = HydraConfig.get().runtime.choices.get(group)
    except ValueError:  # no Hydra job is running
        choice = None
    return str(choice or fallback)


def job_overrides() -> str:
    """This Hydra job's command-line overrides (one job's values in a sweep), or "" outside Hydra."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return " ".join(HydraConfig.get().overrides.task)
    except ValueError:
        return ""


@contextmanager
def tracked_run(
    experiment_id: str,
    name: str,
    started: float,
    tags: Mapping[str, str] | None = None,
    sweep_metric: tuple[str, str] | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """An MLflow run that started when the job did and nests under its sweep's parent run.

    The jobs check, backtest and fit before they open the run (so a failure leaves no run); giving
    the run the job's own start time makes its duration in the UI the job's, backtest included.

    Parameters
    ----------
    experiment_id : str
    name : str
        The run name, e.g. from :func:`run_name`.
    started : float
        When the job started, as :func:`time.time` gave it.
    tags : mapping, optional
        More tags for the run.
    sweep_metric : (str, str), optional
        The metric a sweep ranks this app's runs by and its goal, e.g. ``("mase", "minimize")``.
    """
    client = MlflowClient()
    all_tags = {**(tags or {})}
    if overrides := job_overrides():
        all_tags[OVERRIDES_TAG] = overrides[:5000]
    if sweep_metric:
        all_tags[SWEEP_METRIC_TAG], all_tags[SWEEP_GOAL_TAG] = sweep_metric
    parent = os.environ.get(PARENT_RUN_ENV)
    if parent and _parent_in(client, parent, experiment_id):
        all_tags[PARENT_TAG] = parent
    run = client.create_run(experiment_id, start_time=int(started * 1000), tags=all_tags, run_name=name)
    with mlflow.start_run(run_id=run.info.run_id) as active:  # a failure inside marks it FAILED
        yield active


def _parent_in(client: MlflowClient, parent: str, experiment_id: str) -> bool:
    """Whether the sweep's parent run is in this experiment (a swept experiment name is not)."""
    try:
        return client.get_run(parent).info.experiment_id == experiment_id
    except MlflowException:
        return False
