"""Nothing is registered until everything has passed; the champion is judged on what it serves.

Each case checks what is left behind: no model version, no alias move, no run left RUNNING and no
results folder (or hidden half-written one) beside the output folder.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import forecasting.pipeline as forecasting_pipeline
import mlops.registry as registry
from forecasting.models.seasonal_naive import SeasonalNaive
from forecasting.pipeline import train
from mlops.contract import contract_differences
from mlops.errors import UserInputError
from mlops.gate import GateError, forecast_problems, probability_problems
from mlops.registry import PromotionDecision
from tests.conftest import compose_config, fast_forecast_overrides

NAME = "daily-demand-synthetic"


def _client(tmp_path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}")


def _run(tmp_path, data_path, *extra, model="seasonal_naive", out="out"):
    cfg = compose_config(
        "forecast", fast_forecast_overrides(data_path, tmp_path / "store", model) + list(extra)
    )
    return train(cfg, tmp_path / out)


def _versions(tmp_path) -> list[str]:
    if not (tmp_path / "store" / "mlflow.db").exists():
        return []
    return sorted(str(v.version) for v in _client(tmp_path).search_model_versions(f"name='{NAME}'"))


def _assert_nothing_left(tmp_path, out="out", versions=()):
    """No new version, no RUNNING run, no results and no hidden staging folder."""
    assert _versions(tmp_path) == list(versions)
    if (tmp_path / "store" / "mlflow.db").exists():
        client = _client(tmp_path)
        for experiment in client.search_experiments():
            for run in client.search_runs([experiment.experiment_id]):
                assert run.info.status != "RUNNING"
    assert not (tmp_path / out).exists() or not any((tmp_path / out).iterdir())
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def _write(tmp_path, frame: pd.DataFrame, name="counts.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_all_zero_series_registers_nothing(tmp_path, small_counts):
    zeros = small_counts.assign(y=np.where(small_counts["unique_id"] == "moor/C4", 0, small_counts["y"]))
    with pytest.raises(UserInputError, match="moor/C4.*zero"):
        _run(tmp_path, _write(tmp_path, zeros))
    _assert_nothing_left(tmp_path)


def test_constant_series_makes_mase_nan_and_the_gate_says_why(tmp_path, small_counts):
    constant = small_counts.assign(y=np.where(small_counts["unique_id"] == "moor/C4", 3, small_counts["y"]))
    with pytest.raises(GateError) as refused:
        _run(tmp_path, _write(tmp_path, constant))
    message = str(refused.value)
    assert "mase is nan" in message and "'moor/C4'" in message and "seasonal-naive error" in message
    assert "nothing was registered" in message and "\n" not in message
    _assert_nothing_left(tmp_path)


def test_a_one_in_1e12_count_gives_a_model_the_gate_refuses(tmp_path, small_counts):
    spoiled = small_counts.copy()
    spoiled.loc[spoiled.index[spoiled["unique_id"] == "city/C2"][-30], "y"] = 1e12
    path = _write(tmp_path, spoiled)
    # With the data screen switched off the GLM fits, and its intervals reach ~1e78.
    with pytest.raises(GateError, match=r"upper interval bound for 'city/C2' reaches .*e\+\d\d"):
        _run(tmp_path, path, "data.checks.max_ratio_to_median=null", model="glm")
    _assert_nothing_left(tmp_path)


class _InfiniteNaive(SeasonalNaive):
    """A seasonal naive whose fit is broken: its upper bounds are infinite."""

    def _predict(self, frame, h, level):
        out = super()._predict(frame, h, level)
        out[[f"hi_{lv}" for lv in level]] = np.inf
        return out


def test_non_finite_forecasts_are_refused(tmp_path, small_counts_csv, monkeypatch):
    monkeypatch.setattr(forecasting_pipeline, "build_forecaster", lambda cfg: _InfiniteNaive())
    with pytest.raises(GateError, match=r"non-finite value\(s\).*hi_80 = inf"):
        _run(tmp_path, small_counts_csv)
    _assert_nothing_left(tmp_path)


def test_a_failure_inside_the_run_leaves_no_version_and_marks_the_run_failed(
    tmp_path, small_counts_csv, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("store went away")

    _run(tmp_path, small_counts_csv, out="first")
    monkeypatch.setattr(forecasting_pipeline, "_promotion_decision", broken)
    with pytest.raises(RuntimeError, match="went away"):
        _run(tmp_path, small_counts_csv, out="second")
    _assert_nothing_left(tmp_path, out="second", versions=["1"])
    client = _client(tmp_path)
    experiment = client.get_experiment_by_name("daily-demand-forecast")
    statuses = sorted(r.info.status for r in client.search_runs([experiment.experiment_id]))
    assert statuses == ["FAILED", "FINISHED"]
    assert client.get_model_version_by_alias(NAME, "champion").version == 1


def test_20_day_series_stops_before_registering(tmp_path, small_counts_csv, small_counts):
    """The issue's case: it registered v2, then failed re-scoring the LightGBM champion."""
    _run(tmp_path, small_counts_csv, model="lightgbm", out="first")
    short = small_counts[small_counts["ds"] > small_counts["ds"].max() - pd.Timedelta(days=20)]
    with pytest.raises(UserInputError, match="backtest"):
        _run(tmp_path, _write(tmp_path, short, "short.csv"), out="second")
    _assert_nothing_left(tmp_path, out="second", versions=["1"])
    assert _client(tmp_path).get_model_version_by_alias(NAME, "champion").version == 1


