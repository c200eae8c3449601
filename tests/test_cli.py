"""End to end: the real command line, as a user or CI runs it, against a temporary SQLite store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from tqdm import tqdm

from mlops.console import tee_output
from tests.conftest import ROOT, fast_forecast_overrides


def _cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "forecasting.train", *args, f"hydra.run.dir={tmp_path / 'run'}"]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_train_registers_a_champion_that_serves_forecasts(tmp_path, small_counts_csv, small_counts):
    done = _cli(fast_forecast_overrides(small_counts_csv, tmp_path / "store"), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "promoted to champion" in done.stdout and "mlflow ui --backend-store-uri sqlite:///" in done.stdout
    assert (tmp_path / "run" / "forecast.png").is_file()
    log = (tmp_path / "run" / "train.log").read_text()
    for line in filter(str.strip, done.stdout.splitlines()):  # the log holds what the user saw
        assert log.count(line) == 1, line
    assert "\r" not in log and "Traceback" not in log

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/daily-demand-synthetic@champion")
    days = pd.date_range(small_counts["ds"].max() + pd.Timedelta(days=1), periods=7)
    answer = model.predict(pd.DataFrame({"unique_id": "city/C2", "ds": days}))
    assert len(answer) == 7 and (answer["lo_95"] <= answer["mean"]).all()
    with pytest.raises(mlflow.exceptions.MlflowException, match="unknown series"):
        model.predict(pd.DataFrame({"unique_id": ["Atlantis/C1"], "ds": days[:1]}))
    # The run's copy of the log is the finished one, summary included (it was logged empty before).
    run_id = MlflowClient().get_model_version_by_alias("daily-demand-synthetic", "champion").run_id
    logged = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="results/train.log")
    assert Path(logged).read_text() == log


def test_bad_override_prints_one_line_that_the_log_keeps(tmp_path):
    missing = tmp_path / "missing.csv"
    done = _cli([f"data.path={missing}", f"tracking.store_dir={tmp_path / 'store'}"], tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    error = [line for line in done.stderr.splitlines() if line.strip()][-1]
    assert error.startswith("error: ") and str(missing) in error
    assert error in (tmp_path / "run" / "train.log").read_text().splitlines()


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
    jobs = [run for run in runs if "mlflow.parentRunId" in run.data.tags]
    seasons = {run.data.params["model.season_length"] for run in jobs}
    assert seasons == {"7", "14"}
    # The jobs sit under one parent run, which holds the summary and names the best job.
    (parent,) = [run for run in runs if run not in jobs]
    assert {run.data.tags["mlflow.parentRunId"] for run in jobs} == {parent.info.run_id}
    assert parent.info.status == "FINISHED" and parent.info.run_name == "train-sweep-model-season-length"
    assert sum(run.data.tags.get("best_in_sweep") == "true" for run in jobs) == 1
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {
        "sweep_summary.csv",
        "sweep_summary.md",
    }


def test_generate_rewrites_the_committed_world_identically_and_logs_what_it_printed(tmp_path):
    # `make demo` regenerates data/synthetic with the default config; git status must stay clean,
    # so every file it writes must come out byte for byte as committed (world.yaml included).
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "external").symlink_to(ROOT / "data" / "external")
    command = [sys.executable, "-m", "forecasting.generate", f"hydra.run.dir={tmp_path / 'run'}"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("daily_counts.csv", "population.csv", "world.yaml"):
        written = (tmp_path / "data" / "synthetic" / name).read_bytes()
        assert written == (ROOT / "data" / "synthetic" / name).read_bytes(), f"regenerate {name}"
    assert done.stdout.strip() and done.stdout.strip() in (tmp_path / "run" / "generate.log").read_text()


def test_disposition_generate_logs_what_it_printed(tmp_path):
    synthetic = ROOT / "data" / "synthetic"
    args = [
        f"counts_path={synthetic / 'daily_counts.csv'}",
        f"population_path={synthetic / 'population.csv'}",
        f"world_path={synthetic / 'world.yaml'}",
        f"output_path={tmp_path / 'calls.parquet'}",
        "n_calls=2000",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    command = [sys.executable, "-m", "disposition.generate", *args]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "synthetic calls ->" in done.stdout
    assert done.stdout.strip() in (tmp_path / "run" / "generate.log").read_text()


@pytest.mark.parametrize("leave", [True, False])
def test_progress_bars_leave_one_line_or_none_in_the_log(tmp_path, capsys, leave):
    path = tmp_path / "job.log"
    with tee_output(path):
        print("before")
        for _ in tqdm(range(200), desc="origins", file=sys.stderr, mininterval=0, leave=leave):
            pass
        print("after", file=sys.stderr)
    assert capsys.readouterr().err.count("\r") > 10  # the terminal still gets the live bar
    lines = path.read_text().splitlines()
    bars = [line for line in lines if line.startswith("origins")]
    assert bars == ([bars[0]] if leave else []) and (not leave or "200/200" in bars[0])
    assert [line for line in lines if not line.startswith("origins")] == ["before", "after"]


def test_an_unexpected_error_leaves_its_traceback_in_the_log_and_restores_the_streams(tmp_path):
    path = tmp_path / "job.log"
    streams = sys.stdout, sys.stderr
    with pytest.raises(ZeroDivisionError), tee_output(path):
        print("working", end="")  # a last line without its newline is kept too
        1 / 0  # noqa: B018
    assert (sys.stdout, sys.stderr) == streams
    text = path.read_text()
    assert text.startswith("working\n") and "Traceback" in text and "ZeroDivisionError" in text


def test_user_error_exit_keeps_the_error_line_only(tmp_path):
    path = tmp_path / "job.log"
    with pytest.raises(SystemExit), tee_output(path):
        print("error: data.path=x.csv: no such file", file=sys.stderr)
        sys.exit(2)
    assert path.read_text() == "error: data.path=x.csv: no such file\n"
