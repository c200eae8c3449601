"""Parallel sweeps: joblib multiruns on one SQLite store, the champion under races, the search preset.

Every app that writes to MLflow (forecast, disposition, project) is swept with two joblib jobs on a
new store: the hard case, where jobs race to create the schema unless the store callback ran first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.types import RunMode
from mlflow.entities.model_registry import ModelVersion, ModelVersionTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from disposition.synthetic_calls import sample_calls
from mlops.concurrency import exclusive_lock, retry_transient, store_lock_path
from mlops.hydra_callbacks import PrepareTrackingStore
from mlops.registry import CHALLENGER, CHAMPION, PromotionDecision, promote_on_evidence
from tests.conftest import CONF_DIR, ROOT, fast_forecast_overrides

MODEL_NAME = "daily-demand-synthetic"
SYNTHETIC = ROOT / "data" / "synthetic"
APPS_WRITING_TO_MLFLOW = ["forecast", "disposition", "project"]


def _multirun(
    args: list[str], workdir: Path, module: str = "forecasting.train"
) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", module, *args, f"hydra.sweep.dir={workdir / 'sweep'}"]
    # Telemetry would try to reach the network from every process and wait for it at exit.
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)


def _client(workdir: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{workdir / 'store' / 'mlflow.db'}")


def test_parallel_sweep_on_a_new_store_records_every_run_and_crowns_the_best(tmp_path, small_counts_csv):
    # A new store is the hard case: without the store callback both workers migrate the schema at
    # once and one fails (alembic "expected to match one row" or "duplicate column").
    overrides = fast_forecast_overrides(small_counts_csv, tmp_path / "store", "seasonal_naive")
    done = _multirun(
        ["-m", *overrides, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "model.season_length=7,14,28"],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "database is locked" not in done.stdout + done.stderr

    client = _client(tmp_path)
    experiment = client.get_experiment_by_name("daily-demand-forecast")
    runs = _jobs(client.search_runs([experiment.experiment_id]))
    assert sorted(run.data.params["model.season_length"] for run in runs) == ["14", "28", "7"]
    assert {run.info.status for run in runs} == {"FINISHED"}
    versions = client.search_model_versions(f"name='{MODEL_NAME}'")
    assert sorted(v.run_id for v in versions) == sorted(run.info.run_id for run in runs)
    assert all("promotion" in v.tags for v in versions)  # every decision was applied

    mase = {v.version: float(v.tags["backtest_mase"]) for v in versions}
    assert len(set(mase.values())) == 3  # distinct scores, so "the best" is one version
    assert client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version == min(mase, key=mase.get)
    _assert_each_job_logged_what_it_printed(tmp_path / "sweep", "train.log", "backtest: MASE", 3)


class _FakeRegistry:
    """The registry calls promotion makes, with aliases held in a dict."""

    def __init__(self, aliases: dict[str, ModelVersion]):
        self.aliases = aliases
        self.tags: dict[str, dict[str, str]] = {}

    def get_model_version_by_alias(self, name, alias):
        if alias not in self.aliases:
            raise MlflowException(f"Registered model alias {alias} not found.", "INVALID_PARAMETER_VALUE")
        return self.aliases[alias]

    def set_registered_model_alias(self, name, alias, version):
        self.aliases[alias] = _version(version, self.tags.get(str(version), {}).get("mase", "nan"))

    def set_model_version_tag(self, name, version, key, value):
        self.tags.setdefault(str(version), {})[key] = value

    def update_model_version(self, name, version, description=None):
        self.tags.setdefault(str(version), {})["description"] = description


def _version(number: str, mase: str) -> ModelVersion:
    return ModelVersion(MODEL_NAME, number, 0, tags=[ModelVersionTag("mase", mase)])


def _decide(mase: float):
    def decide(champion: ModelVersion | None) -> PromotionDecision:
        if champion is None or mase < float(champion.tags["mase"]):
            return PromotionDecision(True, f"{mase} is the best so far")
        return PromotionDecision(False, f"{mase} does not beat v{champion.version}")

    return decide


def test_a_champion_moved_by_a_parallel_job_is_compared_again_before_the_alias_moves(tmp_path):
    # Job 3 (MASE 0.9) decides against champion v1 (1.0) and would promote; meanwhile job 2
    # crowns v2 (0.8). Writing job 3's stale decision would put the worse model on top.
    registry = _FakeRegistry({CHAMPION: _version("1", "1.0")})
    registry.tags = {"1": {"mase": "1.0"}, "2": {"mase": "0.8"}, "3": {"mase": "0.9"}}
    seen = []

    def decide_while_job_2_promotes(champion):
        seen.append(champion.version)
        if len(seen) == 1:
            registry.set_registered_model_alias(MODEL_NAME, CHAMPION, "2")
        return _decide(0.9)(champion)

    candidate = _version("3", "0.9")
    decision = promote_on_evidence(registry, candidate, decide_while_job_2_promotes, tmp_path / "lock")
    assert seen == ["1", "2"]  # decided again against the new champion
    assert not decision.promoted and registry.aliases[CHAMPION].version == "2"
    assert registry.aliases[CHALLENGER].version == "3"
    assert registry.tags["3"]["promotion"] == decision.reason


def test_promotion_decides_once_when_nobody_else_writes(tmp_path):
    registry = _FakeRegistry({})
    registry.tags = {"1": {"mase": "0.7"}}
    calls = []

    def decide(champion):
        calls.append(champion)
        return _decide(0.7)(champion)

    decision = promote_on_evidence(registry, _version("1", "0.7"), decide, tmp_path / "lock")
    assert calls == [None] and decision.promoted and registry.aliases[CHAMPION].version == "1"


def test_transient_store_errors_are_retried_and_real_errors_are_not():
    calls = []

    def locked_twice():
        calls.append(1)
        if len(calls) < 3:
            raise MlflowException("(sqlite3.OperationalError) database is locked", "TEMPORARILY_UNAVAILABLE")
        return "done"

    assert retry_transient(locked_twice, first_delay=0) == "done" and len(calls) == 3

    def missing():
        calls.append(1)
        raise MlflowException("Registered Model with name=x not found", "RESOURCE_DOES_NOT_EXIST")

    calls.clear()
    with pytest.raises(MlflowException, match="not found"):
        retry_transient(missing, first_delay=0)
    assert len(calls) == 1

    def always_locked():
        raise MlflowException("database is locked", "TEMPORARILY_UNAVAILABLE")

    with pytest.raises(MlflowException, match="locked"):
        retry_transient(always_locked, attempts=3, first_delay=0)


def test_the_store_lock_excludes_other_processes(tmp_path):
    lock = store_lock_path(f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}")
    assert lock == tmp_path / "store" / "mlflow.db.lock"
    assert store_lock_path("http://mlflow:5000").parent == Path(tempfile.gettempdir())
    probe = textwrap.dedent(f"""
        import fcntl
        with open({str(lock)!r}, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print("held")
            else:
                print("free")
    """)
    with exclusive_lock(lock):
        held = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    after = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert (held.stdout.strip(), after.stdout.strip()) == ("held", "free")


def test_store_callback_skips_configs_without_tracking(caplog):
    PrepareTrackingStore().on_multirun_start(OmegaConf.create({"experiment_name": "x"}))
    assert "store not prepared" in caplog.text


def test_a_sweep_on_an_unusable_store_stops_with_one_line_before_any_job(tmp_path):
    store = tmp_path / "not_a_folder"
    store.write_text("")
    done = _multirun(
        ["-m", "model=seasonal_naive", f"tracking.store_dir={store}", "model.season_length=7,14"], tmp_path
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr and "Warning" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and f"tracking.store_dir={store}" in errors[0]
    assert not (tmp_path / "sweep" / "0").exists()  # no job started


def test_search_preset_is_a_parallel_lightgbm_grid_on_its_own_model_name():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("forecast", ["experiment=lightgbm_search"], return_hydra_config=True)
    assert cfg.model._target_ == "forecasting.models.GlobalLightGBM"
    assert cfg.hydra.mode == RunMode.MULTIRUN
    assert cfg.hydra.launcher._target_.endswith("JoblibLauncher") and cfg.hydra.launcher.n_jobs == 2
    grid = cfg.hydra.sweeper.params
    for key in grid:  # a misspelt grid key would only fail once the jobs start
        assert key.startswith("model.") and key.removeprefix("model.") in cfg.model, key
    assert cfg.registry.model_name == "daily-demand-synthetic-search" != MODEL_NAME
    assert cfg.model.n_jobs == 1  # two jobs at once on two cores: one LightGBM thread each
    assert "prepare_tracking_store" in cfg.hydra.callbacks


# End to end, the preset's grid in two worker processes: the test above checks what the preset
# composes, and the first sweep test runs parallel jobs on a new store in the default suite.
@pytest.mark.slow
def test_search_preset_launches_its_grid_in_parallel(tmp_path, small_counts_csv):
    overrides = fast_forecast_overrides(small_counts_csv, tmp_path / "store", "lightgbm")
    overrides.remove("model=lightgbm")  # the preset chooses the model
    grid = ["model.num_leaves=7", "model.learning_rate=0.1", "model.min_child_samples=20,50"]
    done = _multirun(["experiment=lightgbm_search", *overrides, "model.n_estimators=30", *grid], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]

    client = _client(tmp_path)
    experiment = client.get_experiment_by_name("daily-demand-lightgbm-search")
    runs = _jobs(client.search_runs([experiment.experiment_id]))
    assert sorted(run.data.params["model.min_child_samples"] for run in runs) == ["20", "50"]
    assert {run.data.params["model.n_jobs"] for run in runs} == {"1"}
    search = "daily-demand-synthetic-search"
    versions = client.search_model_versions(f"name='{search}'")
    assert sorted(v.run_id for v in versions) == sorted(run.info.run_id for run in runs)
    best = min(versions, key=lambda v: float(v.tags["backtest_mase"]))
    assert client.get_model_version_by_alias(search, CHAMPION).version == best.version
    assert client.search_registered_models(f"name='{MODEL_NAME}'") == []  # the service model is untouched


@pytest.mark.parametrize("app", APPS_WRITING_TO_MLFLOW)
def test_every_app_prepares_the_store_before_parallel_jobs(app):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(app, [], return_hydra_config=True)
    callback = cfg.hydra.callbacks.prepare_tracking_store
    assert callback._target_ == "mlops.hydra_callbacks.PrepareTrackingStore"
    # The callback reads these keys; a config without them would silently skip the preparation.
    assert OmegaConf.select(cfg, "tracking.store_dir") and OmegaConf.select(cfg, "experiment_name")


def _assert_each_job_logged_what_it_printed(sweep: Path, name: str, summary: str, n_jobs: int) -> None:
    """Each job's log holds its own printed summary once: the tee runs inside joblib's workers too."""
    for job in range(n_jobs):
        log = (sweep / str(job) / name).read_text()
        assert (
            log.count(summary) == 1 and "load it, files checked: mlops.integrity.load_verified_model" in log
        ), job
        assert "\r" not in log


def _assert_each_run_kept_its_finished_log(client: MlflowClient, runs, artifact: str, summary: str) -> None:
    """The log copied to each run is the finished one, with the summary printed after the run ended."""
    for run in runs:
        local = client.download_artifacts(run.info.run_id, artifact)
        assert Path(local).read_text().count(summary) == 1, run.info.run_id


def _jobs(runs):
    """The sweep's jobs, each nested under the one parent run the sweep opened (also in joblib
    workers, which inherit its id from the launching process); the parent is left out."""
    parents = [run for run in runs if run.data.tags.get("sweep") == "true"]
    jobs = [run for run in runs if run.data.tags.get("sweep") != "true"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert {run.data.tags.get("mlflow.parentRunId") for run in jobs} == {parents[0].info.run_id}
    return jobs


def _assert_one_version_per_finished_run(client: MlflowClient, experiment: str, model: str, n_runs: int):
    """Every job left a finished run and exactly one version with its promotion decision applied."""
    runs = _jobs(client.search_runs([client.get_experiment_by_name(experiment).experiment_id]))
    assert len(runs) == n_runs and {run.info.status for run in runs} == {"FINISHED"}
    versions = client.search_model_versions(f"name='{model}'")
    assert sorted(v.run_id for v in versions) == sorted(run.info.run_id for run in runs)
    assert all("promotion" in v.tags for v in versions)
    champion = client.get_model_version_by_alias(model, CHAMPION)
    assert champion.version in {v.version for v in versions}
    return runs, versions


@pytest.fixture(scope="module")
def small_calls_path(tmp_path_factory) -> Path:
    """12,000 synthetic calls: enough for a threshold, quick to fit without tuning."""
    world = OmegaConf.load(SYNTHETIC / "world.yaml").world
    ratio = OmegaConf.to_container(world.age_rate_ratio)
    counts, population = (
        pd.read_csv(SYNTHETIC / "daily_counts.csv"),
        pd.read_csv(SYNTHETIC / "population.csv"),
    )
    path = tmp_path_factory.mktemp("calls") / "calls.parquet"
    sample_calls(counts, population, ratio, 12_000, seed=7).calls.to_parquet(path, index=False)
    return path


def test_parallel_disposition_sweep_on_a_new_store(tmp_path, small_calls_path):
    # Before the store callback was in conf/disposition.yaml this failed with "table tags already
    # exists" and left report files with no run.
    overrides = [
        f"calls.path={small_calls_path}",
        f"tracking.store_dir={tmp_path / 'store'}",
        "tuning.enabled=false",
        "baseline_enabled=false",
        "classifier.estimator.n_estimators=40",
        "classifier.estimator.n_jobs=1",
        "reasons.table_calls=1000",
        "safety.limit=0.05",  # 12,000 calls: a sweep-mechanics test, not a safety one
    ]
    done = _multirun(
        ["-m", *overrides, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=1,2"],
        tmp_path,
        "disposition.train",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    client = _client(tmp_path)
    runs, _ = _assert_one_version_per_finished_run(
        client, "disposition-remote-closure", "disposition-remote-closure", 2
    )
    assert sorted(run.data.params["seed"] for run in runs) == ["1", "2"]
    for job in ("0", "1"):  # each job's report folder belongs to a run
        assert (tmp_path / "sweep" / job / "model_card.md").is_file()
    _assert_each_job_logged_what_it_printed(tmp_path / "sweep", "train.log", "test window: AUC", 2)
    _assert_each_run_kept_its_finished_log(client, runs, "report/train.log", "test window: AUC")


# The projection's parallel jobs take the same path as the disposition's above (the store callback,
# the console log tee in joblib workers, the log attached to each finished run); both apps' configs
# carry the callback (test_every_app_prepares_the_store_before_parallel_jobs).
@pytest.mark.slow
def test_parallel_projection_sweep_on_a_new_store(tmp_path):
    data = ROOT / "data"
    overrides = [
        f"tracking.store_dir={tmp_path / 'store'}",
        f"history.counts_path={SYNTHETIC / 'daily_counts.csv'}",
        f"history.population_path={SYNTHETIC / 'population.csv'}",
        f"backtest.counts_path={SYNTHETIC / 'daily_counts.csv'}",
        f"backtest.population_path={SYNTHETIC / 'population.csv'}",
        f"population.path={data / 'external' / 'ons_population' / 'england_npp2020_principal_5yr.csv'}",
        "n_paths=50",
    ]
    done = _multirun(
        ["-m", *overrides, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=1,2"],
        tmp_path,
        "forecasting.project",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    client = _client(tmp_path)
    runs, _ = _assert_one_version_per_finished_run(
        client, "demand-projection", "demand-projection-ons-england", 2
    )
    assert sorted(run.data.params["seed"] for run in runs) == ["1", "2"]
    for job in ("0", "1"):
        assert (tmp_path / "sweep" / job / "report.html").is_file()
    _assert_each_job_logged_what_it_printed(
        tmp_path / "sweep", "project.log", "report (open in a browser)", 2
    )
    _assert_each_run_kept_its_finished_log(client, runs, "results/project.log", "report (open in a browser)")
