"""Safety monitoring: the sequential test's false-alarm bound and power, and the disposition-monitor app."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from disposition.monitor_pipeline import monitor, read_outcomes
from disposition.monitoring import (
    first_alarms,
    monitor_under_triage,
    sequential_test,
    synthetic_closed_call_outcomes,
)
from mlops.errors import DataValidationError
from tests.conftest import compose_config
from tests.disposition.conftest import ROOT

LIMIT = 0.01


def test_false_alarms_under_the_null_stay_below_alpha():
    # At exactly the limit (the hardest null) and below it, checked after every call.
    rng = np.random.default_rng(1)
    for rate in (LIMIT, 0.7 * LIMIT):
        alarms = first_alarms((rng.random((300, 4000)) < rate).astype(np.int8), LIMIT, alpha=0.1)
        # Ville: <= 0.1; the mixture is conservative, so even 300 streams stay far below it.
        assert (alarms > 0).mean() <= 0.1


def test_a_doubling_is_detected_within_a_few_thousand_calls():
    rng = np.random.default_rng(2)
    alarms = first_alarms((rng.random((100, 6000)) < 2 * LIMIT).astype(np.int8), LIMIT, alpha=0.05)
    assert (alarms > 0).mean() >= 0.95
    assert np.median(alarms[alarms > 0]) < 1500


def test_sequential_test_bounds_and_alarm_agree():
    rng = np.random.default_rng(3)
    high = sequential_test((rng.random(8000) < 0.03).astype(int), LIMIT, 0.05)
    assert high.alarm and high.alarm_call is not None and high.lower_bound > LIMIT
    assert high.lower_bound <= 0.03 <= high.upper_bound
    low = sequential_test((rng.random(8000) < 0.005).astype(int), LIMIT, 0.05)
    assert not low.alarm and low.alarm_call is None and low.lower_bound < LIMIT
    assert low.lower_bound <= 0.005 <= low.upper_bound


def test_each_subgroup_is_its_own_stream_with_alpha_split():
    frame = synthetic_closed_call_outcomes(
        6000,
        0.008,
        seed=4,
        subgroup_risk={"age_band": {"young": (0.7, 0.5), "85+": (0.3, 4.0)}},
    )
    streams = monitor_under_triage(frame, "under_triage", LIMIT, 0.05, ["age_band"]).set_index("stream")
    assert list(streams.index) == ["overall", "age_band=85+", "age_band=young"]
    assert np.allclose(streams["alpha"], 0.05 / 3)
    assert streams.loc["age_band=85+", "alarm"] and not streams.loc["age_band=young", "alarm"]
    row = streams.loc["age_band=85+", "alarm_row"]
    assert frame.loc[row, "age_band"] == "85+"


def test_committed_demo_stream_is_the_configured_generator_output():
    cfg = compose_config("monitor", [])
    committed = pd.read_csv(ROOT / cfg.outcomes.path)
    settings = dict(cfg.synthetic)
    made = synthetic_closed_call_outcomes(**settings).drop(columns="true_rate")
    made["closed_at"] = made["closed_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    pd.testing.assert_frame_equal(committed, made)


def _write(tmp_path: Path, n: int, rate: float, change_at: int | None = None, factor: float = 4.0) -> Path:
    frame = synthetic_closed_call_outcomes(n, rate, seed=5, change_at=change_at, change_factor=factor)
    path = tmp_path / "outcomes.csv"
    frame.drop(columns="true_rate").to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S")
    return path


def _register_model_with_limit(store: Path, limit: float) -> None:
    """A registered version whose run carries safety.limit, as disposition-train leaves it."""
    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    client = MlflowClient()
    with mlflow.start_run() as run:
        mlflow.log_param("safety.limit", limit)
    client.create_registered_model("disposition-remote-closure")
    version = client.create_model_version(
        "disposition-remote-closure", f"{run.info.artifact_uri}/m", run.info.run_id
    )
    client.set_registered_model_alias("disposition-remote-closure", "champion", version.version)


def test_app_reads_the_limit_from_the_champion_and_tags_it(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    _register_model_with_limit(store, 0.02)
    path = _write(tmp_path, 4000, 0.01, change_at=500, factor=5.0)  # 1 % then 5 %: above 2 %
    cfg = compose_config(
        "monitor", [f"outcomes.path={path}", f"tracking.store_dir={store}", "outcomes.subgroups=[sex]"]
    )
    result = monitor(cfg, tmp_path / "out")
    assert result.limit == 0.02 and "v1" in result.limit_source
    assert result.breach and result.model_version == "disposition-remote-closure v1"
    tags = (
        MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
        .get_model_version("disposition-remote-closure", "1")
        .tags
    )
    assert tags["monitoring.status"] == "breach" and tags["monitoring.calls"] == "4000"
    assert "monitoring.checked_at" in tags and tags["monitoring.run_id"] == result.run_id
    report = (tmp_path / "out" / "monitoring.md").read_text()
    assert "BREACH" in report and "sex=female" in report
    streams = pd.read_csv(tmp_path / "out" / "monitoring_streams.csv")
    assert list(streams["stream"]) == ["overall", "sex=female", "sex=male"]
    run = mlflow.get_run(result.run_id)
    assert run.data.metrics["breach"] == 1 and run.data.tags["monitoring.status"] == "breach"
    assert run.info.run_name == "disposition-monitor-v1-outcomes"  # the version checked and the file


def _bad_file(tmp_path: Path, change) -> Path:
    frame = synthetic_closed_call_outcomes(50, 0.01, seed=6).drop(columns="true_rate")
    frame = change(frame)
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda f: f.drop(columns="under_triage"),
            "['under_triage'] not found (set outcomes.outcome_column)",
        ),
        (
            lambda f: f.assign(under_triage=f["under_triage"].replace(0, 2)),
            "are not 0 or 1, e.g. 2 at line(s) 2",
        ),
        (lambda f: f.assign(closed_at="31/12/2025"), "outcomes.read.date_format"),
        (lambda f: f.assign(call_id="same"), "appear more than once"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, change, expected):
    path = _bad_file(tmp_path, change)
    cfg = compose_config("monitor", [f"outcomes.path={path}", f"tracking.store_dir={tmp_path / 'store'}"])
    with pytest.raises(DataValidationError) as caught:
        read_outcomes(cfg, tmp_path / "out")
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_cli_exits_3_on_a_breach(tmp_path):
    breach = _write(tmp_path, 3000, 0.01, change_at=0)  # 4 % from the first call
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "disposition.monitor",
            f"outcomes.path={breach}",
            f"tracking.store_dir={tmp_path / 'store'}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3, done.stderr[-2000:]
    assert "BREACH overall" in done.stdout and "monitor.default_limit" in done.stdout
    assert "BREACH overall" in (tmp_path / "run" / "monitor.log").read_text()  # the console is tee'd
