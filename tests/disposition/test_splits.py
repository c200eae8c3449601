"""calls.split=temporal|random|group: windows without dates, folds that follow the split, the report."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from disposition.config_checks import check_config
from disposition.data import CallSpec, group_split, prepare_calls, random_split
from disposition.pipeline import train
from mlops.errors import ConfigError, DataValidationError
from tests.disposition.conftest import SYNTHETIC, compose_disposition, fast_overrides


@pytest.fixture(scope="module")
def undated_csv(tmp_path_factory) -> Path:
    """Own records from data/synthetic/calls.parquet with the date column dropped (seeded sample)."""
    calls = pd.read_parquet(SYNTHETIC / "calls.parquet")
    calls = calls.sample(n=24_000, random_state=11).drop(columns=["call_time"])
    path = tmp_path_factory.mktemp("undated") / "own_calls.csv"
    calls.to_csv(path, index=False)
    return path


def test_random_split_is_stratified_seeded_and_disjoint():
    y = (np.random.default_rng(0).random(10_000) < 0.3).astype(int)
    train, cal, test, bounds = random_split(y, 0.2, 0.25, seed=5)
    assert bounds == {"split": "random"}
    assert (train.astype(int) + cal + test == 1).all()
    assert abs(test.mean() - 0.25) < 0.002 and abs(cal.mean() - 0.2) < 0.002
    shares = [y[mask].mean() for mask in (train, cal, test)]
    assert max(shares) - min(shares) < 0.002  # each window has the same share of positives
    again = random_split(y, 0.2, 0.25, seed=5)
    assert all((a == b).all() for a, b in zip((train, cal, test), again[:3], strict=True))
    assert not (random_split(y, 0.2, 0.25, seed=6)[2] == test).all()


def test_group_split_never_puts_a_group_in_two_windows():
    rng = np.random.default_rng(1)
    groups = rng.choice([f"hospital_{i}" for i in range(23)], size=20_000, p=rng.dirichlet(np.ones(23)))
    train, cal, test, bounds = group_split(groups, 0.2, 0.2, seed=3)
    assert (train.astype(int) + cal + test == 1).all()
    windows = [set(groups[mask]) for mask in (train, cal, test)]
    assert all(windows)
    assert not (windows[0] & windows[1] or windows[0] & windows[2] or windows[1] & windows[2])
    assert bounds["split"] == "group" and "test" in bounds["groups"]
    assert (group_split(groups, 0.2, 0.2, seed=3)[2] == test).all()
    # Three groups: one per window whatever the fractions.
    few = np.repeat(["a", "b", "c"], [10, 5000, 3])
    masks = group_split(few, 0.2, 0.2, seed=0)[:3]
    assert [len(set(few[m])) for m in masks] == [1, 1, 1]
    with pytest.raises(DataValidationError, match="at least 3 groups"):
        group_split(np.repeat(["a", "b"], 100), 0.2, 0.2)


def _undated_overrides(path: Path, store: Path, *extra: str) -> list[str]:
    keep = [o for o in fast_overrides(path, store) if not o.startswith("calls.path")]
    return [
        "calls=csv",
        f"calls.path={path}",
        "calls.target.column=safe_remote",
        "calls.exclude=[call_id,closed_remotely,disposition,adverse_outcome,adverse_type,p_safe_remote_true]",
        "calls.never_remote={category:[C1]}",
        *keep,
        *extra,
    ]


def test_undated_own_records_train_and_register_with_a_random_split(tmp_path, undated_csv):
    cfg = compose_disposition(_undated_overrides(undated_csv, tmp_path / "store", "calls.split=random"))
    assert cfg.calls.date_column is None
    result = train(cfg, tmp_path / "out")
    assert result.version == "1"
    report = (result.output_dir / "report.md").read_text()
    card = (result.output_dir / "model_card.md").read_text()
    for text in (report, card):
        assert "Random split, stratified by the outcome" in text and "drift over time" in text
    assert "stratified cross-validation" in report and "fold0" in report and "fold1" in report
    tuning = pd.read_csv(result.output_dir / "tuning.csv")
    assert {"fold0", "fold1", "mean_test_score"} <= set(tuning.columns)
    assert "time_of_day" not in set(pd.read_csv(result.output_dir / "subgroups.csv")["group"])
    # Served without a date column: the model never asks for one.
    model = mlflow.pyfunc.load_model(f"models:/disposition-remote-closure-own-calls/{result.version}")
    request = pd.read_csv(undated_csv).head(50)
    numbers = request.select_dtypes("number").columns  # the types a double signature takes
    request[numbers] = request[numbers].astype(float)
    answer = model.predict(request.drop(columns=["safe_remote", "p_safe_remote_true"]))
    assert len(answer) == 50 and answer["p_safe_remote"].between(0, 1).all()


def test_group_split_tunes_on_grouped_folds(tmp_path, undated_csv):
    cfg = compose_disposition(
        _undated_overrides(
            undated_csv,
            tmp_path / "store",
            "calls.split=group",
            "calls.split_group=area",
            "baseline_enabled=false",
        )
    )
    result = train(cfg, tmp_path / "out")
    report = (result.output_dir / "report.md").read_text()
    assert "Grouped split by `area`" in report and "grouped, stratified cross-validation" in report


@pytest.mark.parametrize(
    ("extra", "error", "message"),
    [
        (["calls.split=sideways"], ConfigError, "calls.split"),
        (["calls.split=group"], ConfigError, "calls.split_group"),
        (["calls.split=temporal"], ConfigError, "calls.date_column is required with calls.split=temporal"),
        (["calls.split=random", "split.test_start=2023-01-01"], ConfigError, "only to calls.split=temporal"),
    ],
)
def test_bad_split_config_is_one_line(tmp_path, undated_csv, extra, error, message):
    cfg = compose_disposition(_undated_overrides(undated_csv, tmp_path / "store", *extra))
    with pytest.raises(error, match=message) as caught:
        train(cfg, tmp_path / "out")
    assert "\n" not in str(caught.value)


def test_missing_group_column_is_one_line(undated_csv):
    spec = CallSpec.from_config(
        {
            "name": "own",
            "date_column": None,
            "split": "group",
            "split_group": "hospital",
            "target": {"column": "safe_remote"},
            "exclude": ["call_id", "p_safe_remote_true"],
        }
    )
    with pytest.raises(DataValidationError, match="calls.split_group='hospital' is not a column") as caught:
        prepare_calls(pd.read_csv(undated_csv).head(500), spec)
    assert "\n" not in str(caught.value)


def test_check_config_accepts_an_undated_random_split(tmp_path, undated_csv):
    check_config(
        compose_disposition(_undated_overrides(undated_csv, tmp_path / "store", "calls.split=random"))
    )
