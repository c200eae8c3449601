"""The forecasting job logs, registers and promotes only on evidence; bad input registers nothing."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from forecasting.pipeline import train
from mlops.errors import ConfigError, DataValidationError
from tests.conftest import compose_config, fast_forecast_overrides

NAME = "daily-demand-synthetic"


def _run(tmp_path, data_path, *extra, model="lightgbm"):
    overrides = fast_forecast_overrides(data_path, tmp_path / "store", model) + list(extra)
    cfg = compose_config("forecast", overrides)
    return train(cfg, tmp_path / f"out-{len(list(tmp_path.iterdir()))}")


@pytest.fixture(scope="module")
def lightgbm_first(tmp_path_factory, small_counts):
    """One LightGBM run on a new store, for the tests that look at a first champion (a fit costs seconds)."""
    folder = tmp_path_factory.mktemp("lightgbm-first")
    counts = folder / "counts.csv"
    small_counts.to_csv(counts, index=False)
    return _run(folder, counts), folder, counts


def test_first_model_is_champion_worse_one_is_challenger(lightgbm_first):
    first, tmp_path, small_counts_csv = lightgbm_first
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}")
    assert first.promoted and first.version == "1"
    assert {"backtest.csv", "metrics_by_horizon.csv", "forecast.png"} <= {
        p.name for p in first.output_dir.iterdir()
    }
    client = MlflowClient(mlflow.get_tracking_uri())
    run = client.get_run(first.run_id)
    assert run.data.metrics["mase"] == pytest.approx(first.metrics["mase"])
    assert run.data.metrics["data_filled_days"] == 0
    assert len(client.get_metric_history(first.run_id, "mase_by_horizon")) == 14
    assert run.data.params["model._target_"] == "forecasting.models.GlobalLightGBM"
    artifacts = {a.path for a in client.list_artifacts(first.run_id)}
    assert {"config.yaml", "results"} <= artifacts
    # Named by app, model and data; the run spans the backtest and the final fit, both timed.
    assert run.info.run_name == "forecast-globallightgbm-synthetic"
    seconds = run.data.metrics["backtest_seconds"] + run.data.metrics["fit_seconds"]
    assert (run.info.end_time - run.info.start_time) / 1000 >= seconds > 0
    assert (
        client.get_experiment(run.info.experiment_id).tags["mlflow.experimentKind"]
        == "custom_model_development"
    )
    described = client.get_model_version(NAME, "1").description
    assert "GlobalLightGBM" in described and "MASE" in described and "Registered as champion" in described
    # forecast.csv and forecast.png cover what is served (serving.max_horizon), not the backtest horizon.
    assert pd.read_csv(first.output_dir / "forecast.csv")["ds"].nunique() == 84

    worse = _run(tmp_path, small_counts_csv, model="seasonal_naive")
    assert not worse.promoted and "does not beat" in worse.reason
    assert client.get_model_version_by_alias(NAME, "champion").version == 1
    assert client.get_model_version_by_alias(NAME, "challenger").version == 2


def test_auto_logs_its_choice_at_every_origin_and_registers_the_winner(tmp_path, small_counts_csv):
    result = _run(tmp_path, small_counts_csv, model="auto")
    selection = pd.read_csv(result.output_dir / "auto_selection.csv")
    backtest = pd.read_csv(result.output_dir / "backtest.csv")
    assert set(selection["cutoff"].dropna()) == set(backtest["cutoff"])
    assert (selection.groupby(selection["cutoff"].fillna("final"))["rank"].min() == 1).all()
    final = selection[selection["cutoff"].isna() & (selection["rank"] == 1)]["name"].item()
    run = MlflowClient(mlflow.get_tracking_uri()).get_run(result.run_id)
    assert run.data.params["auto.winner"] == final
    registered = mlflow.pyfunc.load_model(result.model_uri).unwrap_python_model().forecaster
    assert registered.winner_ == final


def test_champion_is_rescored_when_data_changed(tmp_path, small_counts_csv, small_counts, capsys):
    _run(tmp_path, small_counts_csv, model="seasonal_naive")
    shorter = tmp_path / "shorter.csv"
    small_counts[small_counts["ds"] < "2023-07-01"].to_csv(shorter, index=False)
    better = _run(tmp_path, shorter)
    assert better.promoted and "same data" in better.reason
    # It says that the champion's score was re-measured, and why it differs from the registered one.
    assert "re-scored here" in better.reason and "other data" in better.reason
    assert "promotion: re-scoring champion v1" in capsys.readouterr().out
    client = MlflowClient(mlflow.get_tracking_uri())
    assert "champion_mase_same_data" in client.get_run(better.run_id).data.metrics


def test_served_model_answers_for_days_after_the_data(lightgbm_first, small_counts):
    result, folder, _ = lightgbm_first
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'store' / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(result.model_uri)
    last = small_counts["ds"].max()
    request = pd.DataFrame(
        {
            "unique_id": ["moor/C4", "city/C2"],
            "ds": [last + pd.Timedelta(days=1), last + pd.Timedelta(days=84)],
        }
    )
    answer = model.predict(request)
    assert list(answer.columns) == ["unique_id", "ds", "mean", "lo_80", "hi_80", "lo_95", "hi_95"]
    assert answer["unique_id"].tolist() == ["moor/C4", "city/C2"]
    assert (answer["mean"] > 0).all() and answer.notna().all().all()
    day = pd.Timedelta(days=1)
    bad_requests = [
        ("nowhere/C1", last + day, "unknown series"),
        ("city/C2", last + 85 * day, "out of range"),
        ("city/C2", last, "out of range"),
    ]
    for uid, ds, message in bad_requests:
        with pytest.raises(mlflow.exceptions.MlflowException, match=message):
            model.predict(pd.DataFrame({"unique_id": [uid], "ds": [ds]}))


def _registered(tmp_path) -> list:
    """The store's registered models; a store that was never created holds none (asking a client
    would create it, migrations and all)."""
    db = tmp_path / "store" / "mlflow.db"
    return MlflowClient(f"sqlite:///{db}").search_registered_models() if db.exists() else []


def test_bad_data_registers_nothing(tmp_path, small_counts):
    broken = tmp_path / "broken.csv"
    small_counts.drop(index=[10, 11]).to_csv(broken, index=False)
    with pytest.raises(DataValidationError, match="missing"):
        _run(tmp_path, broken)
    assert _registered(tmp_path) == []


def test_impossible_backtest_registers_nothing(tmp_path, small_counts_csv):
    with pytest.raises(ConfigError, match="n_origins"):
        _run(tmp_path, small_counts_csv, "backtest.n_origins=0")
    assert _registered(tmp_path) == []
