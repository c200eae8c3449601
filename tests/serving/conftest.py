"""Fixtures for serving tests: the three models trained quickly into one store, real model servers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
import requests
from omegaconf import OmegaConf

from tests.conftest import SMALL_SERIES, SYNTHETIC_COUNTS, compose_config, fast_forecast_overrides
from tests.disposition.conftest import SYNTHETIC, compose_disposition
from tests.disposition.conftest import fast_overrides as disposition_overrides
from tests.projection.test_pipeline import fast_overrides as projection_overrides

FORECAST = "daily-demand-synthetic"
PROJECTION = "demand-projection-ons-england"
DISPOSITION = "disposition-remote-closure"
# Outcome columns of the synthetic calls that a dispatch system would not know when scoring.
OUTCOMES = ["safe_remote", "p_safe_remote_true", "adverse_outcome"]
VENV_BIN = Path(sys.executable).parent
# A small body limit for the test servers, so that the "too large" case needs only a few MB.
MAX_BODY_BYTES = 2_000_000


def free_port() -> int:
    """A loopback port nobody listens on now (the server binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tool_env(**extra: str) -> dict[str, str]:
    """This environment with the venv's commands first on PATH.

    ``mlflow models serve --env-manager local`` starts ``uvicorn`` by name, so the venv's ``bin``
    must be on PATH even when the tests run through ``.venv/bin/python`` without activating it.
    """
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env.update(extra)
    return env


def wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    """Poll ``url`` until it answers 200; fail with the server's log if it dies or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"no answer from {url} after {timeout} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    """Stop a server started in its own session, with everything it spawned (uvicorn workers)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@contextmanager
def model_servers(tracking_uri: str, names: list[str], log_dir: Path) -> Iterator[dict[str, str]]:
    """Serve ``models:/<name>@champion`` for each name at once, as docs/serving.md says; yield name -> URL.

    Each runs the documented command, ``python -m mlops.serve`` (MLflow's scoring app behind the
    toolkit's request guard), in a session of its own so that it is stopped with everything it started.
    """
    started = {}
    try:
        for name in names:
            port = free_port()
            log = log_dir / f"serve-{name}.log"
            command = [sys.executable, "-m", "mlops.serve", f"models:/{name}@champion"]
            command += ["--host", "127.0.0.1", "--port", str(port), "--max-body-bytes", str(MAX_BODY_BYTES)]
            process = subprocess.Popen(
                command,
                env=tool_env(MLFLOW_TRACKING_URI=tracking_uri),
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            started[name] = (f"http://127.0.0.1:{port}", process, log)
        for url, process, log in started.values():
            wait_until_up(f"{url}/ping", process, log)
        yield {name: url for name, (url, _, _) in started.items()}
    finally:
        for _, process, _ in started.values():
            stop(process)


def synthetic_calls(n_calls: int, seed: int) -> pd.DataFrame:
    """Calls drawn from the committed synthetic world, as the disposition tests draw them."""
    from disposition.synthetic_calls import sample_calls

    ratio = OmegaConf.to_container(OmegaConf.load(SYNTHETIC / "world.yaml").world.age_rate_ratio)
    counts = pd.read_csv(SYNTHETIC / "daily_counts.csv")
    population = pd.read_csv(SYNTHETIC / "population.csv")
    return sample_calls(counts, population, ratio, n_calls, seed=seed).calls


def train_models(folder: Path, tracking: list[str], calls: pd.DataFrame) -> None:
    """Train the forecast, the projection and the disposition model with the fast test settings.

    ``tracking`` is a list of ``tracking.*`` overrides appended last, e.g. to use a server.
    """
    from disposition.pipeline import train as train_disposition
    from forecasting.pipeline import train as train_forecast
    from forecasting.projection.pipeline import project

    store = folder / "store"
    counts = pd.read_csv(SYNTHETIC_COUNTS, parse_dates=["ds"])
    small = counts[counts["unique_id"].isin(SMALL_SERIES)][["unique_id", "ds", "y", "y_expected"]]
    small.to_csv(folder / "counts.csv", index=False)
    # One LightGBM thread: on a busy 2-core machine OpenMP's spinning threads made fits 5x slower.
    forecast = fast_forecast_overrides(folder / "counts.csv", store) + ["model.n_jobs=1"]
    cfg = compose_config("forecast", forecast + tracking)
    assert train_forecast(cfg, folder / "forecast").promoted
    cfg = compose_config("project", projection_overrides(store) + tracking)
    assert project(cfg, folder / "projection", command="test").promoted
    calls.to_parquet(folder / "calls.parquet", index=False)
    cfg = compose_disposition(disposition_overrides(folder / "calls.parquet", store) + tracking)
    assert train_disposition(cfg, folder / "disposition").promoted


@pytest.fixture(scope="session")
def serving_calls() -> pd.DataFrame:
    """24,000 synthetic calls (seeded), the disposition tests' training sample."""
    return synthetic_calls(24_000, seed=7)


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory, serving_calls) -> str:
    """A SQLite store holding the champion of each of the three models; returns its tracking URI."""
    folder = tmp_path_factory.mktemp("serving")
    train_models(folder, [], serving_calls)
    return f"sqlite:///{folder / 'store' / 'mlflow.db'}"


@pytest.fixture(scope="session")
def servers(trained_store, tmp_path_factory) -> Iterator[dict[str, str]]:
    """The three champions served once for the whole session (start-up is the slow part)."""
    log_dir = tmp_path_factory.mktemp("serve-logs")
    with model_servers(trained_store, [FORECAST, PROJECTION, DISPOSITION], log_dir) as urls:
        yield urls


@pytest.fixture(scope="session")
def valid_rows(trained_store, serving_calls) -> dict[str, dict]:
    """One well-formed request row per model, as JSON would carry it (the disposition row is a
    synthetic call with exactly the columns of the model's signature, in its order)."""
    import json

    import mlflow

    mlflow.set_tracking_uri(trained_store)
    signature = mlflow.models.get_model_info(f"models:/{DISPOSITION}@champion").signature
    call = serving_calls.tail(1)[signature.inputs.input_names()]
    return {
        FORECAST: {"unique_id": "city/C2", "ds": "2024-01-01"},
        PROJECTION: {"area": "trust", "date": "2035-01-01", "scenario": "principal"},
        DISPOSITION: json.loads(call.to_json(orient="records", date_format="iso"))[0],
    }
