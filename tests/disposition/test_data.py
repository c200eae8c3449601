"""A user's call records: every mistake is one clear error; the temporal split is in time order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from disposition.data import CallSpec, check_windows, prepare_calls, temporal_split
from mlops.errors import ConfigError, DataValidationError


def _spec(**changes) -> CallSpec:
    config = {
        "name": "own",
        "date_column": "when",
        "target": {"column": "safe", "expression": None},
        "features": {"categorical": ["group"], "numeric": ["age"], "time": ["hour"]},
        "exclude": ["outcome"],
        "never_remote": {"group": ["arrest"]},
    }
    config.update(changes)
    return CallSpec.from_config(config)


@pytest.fixture
def records() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 400
    return pd.DataFrame(
        {
            "when": pd.date_range("2022-01-01", periods=n, freq="6h").astype(str),
            "group": rng.choice(["falls", "arrest", "rash"], n),
            "age": rng.integers(0, 100, n),
            "safe": rng.integers(0, 2, n),
            "outcome": rng.integers(0, 2, n),
            "call_ref": [f"R{i}" for i in range(n)],
        }
    )


def test_valid_records_become_a_sorted_modelling_table(records):
    prepared = prepare_calls(records.sample(frac=1, random_state=0), _spec())
    assert prepared.dates.is_monotonic_increasing
    assert set(prepared.frame.columns) >= {"group", "age", "when", "_target"}
    assert prepared.features.names == ["group", "age", "hour"]


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (
            {"features": {"categorical": ["grp"], "numeric": ["age"]}},
            DataValidationError,
            r"feature column\(s\) \['grp'\]",
        ),
        ({"target": {"column": "saved"}}, DataValidationError, "target column 'saved' not found"),
        ({"date_column": "date"}, DataValidationError, "date column 'date' not found"),
        ({"features": {"categorical": ["group"], "numeric": ["safe"]}}, ConfigError, "'safe' is the target"),
        ({"features": {"categorical": ["group"], "numeric": ["outcome"]}}, ConfigError, "calls.exclude"),
        ({"target": {"column": "safe", "expression": "safe == 1"}}, ConfigError, "exactly one"),
        ({"never_remote": {"category": ["C1"]}}, ConfigError, "hard rule column 'category'"),
        ({"target": {"expression": "sfae == 1"}}, ConfigError, "cannot be evaluated"),
    ],
)
def test_config_mistakes_name_the_fix(records, change, error, message):
    with pytest.raises(error, match=message):
        prepare_calls(records, _spec(**change))


def test_data_mistakes_name_the_fix(records):
    with pytest.raises(DataValidationError, match="one class only"):
        prepare_calls(records.assign(safe=1), _spec())
    with pytest.raises(DataValidationError, match="constant"):
        prepare_calls(records.assign(age=7), _spec())
    with pytest.raises(DataValidationError, match="identical to the target"):
        prepare_calls(records.assign(copy=1 - records["safe"]), _spec(features={"numeric": ["age", "copy"]}))
    with pytest.raises(DataValidationError, match="not 0/1"):
        prepare_calls(records.assign(safe=records["safe"].where(records.index > 5)), _spec())
    with pytest.raises(DataValidationError, match="must be 0/1"):
        prepare_calls(records.assign(safe=records["safe"] * 2), _spec())
    with pytest.raises(DataValidationError, match="non-numbers"):
        prepare_calls(records.assign(age=records["age"].astype(str).where(records.index > 0, "old")), _spec())
    with pytest.raises(DataValidationError, match="not dates"):
        prepare_calls(records.assign(when=records["when"].where(records.index > 0, "soon")), _spec())


def test_target_expression_and_inferred_features(records):
    spec = _spec(
        target={"expression": "outcome == 0 and safe == 1"},
        features={"categorical": None, "numeric": None, "time": []},
        exclude=["call_ref"],
    )
    prepared = prepare_calls(records, spec)
    # The columns the target is computed from can never be features.
    assert prepared.features.categorical == ["group"] and prepared.features.numeric == ["age"]
    assert prepared.y.tolist() == ((records["outcome"] == 0) & (records["safe"] == 1)).astype(int).tolist()
    with pytest.raises(ConfigError, match="looks like an identifier"):
        prepare_calls(
            records, _spec(target={"column": "safe"}, features={"categorical": None, "numeric": None})
        )


def test_filter_keeps_calls_with_known_outcome(records):
    records = records.assign(safe=records["safe"].where(records.index % 2 == 0))
    prepared = prepare_calls(records, _spec(filter="safe == safe"))
    assert len(prepared.frame) == 200
    with pytest.raises(DataValidationError, match="leaves no calls"):
        prepare_calls(records, _spec(filter="age > 1000"))


def test_temporal_split_trains_on_the_past():
    dates = pd.Series(pd.date_range("2020-01-01", periods=1000, freq="D"))
    train, cal, test, bounds = temporal_split(dates, 0.2, 0.2)
    assert train.sum() == pytest.approx(600, abs=2) and cal.sum() == pytest.approx(200, abs=2)
    assert dates[train].max() < dates[cal].min() and dates[cal].max() < dates[test].min()
    assert bounds["test_start"] == "2022-03-10"  # day 800 of 1000, at the start of its day
    _, _, test, _ = temporal_split(dates, 0.2, 0.2, "2021-01-01", "2022-01-01")
    assert dates[test].min() == pd.Timestamp("2022-01-01")
    with pytest.raises(ConfigError, match="before test start"):
        temporal_split(dates, 0.2, 0.2, "2022-06-01", "2022-01-01")
    with pytest.raises(DataValidationError, match="calibration window"):
        check_windows(np.zeros(1000, dtype=int), {"calibration": cal})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda r: r.assign(age=r["age"].where(r.index != 7, -40)),
            r"impossible age in column 'age', e.g. -40 at line\(s\) 9",
        ),
        (
            lambda r: r.assign(age=r["age"].where(r.index != 3, 130)),
            r"130 at line\(s\) 5; ages must be 0-120",
        ),
        (
            lambda r: r.assign(age=r["age"].astype(float).where(r.index != 2, float("inf"))),
            r"impossible age.*inf at line\(s\) 4",
        ),
        (
            lambda r: r.assign(when=r["when"].where(r.index != 5, "1800-01-01")),
            r"dated before 1900-01-01.*line\(s\) 7",
        ),
        (
            lambda r: r.assign(when=r["when"].where(r.index != 6, "2999-01-01")),
            r"dated in the future.*line\(s\) 8",
        ),
        (lambda r: r.assign(when=r["when"].where(r.index != 1)), r"missing \(not dates\) at line\(s\) 3"),
        (
            lambda r: r.assign(when=pd.to_datetime(r["when"]).dt.strftime("%d/%m/%Y %H:%M")),
            r"not ISO dates.*\"calls.read.date_format='%d/%m/%Y %H:%M'\"",
        ),
    ],
    ids=["negative-age", "age-130", "infinite-age", "year-1800", "future", "missing-date", "day-first"],
)
def test_implausible_calls_are_refused_with_column_value_and_line(records, change, message):
    with pytest.raises(DataValidationError, match=message):
        prepare_calls(change(records), _spec())


def test_infinite_numeric_feature_and_configured_checks(records):
    with_score = records.assign(score=1.0 + records.index % 5)
    with_score.loc[9, "score"] = float("-inf")
    with pytest.raises(
        DataValidationError, match=r"'score' holds infinite values, e.g. -inf at line\(s\) 11"
    ):
        prepare_calls(with_score, _spec(features={"categorical": ["group"], "numeric": ["age", "score"]}))
    old = records.assign(age=records["age"].where(records.index != 4, 115))
    with pytest.raises(DataValidationError, match=r"ages must be 0-110 \(calls.checks.max_age\)"):
        prepare_calls(old, _spec(checks={"max_age": 110}))
    early = records.assign(when=records["when"].where(records.index != 0, "1950-06-01"))
    prepare_calls(early, _spec(checks={"earliest_date": "1940-01-01"}))
    with pytest.raises(ConfigError, match=r"calls.checks: unknown key\(s\) \['max_agee'\]"):
        _spec(checks={"max_agee": 3})
    with pytest.raises(ConfigError, match="calls.checks.earliest_date='long ago' is not a date"):
        _spec(checks={"earliest_date": "long ago"})


def test_day_first_call_dates_are_read_with_the_configured_format(records):
    day_first = records.assign(when=pd.to_datetime(records["when"]).dt.strftime("%d/%m/%Y %H:%M"))
    prepared = prepare_calls(day_first, _spec(read={"date_format": "%d/%m/%Y %H:%M"}))
    assert prepared.dates.min() == pd.Timestamp("2022-01-01") and prepared.dates.is_monotonic_increasing


def test_header_only_call_file_is_refused(tmp_path):
    from mlops.tables import read_table

    path = tmp_path / "calls.csv"
    path.write_text("when,group,age,safe\n")
    with pytest.raises(DataValidationError, match=r"calls.csv: no rows, only a header"):
        read_table(path, None, "calls.read")


def test_a_hard_rule_that_matches_no_call_is_refused(records):
    renamed = records.assign(
        group=records["group"].map({"falls": "Falls", "arrest": "Cardiac arrest", "rash": "Rash"})
    )
    with pytest.raises(
        DataValidationError, match=r"never_remote.group=\['arrest'\] matches no call.*'Cardiac arrest'"
    ):
        prepare_calls(renamed, _spec())
    upper = prepare_calls(records.assign(group=records["group"].str.upper()), _spec())
    assert len(upper.frame) == len(records)
    kept = prepare_calls(renamed, _spec(checks={"allow_unmatched_rules": True}))
    assert any("matches no call" in note for note in kept.notes)
    filtered = prepare_calls(records, _spec(filter="group != 'arrest'"))  # removed on purpose: fine
    assert "ARREST" not in set(filtered.frame["group"]) and len(filtered.frame) < len(records)


def test_target_and_feature_errors_name_the_line(records):
    with pytest.raises(DataValidationError, match=r"must be 0/1 .*found 2 at line\(s\) 5"):
        prepare_calls(records.assign(safe=records["safe"].where(records.index != 3, 2)), _spec())
    with pytest.raises(DataValidationError, match=r"'age' holds non-numbers, e.g. 'forty' at line\(s\) 3"):
        prepare_calls(
            records.assign(age=records["age"].astype(str).where(records.index != 1, "forty")), _spec()
        )


def test_an_unknown_subgroup_column_is_refused(records):
    with pytest.raises(ConfigError, match=r"calls.subgroups.sex='gender' is not a column"):
        prepare_calls(records, _spec(subgroups={"age": "age", "sex": "gender"}))


def test_calls_exported_twice_are_refused(records):
    twice = pd.concat([records, records.iloc[100:150]], ignore_index=True)
    with pytest.raises(
        DataValidationError, match=r"50 call\(s\) \(11.1%\) are duplicate rows.*line 402 repeats line 102"
    ):
        prepare_calls(twice, _spec())
    assert len(prepare_calls(twice, _spec(checks={"max_duplicate_share": None})).frame) == 450
