"""Team mode: the pipelines log and register through an MLflow server on PostgreSQL with basic auth.

The server is started by ``scripts/tracking_server.sh`` (the same script as ``make tracking-server``)
in a temporary folder on free loopback ports, and stopped afterwards. Under CI (``AMBULANCE_CI=1``,
set by ``.ci/run``, which installs PostgreSQL) a missing PostgreSQL fails the test; elsewhere the
test is skipped when the PostgreSQL server binaries are absent.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
import psycopg2
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tests.conftest import ROOT, compose_config, fast_forecast_overrides
from tests.disposition.conftest import compose_disposition
from tests.disposition.conftest import fast_overrides as disposition_overrides
from tests.serving.conftest import DISPOSITION, FORECAST, OUTCOMES, free_port, tool_env

SCRIPT = ROOT / "scripts" / "tracking_server.sh"
USER, PASSWORD = "alice", "alice-test-password"
HAS_POSTGRES = bool(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or shutil.which("initdb") is not None
UNDER_CI = os.environ.get("AMBULANCE_CI") == "1"

pytestmark = pytest.mark.skipif(
    not HAS_POSTGRES and not UNDER_CI,
    reason="PostgreSQL server binaries not found (apt-get install postgresql, or run .ci/run as root)",
)


def run_script(action: str, env: dict[str, str]) -> None:
    # Generous timeout: under CI, `start` may first install PostgreSQL with apt-get.
    done = subprocess.run(
        ["bash", str(SCRIPT), action], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"{action} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def server():
    """A fresh team server with one known user, ``alice``; yields its URL and state folder."""
    # As root, PostgreSQL runs as the postgres user, who cannot enter pytest's private tmp folders.
    state = Path(tempfile.mkdtemp(prefix="ambulance-team-server-"))
    state.chmod(0o755)
    url = f"http://127.0.0.1:{free_port()}"
    env = tool_env(
        AMBULANCE_TRACKING_DIR=str(state),
        MLFLOW_SERVER_PORT=url.rsplit(":", 1)[1],
        AMBULANCE_PG_PORT=str(free_port()),
        MLFLOW_TRACKING_USERNAME=USER,
        MLFLOW_TRACKING_PASSWORD=PASSWORD,
    )
    previous_uri = mlflow.get_tracking_uri()
    try:
        run_script("start", env)
        with pytest.MonkeyPatch.context() as patch:
            # What a team member sets in their shell; MLflow's client reads them on every request.
            patch.setenv("MLFLOW_TRACKING_USERNAME", USER)
            patch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
            yield {"url": url, "state": state, "pg_port": env["AMBULANCE_PG_PORT"]}
    finally:
        run_script("stop", env)
        mlflow.set_tracking_uri(previous_uri)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def trained(server, tmp_path_factory, serving_calls):
    """The forecast and the disposition model trained against the server as ``alice``."""
    from disposition.pipeline import train as train_disposition
    from forecasting.pipeline import train as train_forecast

    folder = tmp_path_factory.mktemp("team-train")
    counts = pd.read_csv(ROOT / "data" / "synthetic" / "daily_counts.csv", parse_dates=["ds"])
    counts[counts["unique_id"].isin(["city/C2", "moor/C4"])].to_csv(folder / "counts.csv", index=False)
    with pytest.MonkeyPatch.context() as patch:
        # The documented way: the one override `tracking=server`, the address from the environment.
        patch.setenv("MLFLOW_TRACKING_URI", server["url"])
        overrides = fast_forecast_overrides(folder / "counts.csv", folder / "unused-store")
        cfg = compose_config("forecast", [*overrides, "model.n_jobs=1", "tracking=server"])
        assert cfg.tracking.uri == server["url"]
        assert train_forecast(cfg, folder / "forecast").promoted

    serving_calls.to_parquet(folder / "calls.parquet", index=False)
    overrides = disposition_overrides(folder / "calls.parquet", folder / "unused-store")
    cfg = compose_disposition([*overrides, "tracking=server", f"tracking.uri={server['url']}"])
    assert train_disposition(cfg, folder / "disposition").promoted
    return folder


def test_pipelines_register_on_the_server_and_models_load_back(server, trained, serving_calls):
    assert not (trained / "unused-store").exists()  # nothing went to a local SQLite file
    mlflow.set_tracking_uri(server["url"])
    client = MlflowClient(server["url"])
    for name in (FORECAST, DISPOSITION):
        assert client.get_model_version_by_alias(name, "champion").version == "1"
    forecast = mlflow.pyfunc.load_model(f"models:/{FORECAST}@champion")  # artifacts through the server
    days = pd.DataFrame({"unique_id": ["city/C2"], "ds": pd.to_datetime(["2024-01-01"])})
    assert forecast.predict(days)["mean"].iloc[0] > 0
    disposition = mlflow.pyfunc.load_model(f"models:/{DISPOSITION}@champion")
    calls = serving_calls.tail(5).drop(columns=OUTCOMES)
    assert len(disposition.predict(calls, params={"reasons": "none"})) == 5

    # The registry really lives in PostgreSQL, and the artifacts on the server's disk.
    password = (server["state"] / "db_password").read_text().strip()
    with (
        psycopg2.connect(
            host="127.0.0.1", port=server["pg_port"], dbname="mlflow", user="mlflow", password=password
        ) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT name FROM registered_models")
        assert {row[0] for row in cursor.fetchall()} == {DISPOSITION, FORECAST}
    assert any((server["state"] / "artifacts").rglob("MLmodel"))


@pytest.mark.parametrize(
    "login",
    [("mallory", "guess"), (USER, "wrong-password"), None],
    ids=["unknown", "bad-password", "anonymous"],
)
def test_unknown_users_cannot_write(server, login, monkeypatch):
    if login is None:
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", login[0])
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", login[1])
    client = MlflowClient(server["url"])
    with pytest.raises(MlflowException) as refused:
        client.create_experiment(f"intruder-{login and login[0]}")
    assert (
        "401" in str(refused.value)
        or "Unauthorized" in str(refused.value)
        or "credentials" in str(refused.value)
    )
