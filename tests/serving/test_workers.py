"""``python -m mlops.serve --workers N``: the model is checked once, and each worker serves only it.

The command downloads and checks the registered model, then uvicorn starts N worker processes
that each load that verified folder through :func:`mlops.serve.app_from_environment`, which first
re-hashes it. A worker that cannot serve exits with uvicorn's start-up failure status, which
stops the command (status 2) instead of respawning the worker forever.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from uvicorn.config import STARTUP_FAILURE

from mlops import serve
from mlops.integrity import file_manifest, manifest_digest
from tests.serving.conftest import DISPOSITION, free_port, stop, tool_env, wait_until_up

TIMEOUT = 30
MARK = "ZZQ-93817"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def worker_env(monkeypatch, tmp_path) -> Path:
    """A folder standing for the verified model, with the variables main() sets for its workers."""
    (tmp_path / "MLmodel").write_text("flavors: {}\n")  # its contents do not matter: never loaded
    for name in (serve.MODEL_DIR_VARIABLE, serve.DIGEST_VARIABLE, serve.MAX_BODY_VARIABLE):
        monkeypatch.delenv(name, raising=False)

    def must_not_load(*args, **kwargs):
        raise AssertionError("a worker loaded a model it should have refused")

    monkeypatch.setattr("mlflow.pyfunc.load_model", must_not_load)
    return tmp_path


def test_worker_without_a_checked_folder_refuses_to_start(worker_env, monkeypatch):
    monkeypatch.setenv(serve.MODEL_DIR_VARIABLE, str(worker_env))  # but no digest
    with pytest.raises(SystemExit) as stopped:
        serve.app_from_environment()
    assert stopped.value.code == STARTUP_FAILURE


def test_worker_refuses_files_changed_after_the_check(worker_env, monkeypatch):
    monkeypatch.setenv(serve.MODEL_DIR_VARIABLE, str(worker_env))
    monkeypatch.setenv(serve.DIGEST_VARIABLE, manifest_digest(file_manifest(worker_env)))
    (worker_env / "python_model.pkl").write_bytes(b"swapped in after the check")
    with pytest.raises(SystemExit) as stopped:
        serve.app_from_environment()
    assert stopped.value.code == STARTUP_FAILURE


def test_workers_that_cannot_load_stop_the_command(tmp_path):
    """Not a model (no MLmodel): the workers fail to start and the command exits 2, not respawns."""
    (tmp_path / "notes.txt").write_text("not a model")
    command = [sys.executable, "-m", "mlops.serve", str(tmp_path), "--port", str(free_port())]
    finished = subprocess.run(
        [*command, "--workers", "2"], env=tool_env(), capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 2, finished.stderr[-2000:]
    assert "a worker could not start" in finished.stderr


def test_two_workers_serve_the_verified_champion(trained_store, valid_rows, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "mlops.serve", f"models:/{DISPOSITION}@champion"]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--workers", "2"],
        env=tool_env(MLFLOW_TRACKING_URI=trained_store),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until_up(f"{url}/ping", process, log)
        deadline = time.monotonic() + 60
        while log.read_text().count("Application startup complete") < 2 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert log.read_text().count("Application startup complete") == 2, log.read_text()[-3000:]

        row = valid_rows[DISPOSITION]
        good = requests.post(
            f"{url}/invocations", data=json.dumps({"dataframe_records": [row]}), headers=JSON, timeout=TIMEOUT
        )
        assert good.status_code == 200, good.text[:500]
        assert 0 <= good.json()["predictions"][0]["p_safe_remote"] <= 1

        bad = requests.post(
            f"{url}/invocations",
            data=json.dumps({"dataframe_records": [{**row, "age": MARK}]}),
            headers=JSON,
            timeout=TIMEOUT,
        )
        assert bad.status_code == 400, bad.text[:500]
        assert "'age' must hold numbers" in bad.json()["message"]
        assert "ZZQ" not in bad.text
    finally:
        stop(process)
