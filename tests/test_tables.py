"""The one table reader: options from config, strict dates, and a clear message for each bad file."""

from __future__ import annotations

import pandas as pd
import pytest

from forecasting.data import CountChecks, load_daily_counts
from mlops.errors import ConfigError, DataValidationError
from mlops.tables import ReadOptions, parse_dates, read_table
from tests.conftest import ROOT, compose_config

HEADER = "unique_id,ds,y\n"


def _file(tmp_path, text: str | bytes, name: str = "counts.csv"):
    path = tmp_path / name
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


def _days(start: str, n: int, fmt: str) -> list[str]:
    return list(pd.date_range(start, periods=n, freq="D").strftime(fmt))


def _counts_csv(tmp_path, fmt: str = "%Y-%m-%d", start: str = "2023-01-01", n: int = 40, sep: str = ","):
    rows = [sep.join(["A", day, str(100 + i % 7)]) for i, day in enumerate(_days(start, n, fmt))]
    return _file(tmp_path, sep.join(["unique_id", "ds", "y"]) + "\n" + "\n".join(rows) + "\n")


# --- reader options -------------------------------------------------------------------------------


def test_semicolon_decimal_comma_thousands_na_values_and_types(tmp_path):
    path = _file(
        tmp_path,
        "code;area;calls;share\n007;North;1.234;0,5\n010;South;-;1,25\n",
    )
    options = {"sep": ";", "decimal": ",", "thousands": ".", "na_values": ["-"], "dtypes": {"code": "str"}}
    frame = read_table(path, options, "data.read")
    assert frame["code"].tolist() == ["007", "010"]  # leading zeros kept by the type override
    assert frame["calls"].iloc[0] == 1234 and pd.isna(frame["calls"].iloc[1])
    assert frame["share"].tolist() == [0.5, 1.25]


def test_type_overrides_convert_or_name_the_line(tmp_path):
    path = _file(tmp_path, "area,calls,band\nN,3,a\nS,4,b\nE,x5,a\n")
    with pytest.raises(
        DataValidationError, match=r"column 'calls' are not whole numbers.*'x5' at line\(s\) 4"
    ):
        read_table(path, {"dtypes": {"calls": "int"}}, "data.read")
    other = _file(tmp_path, "a,b\n1,x\n2,y\n", "ok.csv")
    frame = read_table(other, {"dtypes": {"a": "float", "b": "category"}})
    assert frame["a"].dtype == float and isinstance(frame["b"].dtype, pd.CategoricalDtype)
    with pytest.raises(ConfigError, match=r"data.read.dtypes names column\(s\) \['nope'\]"):
        read_table(path, {"dtypes": {"nope": "str"}}, "data.read")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sep": ""}, r"data.read.sep='' must be a single character"),
        ({"decimal": ",,"}, r"data.read.decimal=',,' must be a single character"),
        ({"decimal": ","}, r"decimal=',' is also the separator"),
        ({"encoding": "klingon"}, r"data.read.encoding='klingon' is not an encoding"),
        ({"dtypes": {"y": "integer"}}, r"data.read.dtypes.y='integer' is not a type"),
        ({"date_format": "dd/mm/yyyy"}, r"not a strftime format; write e.g. %d/%m/%Y"),
        ({"seperator": ";"}, r"data.read: unknown key\(s\) \['seperator'\]"),
    ],
)
def test_impossible_options_are_config_errors_naming_the_key(options, message):
    with pytest.raises(ConfigError, match=message):
        ReadOptions.from_config(options, "data.read")


def test_tab_as_typed_on_a_command_line(tmp_path):
    path = _file(tmp_path, "a\tb\n1\t2\n", "tab.tsv")
    assert read_table(path, {"sep": "\\t"}).columns.tolist() == ["a", "b"]


def test_parquet_ignores_csv_options_but_applies_types(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"code": [7, 10], "y": [1.5, 2.0]}).to_parquet(path)
    frame = read_table(path, {"sep": ";", "decimal": ",", "encoding": "latin-1", "dtypes": {"code": "str"}})
    assert frame["code"].tolist() == ["7", "10"] and frame["y"].tolist() == [1.5, 2.0]


# --- files that cannot be read --------------------------------------------------------------------


def test_semicolon_file_read_with_commas_says_the_separator_looks_wrong(tmp_path):
    path = _counts_csv(tmp_path, sep=";")
    with pytest.raises(
        DataValidationError, match=r"only one column.*separator looks wrong.*data.read.sep=';'"
    ):
        load_daily_counts(path)
    assert len(load_daily_counts(path, read={"sep": ";"})) == 40


