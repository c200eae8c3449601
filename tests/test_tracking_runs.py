"""MLflow as data scientists expect it: readable run names, true durations, sweeps under a parent
run with a summary and the best run tagged, experiments that open on their runs, described model
versions, quiet MLflow and progress that suits the output."""

from __future__ import annotations

import io
import logging
import os
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from mlops.console import progress, quiet_mlflow, stage
from mlops.hydra_callbacks import BEST_TAG, PrepareTrackingStore
from mlops.registry import PromotionDecision, register_and_promote
from mlops.tracking import (
    CLASSIC_ML,
    EXPERIMENT_KIND_TAG,
    PARENT_RUN_ENV,
    PARENT_TAG,
    prepare_experiment,
    resolve_store,
    run_name,
    tracked_run,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One store for the module (creating an SQLite store's schema takes seconds); tests use their
    own experiment names."""
    resolved = resolve_store(OmegaConf.create({"store_dir": str(tmp_path_factory.mktemp("runs") / "store")}))
    yield resolved
    mlflow.set_tracking_uri(None)


@pytest.fixture(autouse=True)
def no_sweep(monkeypatch):
    monkeypatch.delenv(PARENT_RUN_ENV, raising=False)


def test_run_names_read_as_app_model_data():
    assert run_name("forecast", "ensemble", "swast") == "forecast-ensemble-swast"
    assert (
        run_name("disposition", "LightGBM", "synthetic calls", None) == "disposition-lightgbm-synthetic-calls"
    )


def test_experiments_open_on_their_runs_in_the_mlflow_3_ui(store):
    experiment_id = prepare_experiment(store, "fresh")
    client = MlflowClient(store.tracking_uri)
    assert client.get_experiment(experiment_id).tags[EXPERIMENT_KIND_TAG] == CLASSIC_ML
    old = client.create_experiment("made-before")  # an experiment from before the tag: tagged on use
    assert prepare_experiment(store, "made-before") == old
    assert client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == CLASSIC_ML
    chosen = client.create_experiment("chosen", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    prepare_experiment(store, "chosen")  # a kind someone set is theirs
    assert client.get_experiment(chosen).tags[EXPERIMENT_KIND_TAG] == "genai_development"


def test_a_run_lasts_from_the_job_start_and_nests_under_its_sweep(store, monkeypatch):
    experiment_id = prepare_experiment(store, "e")
    started = time.time() - 5  # the backtest and fit took 5 s before the run was opened
    with tracked_run(
        experiment_id, "forecast-glm-synthetic", started, sweep_metric=("mase", "minimize")
    ) as run:
        pass
    client = MlflowClient(store.tracking_uri)
    info = client.get_run(run.info.run_id)
    assert info.info.run_name == "forecast-glm-synthetic" and info.info.status == "FINISHED"
    assert (info.info.end_time - info.info.start_time) / 1000 >= 5
    assert PARENT_TAG not in info.data.tags and info.data.tags["sweep_metric"] == "mase"
    parent = client.create_run(experiment_id).info.run_id
    monkeypatch.setenv(PARENT_RUN_ENV, parent)
    with tracked_run(experiment_id, "child", time.time()) as child:
        pass
    assert client.get_run(child.info.run_id).data.tags[PARENT_TAG] == parent
    other = prepare_experiment(store, "other")  # a parent in another experiment cannot hold it
    with tracked_run(other, "child", time.time()) as stray:
        pass
    assert PARENT_TAG not in client.get_run(stray.info.run_id).data.tags


def test_a_sweep_gets_a_parent_run_a_summary_and_its_best_run_tagged(store, capsys):
    config = OmegaConf.create(
        {
            "tracking": {"uri": store.tracking_uri},
            "experiment_name": "sweep",
            "hydra": {"job": {"name": "train"}, "overrides": {"task": ["model=glm,ets", "seed=1"]}},
        }
    )
    callback = PrepareTrackingStore()
    callback.on_multirun_start(config)
    parent = os.environ[PARENT_RUN_ENV]
    experiment_id = prepare_experiment(store, "sweep")
    for model, mase in (("glm", 0.71), ("ets", 0.64)):  # what each job does, with its own overrides
        with tracked_run(
            experiment_id, f"forecast-{model}-synthetic", time.time(), sweep_metric=("mase", "minimize")
        ):
            mlflow.log_metric("mase", mase)
    callback.on_multirun_end(config)
    assert PARENT_RUN_ENV not in os.environ
    client = MlflowClient(store.tracking_uri)
    top = client.get_run(parent)
    assert top.info.run_name == "train-sweep-model" and top.info.status == "FINISHED"
    assert top.data.metrics["best_mase"] == pytest.approx(0.64)
    assert top.data.tags["best_run"].startswith("forecast-ets-synthetic")
    children = client.search_runs([experiment_id], f"tags.`{PARENT_TAG}` = '{parent}'")
    assert {r.info.run_name: r.data.tags.get(BEST_TAG) for r in children} == {
        "forecast-ets-synthetic": "true",
        "forecast-glm-synthetic": None,
    }
    summary = pd.read_csv(io.StringIO(mlflow.artifacts.load_text(f"runs:/{parent}/sweep_summary.csv")))
    assert list(summary["run_name"]) == ["forecast-ets-synthetic", "forecast-glm-synthetic"]
    assert "| forecast-ets-synthetic |" in mlflow.artifacts.load_text(f"runs:/{parent}/sweep_summary.md")
    assert "best: forecast-ets-synthetic (mase 0.64" in capsys.readouterr().out


def test_every_model_version_is_described(store):
    experiment_id = prepare_experiment(store, "registry")
    with mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.pyfunc.log_model(name="model", python_model=_Constant(), pip_requirements=["mlflow"])
    client = MlflowClient(store.tracking_uri)
    version, _ = register_and_promote(
        client,
        info.model_uri,
        "described",
        {},
        lambda champion: PromotionDecision(True, "first model"),
        Path(store.tracking_uri.removeprefix("sqlite:///") + ".lock"),
        description="GLM on synthetic data, MASE 0.71.",
    )
    text = client.get_model_version("described", version.version).description
    assert text == "GLM on synthetic data, MASE 0.71.\n\nRegistered as champion: first model."


def test_mlflow_noise_is_silenced_and_restored(monkeypatch):
    monkeypatch.delenv("MLFLOW_LOGGING_LEVEL", raising=False)
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    logger = logging.getLogger("mlflow")
    before = logger.level
    with quiet_mlflow():
        assert logger.getEffectiveLevel() == logging.WARNING
        assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
        assert os.environ["TQDM_DISABLE"] == "1"  # pytest's captured stderr is not a terminal
    assert logger.level == before and "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ
    monkeypatch.setenv("MLFLOW_LOGGING_LEVEL", "INFO")  # the user's own choice wins
    with quiet_mlflow():
        assert logger.level == before


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_steps_print_plain_lines_off_a_terminal_and_a_bar_on_one():
    piped = io.StringIO()
    with stage("final fit: glm", stream=piped):
        time.sleep(0.01)
    lines = piped.getvalue().splitlines()
    assert lines[0] == "final fit: glm ..." and lines[1].startswith("final fit: glm: done in ")
    assert "\r" not in piped.getvalue()
    piped = io.StringIO()
    assert list(progress(range(20), "paths", stream=piped)) == list(range(20))
    assert piped.getvalue().splitlines()[-1].startswith("paths: 20/20")
    assert len(piped.getvalue().splitlines()) == 10 and "\r" not in piped.getvalue()
    terminal = _Terminal()
    with stage("final fit: glm", stream=terminal, refresh=0.01):
        time.sleep(0.05)
    assert "\r" in terminal.getvalue() and "final fit: glm: done in" in terminal.getvalue()


class _Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input
