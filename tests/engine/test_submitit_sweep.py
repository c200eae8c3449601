"""Sweeps through the submitit launcher: `hydra/launcher=submitit_local` runs each job as its own
submitit job on this machine, as `submitit_slurm` does on a cluster's nodes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import fast_forecast_overrides


@pytest.mark.slow
def test_a_submitit_local_sweep_runs_every_job_and_registers_each(tmp_path, small_counts_csv):
    overrides = fast_forecast_overrides(small_counts_csv, tmp_path / "store", "seasonal_naive")
    command = [
        sys.executable,
        "-m",
        "forecasting.train",
        "-m",
        *overrides,
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
        "model.season_length=7,14",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("daily-demand-forecast").experiment_id])
    runs = [run for run in runs if "model.season_length" in run.data.params]  # not the sweep's parent run
    assert sorted(run.data.params["model.season_length"] for run in runs) == ["14", "7"]
    assert {run.info.status for run in runs} == {"FINISHED"}
    versions = client.search_model_versions("name='daily-demand-synthetic'")
    assert sorted(v.run_id for v in versions) == sorted(run.info.run_id for run in runs)
    assert len(list((tmp_path / "sweep" / ".submitit").glob("*/*_result.pkl"))) == 2  # submitit's own jobs