def test_semicolon_with_decimal_commas_still_names_the_separator(tmp_path):
    path = _file(tmp_path, "unique_id;ds;y\nA;2023-01-01;1,5\nA;2023-01-02;2,5\n")
    with pytest.raises(DataValidationError, match=r"data.read.sep=';'"):
        read_table(path, None, "data.read")
    frame = load_daily_counts(path, read={"sep": ";", "decimal": ","})
    assert frame["y"].tolist() == [1.5, 2.5]


def test_tab_separated_header_gets_a_tab_hint(tmp_path):
    path = _file(tmp_path, "unique_id\tds\ty\nA\t2023-01-01\t1\n")
    with pytest.raises(DataValidationError, match=r"tab .*calls.read.sep=tab"):
        read_table(path, None, "calls.read")


def test_directory_missing_empty_and_header_only_files(tmp_path):
    with pytest.raises(DataValidationError, match="is a directory, not a file"):
        read_table(tmp_path)
    with pytest.raises(DataValidationError, match="nope.csv: file not found"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataValidationError, match=r"empty \(no header and no rows\)"):
        read_table(_file(tmp_path, "", "empty.csv"))
    with pytest.raises(DataValidationError, match=r"no rows, only a header \(unique_id, ds, y\)"):
        read_table(_file(tmp_path, HEADER, "header.csv"))
    header_only = tmp_path / "header.parquet"
    pd.DataFrame({"a": pd.Series([], dtype=float)}).to_parquet(header_only)
    with pytest.raises(DataValidationError, match="no rows"):
        read_table(header_only)


def test_wrong_encoding_names_the_option(tmp_path):
    path = _file(tmp_path, "area,calls\nZ\xfcrich,3\n".encode("latin-1"))
    with pytest.raises(DataValidationError, match=r"cannot be decoded as utf-8.*data.read.encoding=latin-1"):
        read_table(path, None, "data.read")
    assert read_table(path, {"encoding": "latin-1"})["area"].tolist() == ["Zürich"]


# --- dates ----------------------------------------------------------------------------------------


def test_day_first_dates_are_refused_without_a_format_and_read_right_with_one(tmp_path):
    path = _counts_csv(tmp_path, fmt="%d/%m/%Y")
    with pytest.raises(DataValidationError) as caught:
        load_daily_counts(path)
    message = str(caught.value)
    assert "not ISO dates" in message and "('13/01/2023' at line 14 has no month 13)" in message
    assert "data.read.date_format=%d/%m/%Y" in message
    assert "fill_missing" not in message  # a parse problem is never answered with repairs
    frame = load_daily_counts(path, read={"date_format": "%d/%m/%Y"})
    assert frame["ds"].tolist() == list(pd.date_range("2023-01-01", periods=40, freq="D"))


def test_month_first_dates_get_the_month_first_format(tmp_path):
    with pytest.raises(
        DataValidationError, match=r"read month first .*has no month 13\): set data.read.date_format=%m/%d/%Y"
    ):
        load_daily_counts(_counts_csv(tmp_path, fmt="%m/%d/%Y"))


def test_ambiguous_dates_are_refused_unless_the_format_is_given(tmp_path):
    path = _counts_csv(tmp_path, fmt="%d/%m/%Y", n=12)  # 01/01 .. 12/01: every day reads both ways
    with pytest.raises(DataValidationError, match=r"ambiguous.*does not guess.*%d/%m/%Y.*%m/%d/%Y"):
        load_daily_counts(path)
    day_first = load_daily_counts(path, read={"date_format": "%d/%m/%Y"})
    assert day_first["ds"].iloc[2] == pd.Timestamp("2023-01-03")


def test_values_failing_the_given_format_are_refused_with_lines(tmp_path):
    path = _counts_csv(tmp_path, fmt="%Y-%m-%d")
    with pytest.raises(
        DataValidationError, match=r"do not match data.read.date_format=%d/%m/%Y.*line\(s\) 2, 3, 4"
    ):
        load_daily_counts(path, read={"date_format": "%d/%m/%Y"})


def test_mixed_day_and_month_first_dates_are_refused():
    values = pd.Series(["13/04/2023", "04/13/2023"])
    with pytest.raises(
        DataValidationError, match=r"mixes day-first \('13/04/2023'.*month-first \('04/13/2023'"
    ):
        parse_dates(values, setting="data.read")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2023/04/05", r"set data.read.date_format=%Y/%m/%d"),
        ("2023-02-30", r"not dates \(no such day\)"),
        ("yesterday", r"not dates in ISO form"),
        ("05.04.2023 10:15", r"ambiguous.*\"data.read.date_format='%d\.%m\.%Y %H:%M'\" \(day first\)"),
    ],
)
def test_other_date_spellings_are_explained(value, message):
    with pytest.raises(DataValidationError, match=message):
        parse_dates(pd.Series(["2023-01-01", value]), setting="data.read")