def test_short_series_keeps_the_champion_it_cannot_rescore(tmp_path, small_counts_csv, small_counts, capsys):
    _run(tmp_path, small_counts_csv, model="lightgbm", out="first")
    short = small_counts[small_counts["ds"] > small_counts["ds"].max() - pd.Timedelta(days=45)]
    path = _write(tmp_path, short, "short.csv")
    result = _run(tmp_path, path, "backtest.horizon=7", "backtest.n_origins=1", out="second")
    assert "re-scoring champion v1 on this run's data: it was scored on other data" in capsys.readouterr().out
    assert not result.promoted and result.version == "2"
    assert "cannot be re-scored on this data" in result.reason and "stays champion" in result.reason
    client = _client(tmp_path)
    assert client.get_model_version_by_alias(NAME, "champion").version == 1
    assert client.get_model_version_by_alias(NAME, "challenger").version == 2


def test_contract_change_registers_a_challenger(tmp_path, small_counts_csv, small_counts):
    _run(tmp_path, small_counts_csv, out="first")
    fewer = _write(tmp_path, small_counts[small_counts["unique_id"] != "moor/C4"], "fewer.csv")
    result = _run(tmp_path, fewer, out="second")  # seasonal naive on three series
    assert not result.promoted
    assert "contract differs from champion v1: series" in result.reason
    assert "lacks ['moor/C4']" in result.reason or "'moor/C4'" in result.reason
    assert "registry.model_name=" in result.reason
    client = _client(tmp_path)
    assert client.get_model_version_by_alias(NAME, "champion").version == 1
    assert client.get_model_version_by_alias(NAME, "challenger").version == 2
    metadata = mlflow.models.get_model_info(f"models:/{NAME}@challenger").metadata
    assert metadata["kind"] == "daily_forecast" and metadata["series"] == ["city/C2", "coast/C3", "moor/C1"]
    assert metadata["max_horizon"] == 84 and metadata["levels"] == [80, 95]


def test_a_corrupted_champion_is_replaced_by_a_passing_candidate(tmp_path, small_counts, monkeypatch):
    spoiled = small_counts.copy()
    spoiled.loc[spoiled.index[spoiled["unique_id"] == "city/C2"][-30], "y"] = 1e12
    # The champion from before the gate existed: registered with intervals reaching ~1e78.
    with monkeypatch.context() as before_the_gate:
        before_the_gate.setattr(forecasting_pipeline, "forecast_problems", lambda *args: [])
        corrupted = _run(
            tmp_path,
            _write(tmp_path, spoiled),
            "data.checks.max_ratio_to_median=null",
            model="glm",
            out="old",
        )
    assert corrupted.promoted and corrupted.version == "1"
    clean = _write(tmp_path, small_counts, "clean.csv")
    result = _run(tmp_path, clean, out="new")  # seasonal naive: a worse MASE than a sane GLM would get
    assert result.promoted and result.version == "2"
    assert "replaces champion v1, whose served forecast fails the gate" in result.reason
    assert "for 'city/C2'" in result.reason and "largest daily count in history" in result.reason
    assert _client(tmp_path).get_model_version_by_alias(NAME, "champion").version == 2


