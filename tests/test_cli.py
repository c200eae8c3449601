"""End to end: the real command line, as a user or CI runs it, against a temporary SQLite store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import fast_forecast_overrides


def _cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "forecasting.train", *args, f"hydra.run.dir={tmp_path / 'run'}"]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_train_registers_a_champion_that_serves_forecasts(tmp_path, small_counts_csv, small_counts):
    done = _cli(fast_forecast_overrides(small_counts_csv, tmp_path / "store"), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "promoted to champion" in done.stdout and "mlflow ui --backend-store-uri sqlite:///" in done.stdout
    assert (tmp_path / "run" / "forecast.png").is_file()

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/daily-demand-synthetic@champion")
    days = pd.date_range(small_counts["ds"].max() + pd.Timedelta(days=1), periods=7)
    answer = model.predict(pd.DataFrame({"unique_id": "city/C2", "ds": days}))
    assert len(answer) == 7 and (answer["lo_95"] <= answer["mean"]).all()
    with pytest.raises(mlflow.exceptions.MlflowException, match="unknown series"):
        model.predict(pd.DataFrame({"unique_id": ["Atlantis/C1"], "ds": days[:1]}))


def test_mistyped_override_fails_without_traceback(tmp_path):
    done = _cli(["model=lightgbmm"], tmp_path)
    assert done.returncode != 0
    assert "Could not find 'model/lightgbmm'" in done.stderr and "Traceback" not in done.stderr
    assert "seasonal_naive" in done.stderr  # Hydra lists the options that exist


def test_bad_data_file_prints_one_line_and_registers_nothing(tmp_path, small_counts):
    path = tmp_path / "dupes.csv"
    pd.concat([small_counts, small_counts.head(3)]).to_csv(path, index=False)
    done = _cli(fast_forecast_overrides(path, tmp_path / "store"), tmp_path)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert errors[-1].startswith("error: ") and "share a (series, date)" in errors[-1]
    assert "Traceback" not in done.stderr
    store = tmp_path / "store" / "mlflow.db"
    assert not store.exists() or MlflowClient(f"sqlite:///{store}").search_registered_models() == []


@pytest.mark.parametrize(
    "script", ["forecast-train", "forecast-generate", "forecast-project", "disposition-train"]
)
def test_console_scripts_find_their_config_from_anywhere(tmp_path, script):
    path = Path(sys.executable).with_name(script)
    assert path.is_file(), "reinstall with `make test` (pip install -e .)"
    done = subprocess.run(
        [str(path), "--cfg", "job"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_multirun_sweep_records_every_run(tmp_path, small_counts_csv):
    overrides = fast_forecast_overrides(small_counts_csv, tmp_path / "store", "seasonal_naive")
    command = [
        sys.executable,
        "-m",
        "forecasting.train",
        "-m",
        *overrides,
        "model.season_length=7,14",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    client = MlflowClient(f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}")
    versions = client.search_model_versions("name='daily-demand-synthetic'")
    assert len(versions) == 2
    experiment = client.get_experiment_by_name("daily-demand-forecast")
    runs = client.search_runs([experiment.experiment_id])
    seasons = {run.data.params["model.season_length"] for run in runs}
    assert seasons == {"7", "14"}