def test_iso_dates_and_times_parse_and_missing_values_stay_missing():
    parsed = parse_dates(pd.Series(["2023-01-01", "2023-01-02 10:15", "2023-01-03T08:00:05", None]))
    assert parsed.tolist()[:3] == [
        pd.Timestamp("2023-01-01"),
        pd.Timestamp("2023-01-02 10:15"),
        pd.Timestamp("2023-01-03 08:00:05"),
    ]
    assert pd.isna(parsed.iloc[3])


# --- plausibility of daily counts -----------------------------------------------------------------


def _series(values: dict[str, list[float]]) -> pd.DataFrame:
    frames = [
        pd.DataFrame({"unique_id": uid, "ds": _days("2023-01-01", len(ys), "%Y-%m-%d"), "y": ys})
        for uid, ys in values.items()
    ]
    return pd.concat(frames, ignore_index=True)


def test_a_count_far_above_its_series_median_is_refused_with_series_day_and_line(tmp_path):
    frame = _series({"A": [300.0] * 30, "B": [200.0] * 30})
    frame.loc[35, "y"] = 1e12  # B on 2023-01-06, line 37
    path = tmp_path / "spike.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataValidationError) as caught:
        load_daily_counts(path)
    message = str(caught.value)
    assert "implausible count 1e+12 for series 'B' on 2023-01-06 (line(s) 37)" in message
    assert "data.checks.max_ratio_to_median=null" in message
    relaxed = load_daily_counts(path, checks={"max_ratio_to_median": None})
    assert relaxed["y"].max() == 1e12


def test_sparse_series_and_real_surges_pass_the_screen(tmp_path):
    sparse = [0.0, 1.0, 0.0, 2.0, 1.0] * 6
    sparse[10] = 30.0  # a busy day for a series with median 1: below 20 x the floor of 5
    surge = [200.0] * 30
    surge[5] = 650.0  # a major incident: 3.25 x the median
    rates = [0.37, 0.41, 0.39] * 10  # non-integer counts (rates) are fine
    path = tmp_path / "ok.csv"
    _series({"sparse": sparse, "surge": surge, "rate": rates}).to_csv(path, index=False)
    assert len(load_daily_counts(path)) == 90


def test_all_zero_series_is_refused_with_the_exclusion_to_set(tmp_path):
    path = tmp_path / "zeros.csv"
    _series({"A": [5.0] * 20, "Z": [0.0] * 20}).to_csv(path, index=False)
    with pytest.raises(
        DataValidationError, match=r"series 'Z' is all zeros \(20 days\).*'data.exclude_series=\[Z\]'"
    ):
        load_daily_counts(path)
    assert set(load_daily_counts(path, exclude_series=["Z"])["unique_id"]) == {"A"}


def test_infinite_counts_are_refused(tmp_path):
    frame = _series({"A": [5.0] * 20}).astype({"y": object})
    frame.loc[3, "y"] = "inf"
    path = tmp_path / "inf.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"infinite count.*line\(s\) 5"):
        load_daily_counts(path)


@pytest.mark.parametrize(
    ("checks", "message"),
    [
        ({"max_ratio_to_median": 0.5}, r"data.checks.max_ratio_to_median=0.5 must be a number above 1"),
        ({"max_ratio_to_median": "lots"}, r"must be numbers"),
        ({"median_floor": -1}, r"data.checks.median_floor=-1 must be a number >= 0"),
        ({"max_ratio": 5}, r"unknown key\(s\) \['max_ratio'\]"),
    ],
)
def test_screen_settings_are_checked(checks, message):
    with pytest.raises(ConfigError, match=message):
        CountChecks.from_config(checks, "data.checks")


# --- config ---------------------------------------------------------------------------------------


def test_every_data_group_composes_the_read_block_and_overrides_work():
    for group in ("csv", "swast", "synthetic"):
        cfg = compose_config("forecast", [f"data={group}", "data.path=x.csv"])
        assert cfg.data.read.sep == "," and cfg.data.read.date_format is None
        assert cfg.data.checks.max_ratio_to_median == 20
    cfg = compose_config(
        "forecast", ["data=csv", "data.path=x.csv", "data.read.sep=';'", "data.read.decimal=\\,"]
    )
    assert ReadOptions.from_config(cfg.data.read, "data.read").sep == ";"
    assert cfg.data.read.decimal == ","
    project = compose_config(
        "project", ["history.read.date_format=%d/%m/%Y", "population.read.encoding=cp1252"]
    )
    assert project.history.read.date_format == "%d/%m/%Y" and project.population.read.encoding == "cp1252"
    assert project.history.checks.median_floor == 5
    calls = compose_config("disposition", ["calls.read.sep=tab"]).calls
    assert ReadOptions.from_config(calls.read).sep == "\t" and calls.checks.max_age == 120


