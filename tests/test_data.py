"""Each kind of bad input file ends in one clear error that says what to fix."""

from __future__ import annotations

import pandas as pd
import pytest

from forecasting.data import load_daily_counts
from mlops.errors import DataValidationError


@pytest.fixture
def good() -> pd.DataFrame:
    days = pd.date_range("2023-01-01", periods=20, freq="D").strftime("%Y-%m-%d")
    return pd.concat(
        [pd.DataFrame({"area": uid, "date": days, "calls": range(20)}) for uid in ("A", "B")],
        ignore_index=True,
    )


COLUMNS = {"unique_id": "area", "ds": "date", "y": "calls"}


def _load(tmp_path, frame, **kwargs):
    path = tmp_path / "counts.csv"
    frame.to_csv(path, index=False)
    return load_daily_counts(path, columns=COLUMNS, **kwargs)


def test_good_file_is_mapped_sorted_and_typed(tmp_path, good):
    frame = _load(tmp_path, good.sample(frac=1, random_state=0))
    assert list(frame.columns) == ["unique_id", "ds", "y"]
    assert frame["ds"].dtype.kind == "M" and frame["y"].dtype == float
    assert frame.equals(frame.sort_values(["unique_id", "ds"], ignore_index=True))


def test_excluded_series_are_dropped_before_checks(tmp_path, good):
    gappy = pd.concat([good, pd.DataFrame({"area": ["OOA"], "date": ["2023-01-05"], "calls": [1]})])
    frame = _load(tmp_path, gappy, exclude_series=["OOA"])
    assert set(frame["unique_id"]) == {"A", "B"}


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda f: f.drop(columns="calls"), r"missing column\(s\) \['calls'\].*data.columns.y=<column>"),
        (lambda f: f.assign(date=f["date"].where(f.index != 3, "31/02/2023x")), "not dates.*line\\(s\\) 5"),
        (lambda f: f.assign(calls=f["calls"].astype(object).where(f.index != 2, "many")), "not numbers"),
        (lambda f: f.assign(calls=f["calls"].where(f.index != 4, -3)), "negative count.*>= 0"),
        (lambda f: pd.concat([f, f.iloc[[0]]]), "share a \\(series, date\\).*'A' on 2023-01-01"),
        (lambda f: f.drop(index=[5, 6]), "2 day\\(s\\) missing.*2023-01-06"),
        (lambda f: f.assign(calls=f["calls"].where(f.index != 1)), "missing or not numbers"),
    ],
    ids=["missing-column", "bad-date", "non-numeric", "negative", "duplicate", "missing-days", "empty"],
)
def test_bad_files_fail_with_one_clear_message(tmp_path, good, corrupt, message):
    with pytest.raises(DataValidationError, match=message):
        _load(tmp_path, corrupt(good))


def test_unreadable_and_absent_files(tmp_path):
    with pytest.raises(DataValidationError, match="file not found"):
        load_daily_counts(tmp_path / "nope.csv")
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    with pytest.raises(DataValidationError, match="not a readable Parquet file"):
        load_daily_counts(broken)


def test_call_records_are_counted_per_series_and_day(tmp_path):
    records = pd.DataFrame(
        {
            "when": ["2023-01-01 08:00", "2023-01-01 23:59", "2023-01-02 00:10", "2023-01-01 12:00"],
            "station": ["N", "N", "N", "S"],
        }
    )
    path = tmp_path / "calls.csv"
    records.to_csv(path, index=False)
    frame = load_daily_counts(path, columns={"ds": "when", "unique_id": "station"}, records=True)
    assert frame[["unique_id", "y"]].values.tolist() == [["N", 2.0], ["N", 1.0], ["S", 1.0]]
    single = load_daily_counts(path, columns={"ds": "when", "unique_id": None}, records=True)
    assert single["unique_id"].unique().tolist() == ["all"] and single["y"].tolist() == [3.0, 1.0]


def test_timestamps_in_daily_counts_point_to_records(tmp_path):
    frame = pd.DataFrame({"unique_id": ["a"], "ds": ["2023-01-01 10:00"], "y": [1]})
    path = tmp_path / "counts.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match="data.records=true"):
        load_daily_counts(path)


def test_train_end_cuts_and_fill_missing_counts_repairs(tmp_path, good):
    cut = _load(tmp_path, good, train_end="2023-01-10")
    assert cut["ds"].max() == pd.Timestamp("2023-01-10")
    gappy = good.drop(index=[5, 6, 30])
    filled = _load(tmp_path, gappy, fill_missing=0)
    assert filled.attrs["filled_days"] == 3 and len(filled) == len(good)
    assert filled.loc[(filled["unique_id"] == "A") & (filled["ds"] == "2023-01-06"), "y"].item() == 0
    assert _load(tmp_path, good).attrs["filled_days"] == 0
