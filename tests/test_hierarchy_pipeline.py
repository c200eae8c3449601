"""A hierarchy on a user's CSV in one override: every node backtested per level, registered and served."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from forecasting.config_checks import check_config
from forecasting.pipeline import train
from mlops.errors import ConfigError, DataValidationError
from tests.conftest import compose_config, fast_forecast_overrides


@pytest.fixture
def area_category_csv(tmp_path, synthetic_counts):
    """A user's file: date, area, category and calls, no series column; 4 leaves, 18 months."""
    frame = synthetic_counts[
        synthetic_counts["area"].isin(["city", "moor"])
        & synthetic_counts["category"].isin(["C2", "C4"])
        & (synthetic_counts["ds"] >= "2022-07-01")
    ]
    path = tmp_path / "calls.csv"
    frame.rename(columns={"ds": "date", "y": "calls"})[["date", "area", "category", "calls"]].to_csv(
        path, index=False
    )
    return path


def overrides(tmp_path, path, *extra):
    return [
        *fast_forecast_overrides(path, tmp_path / "store", "seasonal_naive"),
        "data=csv",
        f"data.path={path}",
        "data.columns.ds=date",
        "data.columns.y=calls",
        "hierarchy.levels=[area,category]",
        "hierarchy.n_windows=2",
        "hierarchy.step=7",
        *extra,
    ]


def test_one_override_forecasts_scores_and_serves_every_node(tmp_path, area_category_csv):
    cfg = compose_config("forecast", overrides(tmp_path, area_category_csv))
    result = train(cfg, tmp_path / "out")
    by_level = pd.read_csv(result.output_dir / "metrics_by_level.csv")
    assert by_level["level"].tolist() == ["total", "area", "category", "area/category"]
    assert by_level[["mase", "crps", "coverage_80", "coverage_95"]].notna().all().all()
    client = MlflowClient(mlflow.get_tracking_uri())
    run = client.get_run(result.run_id)
    assert run.data.metrics["total.mase"] == pytest.approx(by_level["mase"].iloc[0])
    assert run.data.tags["reconciliation"] == "mint_shrink"

    metadata = mlflow.models.get_model_info(result.model_uri).metadata
    assert metadata["hierarchy"]["nodes"]["total"] == ["total"]
    assert metadata["hierarchy"]["nodes"]["area"] == ["area=city", "area=moor"]
    assert "category=C4" in metadata["series"]

    model = mlflow.pyfunc.load_model(result.model_uri)
    day = pd.Timestamp("2023-12-31") + pd.Timedelta(days=1)
    nodes = ["total", "area=city", "category=C4", "city/C2", "city/C4", "moor/C2", "moor/C4"]
    answer = model.predict(pd.DataFrame({"unique_id": nodes, "ds": [day] * len(nodes)})).set_index(
        "unique_id"
    )
    assert answer.loc["total", "mean"] == pytest.approx(answer.loc[nodes[3:], "mean"].sum())
    assert answer.loc["area=city", "mean"] == pytest.approx(answer.loc[["city/C2", "city/C4"], "mean"].sum())
    # A total's interval is wider than any of its leaves'.
    width = answer["hi_80"] - answer["lo_80"]
    assert width["total"] > width[nodes[3:]].max()
    with pytest.raises(mlflow.exceptions.MlflowException, match="'total'.*area"):
        model.predict(pd.DataFrame({"unique_id": ["area=nowhere"], "ds": [day]}))


def test_bad_hierarchy_settings_are_refused_before_any_work(tmp_path, area_category_csv):
    for extra, message in [
        (["hierarchy.method=mint"], "hierarchy.method='mint': choose one of"),
        (["hierarchy.n_windows=1"], "hierarchy.n_windows=1 must be a whole number from 2"),
        (["hierarchy.intervals=normal"], "hierarchy.intervals='normal': choose one of joint_errors, copula"),
        (["data.records=true"], "needs daily counts"),
    ]:
        with pytest.raises(ConfigError, match=message):
            check_config(compose_config("forecast", overrides(tmp_path, area_category_csv, *extra)))
    cfg = compose_config("forecast", overrides(tmp_path, area_category_csv, "hierarchy.levels=[area,region]"))
    with pytest.raises(
        DataValidationError, match=r"missing column\(s\) \['region'\] named in hierarchy.levels"
    ):
        train(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_preset_and_the_default():
    assert list(compose_config("forecast", []).hierarchy.levels) == []  # off unless asked for
    cfg = compose_config("forecast", ["hierarchy=area_category"])
    assert (
        list(cfg.hierarchy.levels) == ["area", "category"]
        and cfg.hierarchy.horizon == cfg.serving.max_horizon
    )
    check_config(cfg)