def test_committed_real_and_synthetic_data_pass_the_reader_and_the_screen():
    for group in ("swast", "synthetic"):
        data = compose_config("forecast", [f"data={group}"]).data
        frame = load_daily_counts(
            ROOT / data.path,
            columns=data.columns,
            keep=list(data.keep),
            exclude_series=list(data.exclude_series),
            read=data.read,
            checks=data.checks,
        )
        assert len(frame) > 10_000


def test_daily_counts_dated_before_1900_or_in_the_future_are_refused(tmp_path):
    with pytest.raises(DataValidationError, match=r"dated in the future, e.g. '2107-01-01' at line\(s\) 2"):
        load_daily_counts(_counts_csv(tmp_path, start="2107-01-01"))
    frame = _series({"A": [5.0] * 20})
    frame.loc[7, "ds"] = "1819-01-08"
    path = tmp_path / "old.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(
        DataValidationError, match=r"dated before 1900-01-01, e.g. '1819-01-08' at line\(s\) 9"
    ):
        load_daily_counts(path)


def test_dates_stored_as_numbers_and_thousands_marks_get_their_option(tmp_path):
    with pytest.raises(DataValidationError, match=r"written as YYYYMMDD, set data.read.date_format=%Y%m%d"):
        parse_dates(pd.Series([20230101, 20230102]), setting="data.read")
    assert parse_dates(pd.Series([20230101]), "%Y%m%d").iloc[0] == pd.Timestamp("2023-01-01")
    frame = _series({"A": [5.0] * 20}).astype({"y": object})
    frame.loc[3, "y"] = "1,234"
    path = tmp_path / "grouped.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(
        DataValidationError, match=r"'1,234' at line\(s\) 5.*thousands mark, set \"data.read.thousands=','\""
    ):
        load_daily_counts(path)


def test_workbooks_archives_and_corrupt_compression_are_named(tmp_path):
    with pytest.raises(
        DataValidationError, match=r"an Excel workbook \(.xlsx\).*not a CSV file; save it as CSV"
    ):
        read_table(_file(tmp_path, b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)), "counts.xlsx"))
    with pytest.raises(DataValidationError, match=r"gzip-compressed file, not a CSV file; name it .csv.gz"):
        read_table(_file(tmp_path, b"\x1f\x8b\x08\x00" + bytes(range(256)), "counts.csv"))
    with pytest.raises(DataValidationError, match=r"cannot be decompressed .*looks corrupt"):
        read_table(_file(tmp_path, b"\x1f\x8b\x08\x00" + bytes(range(256)), "counts.csv.gz"))
    packed = tmp_path / "ok.csv.gz"
    pd.DataFrame({"a": [1, 2]}).to_csv(packed, index=False)
    assert read_table(packed)["a"].tolist() == [1, 2]


def test_excluding_a_series_the_file_lacks_is_refused(tmp_path):
    with pytest.raises(
        DataValidationError, match=r"data.exclude_series names series \['nope/C9'\].*has \['A'\]"
    ):
        load_daily_counts(_counts_csv(tmp_path), exclude_series=["nope/C9"])


def test_rows_without_a_series_name_are_refused_with_their_line(tmp_path):
    frame = _series({"A": [5.0] * 20, "B": [6.0] * 20})
    frame.loc[25, "unique_id"] = None
    path = tmp_path / "unnamed.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"1 row\(s\) have no series name .*line\(s\) 27"):
        load_daily_counts(path)


def test_blank_lines_keep_line_numbers_and_zones_and_near_miss_names_are_explained(tmp_path):
    path = _file(tmp_path, "unique_id,ds,y\nA,2023-01-01,1\n\nA,2023-01-02,x\n\n")
    with pytest.raises(DataValidationError, match=r"'x' at line\(s\) 4"):
        load_daily_counts(path)
    local = parse_dates(pd.Series(["2023-01-01T23:30:00+01:00", "2023-01-02T00:10:00Z"]))
    assert local.tolist() == [pd.Timestamp("2023-01-01 23:30"), pd.Timestamp("2023-01-02 00:10")]
    spaced = _file(tmp_path, "unique_id, ds ,y\nA,2023-01-01,1\n", "spaced.csv")
    with pytest.raises(DataValidationError, match=r"The file has ' ds ' for 'ds': names must match exactly"):
        load_daily_counts(spaced)
