"""Bad call-record files through the remote-closure job (``disposition.pipeline.train``).

Each file is 25,000 synthetic calls (2018-2023) with one thing wrong, read through the synthetic
calls config (its feature lists and hard rules) or, where the case says ``calls=csv``, through the
config for a service's own records; the store already has a champion.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.corpus.harness import (
    Case,
    bytes_file,
    check,
    clean_calls,
    csv_file,
    csv_line,
    directory,
    edited,
    garbage,
    header_only,
    parquet_file,
    run_case,
    set_value,
    text_file,
)

PATH = "calls.path={file}"
CSV = "calls=csv"
CALLS = clean_calls
ROW = 5000  # 2019-03-31 20:02:07, age 71, C2, stroke_symptoms


def _csv_text(edit=None, **to_csv) -> str:
    frame = CALLS() if edit is None else edited(CALLS, edit)()
    return frame.to_csv(index=False, **to_csv)


def _times(fmt: str):
    def change(frame: pd.DataFrame) -> None:
        frame["call_time"] = frame["call_time"].dt.strftime(fmt)

    return change


def _rows(rows, column: str, value):
    def change(frame: pd.DataFrame) -> None:
        if isinstance(value, str) and frame[column].dtype != object:
            frame[column] = frame[column].astype(object)
        frame.loc[list(rows), column] = value

    return change


CASES = [
    # --- named in issue 10 ---------------------------------------------------------------------
    Case(
        "calls-header-only-csv-config",
        "disposition",
        [CSV, PATH],
        [r"no (calls|rows|data)|empty|header|only"],
        csv_file(header_only(CALLS)),
    ),
    Case(
        "calls-header-only",
        "disposition",
        [PATH],
        [r"no (calls|rows|data)|empty|header|only"],
        csv_file(header_only(CALLS)),
    ),
    Case(
        "calls-semicolon-separated",
        "disposition",
        [CSV, PATH],
        [r"separat|\bsep\b|;"],
        text_file(_csv_text(sep=";")),
        forbid=(r"calls\.columns",),
    ),
    Case(
        "calls-directory-as-path",
        "disposition",
        [PATH],
        [r"director|folder"],
        directory("calls.parquet"),
        forbid=(r"not found",),
    ),
    # --- the class beyond them ------------------------------------------------------------------
    Case("calls-empty-file", "disposition", [PATH], [r"empty|no (rows|data|columns)"], text_file("")),
    Case(
        "calls-empty-parquet",
        "disposition",
        [PATH],
        [r"no (calls|rows|data)|empty|only"],
        parquet_file(header_only(CALLS)),
    ),
    Case(
        "calls-negative-age",
        "disposition",
        [PATH],
        [r"\bage\b", r"-40|negative|impossible|below", csv_line(ROW)],
        csv_file(set_value(CALLS, ROW, "age", -40)),
    ),
    Case(
        "calls-age-200",
        "disposition",
        [PATH],
        [r"\bage\b", r"200", csv_line(ROW)],
        csv_file(set_value(CALLS, ROW, "age", 200)),
    ),
    Case(
        "calls-age-infinite",
        "disposition",
        [PATH],
        [r"\bage\b", r"inf|finite|impossible"],
        parquet_file(set_value(CALLS, ROW, "age", float("inf"))),
    ),
    Case(
        "calls-age-text",
        "disposition",
        [PATH],
        [r"\bage\b", r"forty|number|numeric", csv_line(ROW)],
        csv_file(set_value(CALLS, ROW, "age", "forty")),
    ),
    Case(
        "calls-future-dates",
        "disposition",
        [PATH],
        [r"call_time|date", r"future|2099"],
        csv_file(edited(CALLS, _rows(range(24990, 25000), "call_time", pd.Timestamp("2099-06-01 10:00")))),
    ),
    Case(
        "calls-pre-1900-dates",
        "disposition",
        [PATH],
        [r"call_time|date", r"1900|1850|before"],
        csv_file(edited(CALLS, _rows(range(0, 5), "call_time", pd.Timestamp("1850-06-01 10:00")))),
    ),
    Case(
        "calls-unparseable-time",
        "disposition",
        [PATH],
        [r"call_time|date", r"yesterday", csv_line(ROW)],
        csv_file(set_value(CALLS, ROW, "call_time", "yesterday")),
    ),
    Case(
        "calls-ddmmyyyy-times",
        "disposition",
        [PATH],
        [r"call_time|date", r"date_format|%d/%m|dd/mm|day.first|ambiguous|ISO"],
        csv_file(edited(CALLS, _times("%d/%m/%Y %H:%M"))),
    ),
    Case(
        "calls-target-value-2",
        "disposition",
        [PATH],
        [r"safe_remote", r"\b0\b.*\b1\b|0/1|binary"],
        csv_file(set_value(CALLS, ROW, "safe_remote", 2)),
    ),
    Case(
        "calls-target-missing-value",
        "disposition",
        [PATH],
        [r"safe_remote", r"missing|empty|nan|no value"],
        csv_file(set_value(CALLS, ROW, "safe_remote", float("nan"))),
    ),
    Case(
        "calls-target-text",
        "disposition",
        [PATH],
        [r"safe_remote", r"yes|0/1|\b0\b.*\b1\b|number|numeric"],
        csv_file(set_value(CALLS, ROW, "safe_remote", "yes")),
    ),
    Case(
        "calls-one-class-only",
        "disposition",
        [PATH],
        [r"safe_remote|target", r"one class|only|all"],
        parquet_file(edited(CALLS, lambda f: f.assign(safe_remote=1))),
    ),
    Case(
        "calls-too-few",
        "disposition",
        [PATH],
        [r"too few|at least|only|calls"],
        parquet_file(edited(CALLS, lambda f: f.iloc[::700].reset_index(drop=True))),
    ),
    Case(
        "calls-all-on-one-day",
        "disposition",
        [PATH],
        [r"call_time|split|date|day"],
        parquet_file(edited(CALLS, lambda f: f.assign(call_time=pd.Timestamp("2021-06-01 12:00")))),
    ),
    Case(
        "calls-missing-feature-column",
        "disposition",
        [PATH],
        [r"symptom_group", r"column|missing|not in"],
        parquet_file(edited(CALLS, lambda f: f.drop(columns="symptom_group"))),
    ),
    Case(
        "calls-missing-date-column",
        "disposition",
        [PATH],
        [r"call_time", r"column|missing|not in"],
        parquet_file(edited(CALLS, lambda f: f.drop(columns="call_time"))),
    ),
    Case(
        "calls-missing-target-column",
        "disposition",
        [PATH],
        [r"safe_remote", r"column|missing|not in"],
        parquet_file(edited(CALLS, lambda f: f.drop(columns="safe_remote"))),
    ),
    Case(
        "calls-missing-age-column",
        "disposition",
        [PATH],
        [r"\bage\b", r"column|missing|not in"],
        parquet_file(edited(CALLS, lambda f: f.drop(columns="age"))),
    ),
    Case(
        "calls-binary-garbage",
        "disposition",
        [PATH],
        [r"not a (readable|valid)|encoding|binary|cannot (be )?read|utf|decode|csv"],
        bytes_file(garbage(8192, seed=4)),
    ),
    Case(
        "calls-garbage-parquet",
        "disposition",
        [PATH],
        [r"parquet"],
        bytes_file(garbage(8192, seed=5), name="calls.parquet"),
    ),
    Case(
        "calls-latin1-encoding",
        "disposition",
        [CSV, PATH],
        [r"encoding|utf-?8|latin|decode"],
        text_file(
            _csv_text(lambda f: f.assign(symptom_group=f["symptom_group"].str.replace("fall", "chute_é"))),
            encoding="latin-1",
        ),
    ),
    Case(
        "calls-bom-and-missing-target",
        "disposition",
        [PATH],
        [r"safe_remote", r"column|missing|not in"],
        text_file(_csv_text(lambda f: f.drop(columns="safe_remote")), encoding="utf-8-sig"),
        forbid=("\ufeff",),
    ),
    Case(
        "calls-parquet-age-as-text",
        "disposition",
        [PATH],
        [r"\bage\b", r"number|numeric|text|type|string"],
        parquet_file(edited(CALLS, lambda f: f.assign(age=f["age"].astype(str) + " years"))),
    ),
    Case(
        "calls-parquet-time-as-integers",
        "disposition",
        [PATH],
        [r"call_time", r"date|time"],
        parquet_file(edited(CALLS, lambda f: f.assign(call_time=np.arange(len(f))))),
    ),
    Case(
        "calls-unknown-categories-defeat-hard-rule",  # 'Cat 1' never matches never_remote's C1
        "disposition",
        [PATH],
        [r"never_remote|C1", r"category"],
        parquet_file(edited(CALLS, lambda f: f.assign(category=f["category"].str.replace("C", "Cat ")))),
    ),
    Case(
        "calls-numeric-feature-text",
        "disposition",
        [PATH],
        [r"contacts_7d", r"many|number|numeric"],
        csv_file(set_value(CALLS, ROW, "contacts_7d", "many")),
    ),
    Case(
        "calls-duplicate-rows",  # the same 2,000 calls twice: counted twice in training and calibration
        "disposition",
        [PATH],
        [r"duplicate|twice|more than once|repeated", r"call"],
        parquet_file(edited(CALLS, lambda f: pd.concat([f, f.iloc[10000:12000]]).sort_values("call_time"))),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_bad_call_records_are_refused_clearly(case, tmp_path, seeded):
    check(run_case(case, tmp_path, seeded[case.app]))
