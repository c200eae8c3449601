"""Run parallel joblib sweeps on a new SQLite store and check that nothing was lost or mis-crowned.

    python -m experiments.bench benchmark=sweeps   (config: conf/benchmark/sweeps.yaml)

For each number of jobs: one ``-m`` multirun of seasonal-naive models (season lengths 7, 14, ...)
on four series of the synthetic world, in a new temporary store. Counts the MLflow runs, the
registered versions and the "database is locked" messages, and checks that ``champion`` is on the
lowest backtest MASE.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from experiments.harness import BenchmarkReport

ROOT = Path(__file__).resolve().parents[2]
SERIES = ["city/C2", "coast/C3", "moor/C1", "moor/C4"]
FAST = ["backtest.n_origins=2", "backtest.horizon=14", "backtest.step=7", "plot.n_series=2"]


def check(jobs: int, runs: int, workdir: Path, data: Path) -> dict[str, object]:
    """One multirun of ``runs`` models, ``jobs`` at a time; what the store holds afterwards."""
    seasons = ",".join(str(7 * (i + 1)) for i in range(runs))
    command = [
        *[sys.executable, "-m", "forecasting.train", "-m", "model=seasonal_naive"],
        *[f"model.season_length={seasons}", f"data.path={data}", f"tracking.store_dir={workdir / 'store'}"],
        *["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}", f"hydra.sweep.dir={workdir / 'sweep'}"],
        *FAST,
    ]
    start = time.perf_counter()
    quiet = os.environ | {"MLFLOW_DISABLE_TELEMETRY": "true"}  # no network calls from every worker
    done = subprocess.run(command, cwd=workdir, env=quiet, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    client = MlflowClient(f"sqlite:///{workdir / 'store' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("daily-demand-forecast")
    recorded = client.search_runs([experiment.experiment_id]) if experiment else []
    versions = client.search_model_versions("name='daily-demand-synthetic'")
    mase = {v.version: float(v.tags["backtest_mase"]) for v in versions}
    champion = mase and client.get_model_version_by_alias("daily-demand-synthetic", "champion").version
    return {
        "jobs": jobs,
        "runs asked": runs,
        "exit code": done.returncode,
        # The sweep's parent run (tagged sweep=true) is not one of the jobs.
        "runs recorded": sum(
            run.info.status == "FINISHED" and "sweep" not in run.data.tags for run in recorded
        ),
        "versions registered": len(versions),
        "'database is locked'": (done.stdout + done.stderr).count("database is locked"),
        "champion on lowest MASE": bool(mase) and mase[champion] == min(mase.values()),
        "wall time (s)": round(seconds),
    }


def run(workdir: Path, jobs: list[int], runs: int) -> BenchmarkReport:
    counts = pd.read_csv(ROOT / "data" / "synthetic" / "daily_counts.csv")
    rows = []
    for n_jobs in jobs:
        folder = workdir / f"jobs_{n_jobs}"
        folder.mkdir(parents=True, exist_ok=True)
        counts[counts["unique_id"].isin(SERIES)].to_csv(folder / "counts.csv", index=False)
        rows.append(check(n_jobs, runs, folder, folder / "counts.csv"))
        print(rows[-1], flush=True)
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(row[key]) for key in header) + " |" for row in rows]
    text = (
        "# Parallel sweeps on a new SQLite store\n\n"
        f"`python -m experiments.bench benchmark=sweeps` (jobs {jobs}, {runs} runs each) on "
        f"{os.cpu_count()} cores, logged to the MLflow experiment `benchmark-sweeps`:\n\n" + "\n".join(lines)
    )
    lost = sum(row["runs asked"] - row["runs recorded"] for row in rows)
    metrics = {
        "runs_lost": lost,
        "database_locked_messages": sum(row["'database is locked'"] for row in rows),
        "champion_wrong": sum(not row["champion on lowest MASE"] for row in rows),
    }
    return BenchmarkReport(markdown=text, metrics=metrics, tables={"": pd.DataFrame(rows)})
