"""The registered models that the consumer benchmarks (dispatch simulation, serving load) call.

They load champions by alias, as any other service would, and only after the files match the
SHA-256 manifest recorded at registration (:func:`load_champion`). By default they keep a store of
their own beside their code, and train any missing champion into it with the toolkit's own
commands (quicker settings), so they run on a fresh clone; pointed at another store, they only
read it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from mlops.errors import ConfigError
from mlops.integrity import DIGEST_TAG, load_verified_model

ROOT = Path(__file__).resolve().parents[1]
FORECAST = "daily-demand-synthetic"
PROJECTION = "demand-projection-ons-england"
DISPOSITION = "disposition-remote-closure"
# How each model is trained when the store lacks it: the toolkit's commands, quicker settings.
QUICK_TRAINING = {
    FORECAST: ["forecasting.train", "model=lightgbm", "model.n_jobs=1", "backtest.n_origins=2"],
    PROJECTION: ["forecasting.project", "n_paths=200"],
    DISPOSITION: ["disposition.train", "tuning.enabled=false", "baseline_enabled=false"],
}


def model_store(tracking_uri: str | None, own_dir: Path) -> tuple[str, Path | None]:
    """The store to read models from, and the folder we may train into (None: not ours)."""
    if tracking_uri:
        return tracking_uri, None
    own_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{own_dir / 'mlflow.db'}", own_dir


def ensure_champions(tracking_uri: str, own_dir: Path | None, names: Sequence[str]) -> dict[str, str]:
    """The champion version of each model; trains a missing one, but only into our own store.

    In our own store a champion registered before manifests were recorded counts as missing: the
    new run replaces it (a champion without a manifest cannot be loaded through the check).
    """
    client = MlflowClient(tracking_uri)
    versions = {}
    for name in names:
        try:
            champion = client.get_model_version_by_alias(name, "champion")
            if own_dir is None or DIGEST_TAG in champion.tags:
                versions[name] = champion.version
                continue
        except mlflow.exceptions.MlflowException:
            if own_dir is None:
                raise ConfigError(
                    f"no {name}@champion in {tracking_uri} (benchmark.params.tracking_uri); train it first"
                ) from None
        print(f"training {name} into {own_dir} ...", flush=True)
        with tempfile.TemporaryDirectory() as run_dir:
            overrides = [f"tracking.store_dir={own_dir}", f"hydra.run.dir={run_dir}"]
            env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
            command = [sys.executable, "-m", *QUICK_TRAINING[name], *overrides]
            subprocess.run(command, cwd=ROOT, env=env, check=True)
        versions[name] = client.get_model_version_by_alias(name, "champion").version
    return versions


def load_champion(tracking_uri: str, name: str):
    """``models:/<name>@champion`` as a pyfunc, loaded only if its files match their manifest.

    Raises :class:`mlops.integrity.ModelIntegrityError` (one line, naming the version and the
    first changed file) for a tampered model.
    """
    return load_verified_model(f"models:/{name}@champion", tracking_uri)