def test_gate_functions_name_the_problem():
    forecast = pd.DataFrame(
        {
            "unique_id": ["a", "a"],
            "ds": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "mean": [5.0, 6.0],
            "lo_80": [4.0, 7.0],
            "hi_80": [6.0, 8.0],
        }
    )
    history_max = pd.Series({"a": 10.0})
    assert forecast_problems(forecast, history_max, [80]) == [
        "interval 80 % not ordered lo <= mean <= hi (unique_id a, 2024-01-02: 7 / 6 / 8)"
    ]
    big = forecast.assign(mean=[500.0, 500.0], lo_80=[400.0, 400.0], hi_80=[600.0, 600.0])
    assert (
        "more than 10 x its largest daily count in history (10)"
        in forecast_problems(big, history_max, [80])[0]
    )
    negative = forecast.assign(lo_80=[-1.0, 5.0])
    assert forecast_problems(negative, history_max, [80])[0].startswith("negative value(s): 1 value(s)")
    assert probability_problems(np.array([0.2, 1.5, np.nan])) == [
        "1 probability(ies) not finite",
        "1 probability(ies) outside [0, 1] (e.g. 1.5)",
    ]


def test_contract_differences_compare_only_what_callers_rely_on():
    trust = {
        "kind": "projection",
        "areas": ["trust"],
        "scenarios": ["principal"],
        "base_year": 2025,
        "final_year": 2035,
        "measures": ["calls"],
        "quantiles": ["p10", "p90"],
        "first_date": "2024-01-01",
    }
    assert contract_differences({**trust, "areas": ["north"]}, trust) == [
        "areas ['north'] instead of ['trust']"
    ]
    assert contract_differences({**trust, "first_date": "2025-01-01"}, trust) == []  # not served
    series = [f"s{i:02d}" for i in range(28)]
    forecast = {
        "kind": "daily_forecast",
        "series": series,
        "max_horizon": 84,
        "levels": [80],
        "regressors": [],
    }
    fewer = {**forecast, "series": series[1:], "train_end": "2024-06-30"}
    assert contract_differences(fewer, forecast) == ["series lacks ['s00'] (champion has 28, this one 27)"]
    closure = {
        "kind": "remote_closure",
        "features": {"age": {"type": "double", "range": [0, 99]}},
        "outputs": ["p_safe_remote"],
        "safety_limit": 0.01,
    }
    newer_ages = {**closure, "features": {"age": {"type": "double", "range": [0, 104]}}, "threshold": 0.9}
    assert contract_differences(newer_ages, closure) == []  # ranges and thresholds follow the data
    as_text = {**closure, "features": {"age": {"type": "string", "levels": ["adult"]}}}
    assert contract_differences(as_text, closure) == ["features ['age:string'] instead of ['age:double']"]


class _Constant(mlflow.pyfunc.PythonModel):
    """The smallest model there is: registration and aliases are what is tested."""

    def predict(self, context, model_input, params=None):
        return model_input


def _logged_model(tmp_path) -> tuple[MlflowClient, str]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=_Constant(), pip_requirements=["mlflow"])
    return MlflowClient(uri), info.model_uri


def test_a_version_whose_alias_cannot_be_set_is_removed_again(tmp_path, monkeypatch):
    client, model_uri = _logged_model(tmp_path)

    def refuse_alias(*args):
        raise RuntimeError("alias write failed")

    monkeypatch.setattr(registry, "apply_decision", refuse_alias)
    with pytest.raises(RuntimeError, match="alias write failed"):
        registry.register_and_promote(
            client, model_uri, "m", {}, lambda champion: PromotionDecision(True, "first"), tmp_path / "lock"
        )
    assert client.search_model_versions("name='m'") == []


def test_the_decision_is_made_again_when_the_champion_moved_before_registering(tmp_path):
    client, model_uri = _logged_model(tmp_path)
    seen = []

    def decide(champion):
        seen.append(None if champion is None else str(champion.version))
        if len(seen) == 1:  # meanwhile a parallel job registers and crowns its version
            other = registry.register_version(model_uri, "m", {})
            client.set_registered_model_alias("m", "champion", other.version)
            return PromotionDecision(True, "first model")
        return PromotionDecision(False, f"does not beat v{champion.version}")

    version, decision = registry.register_and_promote(client, model_uri, "m", {}, decide, tmp_path / "lock")
    assert seen == [None, "1"] and str(version.version) == "2" and not decision.promoted
    assert str(client.get_model_version_by_alias("m", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("m", "challenger").version) == "2"
    assert client.get_model_version("m", "2").tags["integrity.manifest_sha256"]
