"""Each kind of bad input file ends in one clear error that says what to fix."""

from __future__ import annotations

import pandas as pd
import pytest

from forecasting.data import load_daily_counts
from forecasting.projection.history import daily_history
from mlops.errors import ConfigError, DataValidationError


@pytest.fixture
def good() -> pd.DataFrame:
    days = pd.date_range("2023-01-01", periods=20, freq="D").strftime("%Y-%m-%d")
    return pd.concat(
        [pd.DataFrame({"area": uid, "date": days, "calls": range(20)}) for uid in ("A", "B")],
        ignore_index=True,
    )


COLUMNS = {"unique_id": "area", "ds": "date", "y": "calls"}


def _write(tmp_path, frame):
    path = tmp_path / "counts.csv"
    frame.to_csv(path, index=False)
    return path


def _load(tmp_path, frame, **kwargs):
    return load_daily_counts(_write(tmp_path, frame), columns=COLUMNS, **kwargs)


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


def test_regressor_columns_are_taken_mapped_and_typed(tmp_path, good):
    own = _load(tmp_path, good.assign(x_temperature=[str(10 + i % 7) for i in range(len(good))]))
    assert list(own.columns) == ["unique_id", "ds", "y", "x_temperature"]
    assert own["x_temperature"].dtype == float and own["x_temperature"].iloc[3] == 13.0
    mapped = load_daily_counts(
        _write(tmp_path, good.assign(max_temp_c=1.5)), columns={**COLUMNS, "x_temperature": "max_temp_c"}
    )
    assert mapped["x_temperature"].eq(1.5).all() and "max_temp_c" not in mapped.columns
    dropped = load_daily_counts(
        _write(tmp_path, good.assign(x_temperature=1.0)), columns={**COLUMNS, "x_temperature": None}
    )
    assert "x_temperature" not in dropped.columns


@pytest.mark.parametrize(
    "value, message",
    [
        (
            "hot",
            r"x_temperature \(column 'max_temp_c'\) are missing or not numbers.*'hot' at line\(s\) 6",
        ),
        (None, r"1 value\(s\) of regressor x_temperature .*line\(s\) 6.*number on every day"),
    ],
    ids=["non-numeric", "gap"],
)
def test_bad_regressor_values_name_the_column_and_line(tmp_path, good, value, message):
    bad = good.assign(max_temp_c=good.index.astype(float).astype(object))
    bad.loc[4, "max_temp_c"] = value
    with pytest.raises(DataValidationError, match=message):
        load_daily_counts(_write(tmp_path, bad), columns={**COLUMNS, "x_temperature": "max_temp_c"})


def test_regressor_mapping_mistakes_are_explained(tmp_path, good):
    path = _write(tmp_path, good.assign(max_temp_c=1.0))
    with pytest.raises(DataValidationError, match=r"unknown key\(s\) \['temperature'\].*x_temperature"):
        load_daily_counts(path, columns={**COLUMNS, "temperature": "max_temp_c"})
    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['max_temp'\]"):
        load_daily_counts(path, columns={**COLUMNS, "x_temperature": "max_temp"})
    with pytest.raises(DataValidationError, match="fill_missing cannot know their regressor values"):
        load_daily_counts(
            _write(tmp_path, good.drop(index=[5]).assign(x_t=1.0)), columns=COLUMNS, fill_missing=0
        )


def test_call_records_refuse_mapped_regressors_and_ignore_their_own_x_columns(tmp_path):
    records = pd.DataFrame({"when": ["2023-01-01 08:00", "2023-01-02 09:00"], "x_coord": [1.0, 2.0]})
    path = _write(tmp_path, records)
    frame = load_daily_counts(path, columns={"ds": "when", "unique_id": None}, records=True)
    assert list(frame.columns) == ["unique_id", "ds", "y"]
    with pytest.raises(DataValidationError, match="cannot come with call records"):
        load_daily_counts(
            path, columns={"ds": "when", "unique_id": None, "x_temperature": "x_coord"}, records=True
        )


def test_regressors_may_be_unknown_after_train_end(tmp_path, good):
    later = good.assign(x_temperature=good["calls"].astype(float).where(good["date"] <= "2023-01-15"))
    frame = _load(tmp_path, later, train_end="2023-01-15")
    assert frame["x_temperature"].notna().all() and frame["ds"].max() == pd.Timestamp("2023-01-15")


def test_day_first_records_and_a_bad_train_end(tmp_path):
    records = pd.DataFrame(
        {"when": ["13/01/2023 08:00", "13/01/2023 09:30", "14/01/2023 00:10"], "station": "N"}
    )
    path = tmp_path / "calls.csv"
    records.to_csv(path, index=False)
    columns = {"ds": "when", "unique_id": "station"}
    with pytest.raises(DataValidationError, match=r"\"data.read.date_format='%d/%m/%Y %H:%M'\""):
        load_daily_counts(path, columns=columns, records=True)
    frame = load_daily_counts(path, columns=columns, records=True, read={"date_format": "%d/%m/%Y %H:%M"})
    assert frame["y"].tolist() == [2.0, 1.0] and frame["ds"].iloc[0] == pd.Timestamp("2023-01-13")
    with pytest.raises(ConfigError, match="data.train_end='notadate' is not a date"):
        load_daily_counts(
            path, columns=columns, records=True, read={"date_format": "%d/%m/%Y %H:%M"}, train_end="notadate"
        )


def test_missing_dates_are_reported_without_repair_advice(tmp_path, good):
    with pytest.raises(DataValidationError) as caught:
        _load(tmp_path, good.assign(date=good["date"].where(good.index != 6)))
    assert "missing (not dates) at line(s) 8" in str(caught.value)
    assert "fill_missing" not in str(caught.value)


def test_projection_history_is_screened_at_the_line_of_the_implausible_row():
    rows = pd.DataFrame(
        {
            "area": "north",
            "category": ["C1", "C2"] * 30,
            "ds": [day for day in pd.date_range("2023-01-01", periods=30).strftime("%Y-%m-%d") for _ in "ab"],
            "y": 50.0,
        }
    )
    rows.loc[21, "y"] = 1e9  # C2 on 2023-01-11, line 23
    with pytest.raises(
        DataValidationError, match=r"1e\+09 for series 'north' on 2023-01-11 \(line\(s\) 23\).*history.checks"
    ):
        daily_history(rows, source="h.csv")
    relaxed = daily_history(rows, source="h.csv", checks={"max_ratio_to_median": None})
    assert relaxed["y"].iloc[0] == 100.0
    day_first = rows.assign(ds=pd.to_datetime(rows["ds"]).dt.strftime("%d/%m/%Y"), y=50.0)
    with pytest.raises(DataValidationError, match="history.read.date_format=%d/%m/%Y"):
        daily_history(day_first, source="h.csv")
    assert len(daily_history(day_first, source="h.csv", read={"date_format": "%d/%m/%Y"})) == 30
