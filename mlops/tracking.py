"""Where runs and models are stored: an embedded SQLite file by default, a team server on demand."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Mapping
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
                return experiment.experiment_id
            return client.create_experiment(experiment_name, artifact_location=store.artifact_root)
        except Exception as error:  # noqa: BLE001 - a lost race shows up as various database errors
            if is_permission_denied(error):
                raise permission_denied(f"experiment {experiment_name!r}", "experiment_name") from error
            if attempt == retries - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


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
