"""Run parallel joblib sweeps on a new SQLite store and check that nothing was lost or mis-crowned.

    .venv/bin/python experiments/sweeps/parallel_sweep_check.py --jobs 2 4 --runs 8

For each number of jobs: one ``-m`` multirun of seasonal-naive models (season lengths 7, 14, ...)
on four series of the synthetic world, in a new temporary store. Counts the MLflow runs, the
registered versions and the "database is locked" messages, checks that ``champion`` is on the
lowest backtest MASE, and rewrites ``results.md`` beside this file.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

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
        "runs recorded": sum(run.info.status == "FINISHED" for run in recorded),
        "versions registered": len(versions),
        "'database is locked'": (done.stdout + done.stderr).count("database is locked"),
        "champion on lowest MASE": bool(mase) and mase[champion] == min(mase.values()),
        "wall time (s)": round(seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--runs", type=int, default=8)
    args = parser.parse_args()
    counts = pd.read_csv(ROOT / "data" / "synthetic" / "daily_counts.csv")
    rows = []
    for jobs in args.jobs:
        with tempfile.TemporaryDirectory() as folder:
            workdir = Path(folder)
            counts[counts["unique_id"].isin(SERIES)].to_csv(workdir / "counts.csv", index=False)
            rows.append(check(jobs, args.runs, workdir, workdir / "counts.csv"))
            print(rows[-1], flush=True)
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(row[key]) for key in header) + " |" for row in rows]
    table = "\n".join(lines)
    (Path(__file__).with_name("results.md")).write_text(
        "# Parallel sweeps on a new SQLite store\n\n"
        f"`{' '.join(['python', 'experiments/sweeps/parallel_sweep_check.py', *sys.argv[1:]])}` "
        f"on {os.cpu_count()} cores:\n\n{table}\n"
    )


if __name__ == "__main__":
    main()
