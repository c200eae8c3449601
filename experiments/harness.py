"""Run one benchmark as a tracked MLflow run and rewrite its committed results.

A benchmark module exposes ``run(workdir: Path, **params) -> BenchmarkReport``: it measures, and
says what it found as markdown, tables and numbers. Everything else is done once, here: the
MLflow run (one experiment per benchmark, ``benchmark-<name>``), the machine it ran on, and the
files under ``experiments/results/`` that are committed beside the code.
"""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from forecasting.io import atomic_write
from forecasting.models import BacktestConformal, Ensemble
from mlops.tracking import TrackingStore, flatten_params, prepare_experiment

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class BenchmarkReport:
    """What a benchmark found.

    Attributes
    ----------
    markdown : str
        The results page, written to ``<results_dir>/<name>.md``.
    metrics : dict
        Headline numbers, logged as MLflow metrics (e.g. ``mase_h7``, ``wall_seconds``).
    tables : dict
        Tables written as ``<name>.csv`` (key ``""``) or ``<name>_<key>.csv``.
    """

    markdown: str
    metrics: dict[str, float] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


@dataclass(frozen=True)
class BenchmarkOutcome:
    run_id: str
    experiment_name: str
    files: list[Path]
    report: BenchmarkReport


def model_label(model) -> str:
    """A readable name for a result table: the class, and for an ensemble its members."""
    if isinstance(model, Ensemble):
        return f"Ensemble ({' + '.join(model_label(member) for member in model.members)})"
    if isinstance(model, BacktestConformal):
        return f"{model_label(model.model)}, backtest-conformal intervals"
    return type(model).__name__


def machine_tags() -> dict[str, str]:
    """Where and on what code the numbers were measured: wall times mean little without it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
        commit += "+uncommitted" if dirty.stdout.strip() else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "git_commit": commit,
        "cpu_count": str(os.cpu_count()),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "load_average_before": f"{os.getloadavg()[0]:.2f}",
    }


def run_benchmark(
    name: str,
    module: str,
    params: Mapping[str, object],
    store: TrackingStore,
    workdir: Path,
    results_dir: Path = RESULTS_DIR,
) -> BenchmarkOutcome:
    """Run ``module.run(workdir, **params)`` inside an MLflow run and write its results.

    The results files are replaced only when the benchmark finishes: a failed or interrupted
    benchmark leaves the committed results as they were, and its MLflow run marked FAILED.
    """
    benchmark = importlib.import_module(module)
    experiment_name = f"benchmark-{name}"
    experiment_id = prepare_experiment(store, experiment_name)
    # The client is bound to this store: a benchmark may point MLflow's global state at stores
    # of its own (e.g. the sweep and serving checks) without moving where this run is logged.
    client = MlflowClient(store.tracking_uri)
    run = client.create_run(experiment_id, run_name=name, tags=machine_tags())
    run_id = run.info.run_id
    status = "FAILED"
    try:
        flat = flatten_params(params)
        client.log_batch(run_id, params=[Param(key, _param_text(value)) for key, value in flat.items()])
        workdir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        report = benchmark.run(workdir=workdir, **params)
        seconds = time.perf_counter() - start
        files = write_results(name, report, results_dir)
        now = int(time.time() * 1000)
        metrics = {**report.metrics, "benchmark_wall_seconds": seconds}
        client.log_batch(
            run_id,
            metrics=[Metric(key, float(value), now, 0) for key, value in metrics.items()],
            tags=[RunTag("load_average_after", f"{os.getloadavg()[0]:.2f}")],
        )
        for path in files:
            client.log_artifact(run_id, str(path), artifact_path="results")
        status = "FINISHED"
    finally:
        client.set_terminated(run_id, status)
    return BenchmarkOutcome(run_id, experiment_name, files, report)


def write_results(name: str, report: BenchmarkReport, results_dir: Path) -> list[Path]:
    """Write the markdown page and the tables, each atomically."""
    text = report.markdown if report.markdown.endswith("\n") else report.markdown + "\n"
    files = [atomic_write(results_dir / f"{name}.md", lambda f: f.write(text))]
    for key, table in report.tables.items():
        path = results_dir / (f"{name}_{key}.csv" if key else f"{name}.csv")
        files.append(
            atomic_write(path, lambda f, table=table: table.to_csv(f, index=False, float_format="%.4f"))
        )
    return files


def _param_text(value: object) -> str:
    text = str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."  # MLflow's limit on a param value
