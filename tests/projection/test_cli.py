"""End to end: the planner's command in a subprocess, then the registered projection as a service uses it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.projection.test_pipeline import MODEL, fast_overrides


def _cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "forecasting.project", *args, f"hydra.run.dir={tmp_path / 'run'}"]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_planner_command_registers_a_champion_that_answers_ten_years_out(tmp_path):
    done = _cli([*fast_overrides(tmp_path / "store"), "scenario=high_ageing"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "trust / high_ageing:" in done.stdout and "promoted to champion" in done.stdout
    assert "report (open in a browser):" in done.stdout
    assert (tmp_path / "run" / "report.html").is_file()

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    dates = pd.to_datetime(["2035-01-01", "2035-07-15", "2035-12-31"])
    answer = model.predict(
        pd.DataFrame(
            {"area": "trust", "date": dates, "scenario": ["high_ageing", "principal", "more_remote_closure"]}
        )
    )
    assert len(answer) == 3 and (answer["calls_p10"] < answer["calls_p90"]).all()
    assert answer.loc[0, "calls_mean"] > answer.loc[1, "calls_mean"]  # New Year's Day against a July day
    last = answer.iloc[2]
    assert last["needs_ambulance_mean"] == pytest.approx(0.7 * last["calls_mean"])  # 30 % closed remotely
    with pytest.raises(mlflow.exceptions.MlflowException, match="out of range") as error:
        model.predict(
            pd.DataFrame(
                {"area": ["trust"], "date": pd.to_datetime(["2036-01-01"]), "scenario": ["principal"]}
            )
        )
    assert error.value.error_code == "INVALID_PARAMETER_VALUE"


def test_impossible_scenario_value_is_one_line_and_exit_2(tmp_path):
    done = _cli([*fast_overrides(tmp_path / "store"), "scenario.remote_closure.end_share=1.3"], tmp_path)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1] == "error: scenario.remote_closure.end_share=1.3: must be a share in [0, 1]"
    assert "Traceback" not in done.stderr


def test_console_script_points_at_the_entry_point():
    assert 'forecast-project = "forecasting.project:main"' in (ROOT / "pyproject.toml").read_text()
    script = Path(sys.executable).with_name("forecast-project")
    assert script.is_file(), "reinstall with `make test` (pip install -e .)"
