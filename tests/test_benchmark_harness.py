"""Benchmarks run as tracked MLflow runs and rewrite their results only when they finish."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from experiments.harness import BenchmarkReport, run_benchmark
from mlops.tracking import resolve_store
from tests.conftest import compose_config

# The SWAST protocol cut to 2019 alone, four origins, two horizons and two quick models.
QUICK_SWAST = [
    "benchmark=swast",
    "benchmark.params.horizon=14",
    "benchmark.params.step=91",
    "benchmark.params.dev_years=[]",
    "benchmark.params.test_step_others=null",
    "benchmark.params.report_horizons=[7,14]",
    "benchmark.params.peers=[]",
    "benchmark.params.default=glm",
    "~benchmark.params.models.auto",
    "~benchmark.params.models.arima",
    "~benchmark.params.models.ets",
    "~benchmark.params.models.lightgbm",
    "~benchmark.params.models.ensemble",
]


def run_quick(cfg, tmp_path, results_dir):
    store = resolve_store(OmegaConf.create({"store_dir": str(tmp_path / "store")}))
    params = OmegaConf.to_container(cfg.benchmark.params, resolve=True)
    if "cache_dir" in params:
        params["cache_dir"] = str(tmp_path / "cache")  # never the shared cache of real runs
    outcome = run_benchmark(
        cfg.benchmark.name, cfg.benchmark.module, params, store, tmp_path / "work", results_dir
    )
    return store, outcome


def test_swast_benchmark_is_logged_and_written(tmp_path):
    cfg = compose_config("bench", QUICK_SWAST)
    store, outcome = run_quick(cfg, tmp_path, tmp_path / "results")

    table = pd.read_csv(tmp_path / "results" / "swast.csv")
    assert set(table["model"]) == {"seasonal_naive: SeasonalNaive", "glm: CalendarGLM"}
    assert set(table["year"]) == {2019}
    glm = table[(table["model"] == "glm: CalendarGLM") & (table["h"] == 14)].iloc[0]
    naive = table[(table["model"] == "seasonal_naive: SeasonalNaive") & (table["h"] == 14)].iloc[0]
    assert glm["mase"] < naive["mase"]  # the calendar model must beat last week's copy on real data
    page = (tmp_path / "results" / "swast.md").read_text()
    assert "## 2019 (test year, run once)" in page and "Diebold-Mariano" in page
    assert "2019, default glm: CalendarGLM: MASE over 7 days" in page
    assert "no forecaster can meet" not in page and "Poisson noise reference (perfect mean)" not in page

    client = MlflowClient(store.tracking_uri)
    run = client.get_run(outcome.run_id)
    assert outcome.experiment_name == "benchmark-swast"
    assert run.info.status == "FINISHED"
    assert run.data.params["step"] == "91"
    assert run.data.params["models.glm._target_"] == "forecasting.models.CalendarGLM"
    assert run.data.metrics["default_mase_h14"] == pytest.approx(glm["mase"], abs=1e-4)
    assert "git_commit" in run.data.tags
    logged = {item.path for item in client.list_artifacts(outcome.run_id, "results")}
    assert logged == {"results/swast.md", "results/swast.csv"}


def test_failed_benchmark_keeps_previous_results_and_marks_run_failed(tmp_path, monkeypatch):
    results = tmp_path / "results"
    results.mkdir()
    (results / "swast.md").write_text("previous results\n")
    cfg = compose_config("bench", [*QUICK_SWAST, "benchmark.params.test_year=2020"])
    with pytest.raises(ValueError, match="runs past the data"):
        run_quick(cfg, tmp_path, results)
    assert (results / "swast.md").read_text() == "previous results\n"
    client = MlflowClient(f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("benchmark-swast")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FAILED"


def test_every_benchmark_config_names_a_module_with_run():
    import importlib

    from tests.conftest import CONF_DIR

    names = sorted(path.stem for path in (CONF_DIR / "benchmark").glob("*.yaml"))
    assert {
        "swast",
        "oracle",
        "scale",
        "sweeps",
        "projection_synthetic_backtest",
        "projection_swast_backtest",
        "projection_consistency",
        "projection_speed",
        "disposition_scale",
        "dispatch_simulation",
        "serving_load",
    } <= set(names)
    for name in names:
        cfg = compose_config("bench", [f"benchmark={name}"])
        assert cfg.benchmark.name == name
        assert callable(importlib.import_module(cfg.benchmark.module).run)


def test_params_are_flattened_to_dotted_keys():
    from mlops.tracking import flatten_params

    assert flatten_params({"a": {"b": 1, "c": {"d": [2]}}, "e": "x"}) == {"a.b": 1, "a.c.d": [2], "e": "x"}


def test_report_tables_are_written_atomically_next_to_the_page(tmp_path):
    from experiments.harness import write_results

    report = BenchmarkReport(
        "# t", tables={"": pd.DataFrame({"a": [1.0]}), "extra": pd.DataFrame({"b": [2]})}
    )
    files = write_results("demo", report, tmp_path)
    assert sorted(path.name for path in files) == ["demo.csv", "demo.md", "demo_extra.csv"]
    assert (tmp_path / "demo.md").read_text() == "# t\n"
    assert not list(tmp_path.glob(".*.tmp"))


def test_consumer_benchmarks_only_read_a_store_that_is_not_theirs(tmp_path):
    from experiments.model_store import DISPOSITION, ensure_champions, model_store
    from mlops.errors import ConfigError

    uri, own_dir = model_store(f"sqlite:///{tmp_path / 'team.db'}", tmp_path / "own")
    assert own_dir is None and not (tmp_path / "own").exists()
    with pytest.raises(ConfigError, match=f"no {DISPOSITION}@champion in .*team.db.*train it first"):
        ensure_champions(uri, own_dir, [DISPOSITION])

    uri, own_dir = model_store(None, tmp_path / "own")
    assert own_dir == tmp_path / "own" and uri == f"sqlite:///{tmp_path / 'own' / 'mlflow.db'}"
