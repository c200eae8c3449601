"""Bad daily-count files through the forecasting job (``forecasting.pipeline.train``).

Each file is four series of the synthetic world (2018-2023, 8,764 rows) with one thing wrong, run
against a store whose champion is a LightGBM model, so a bad file that got as far as the
registry would show as a new version or a moved alias.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.corpus.harness import (
    Case,
    bytes_file,
    check,
    clean_counts,
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

PATH = "data.path={file}"
NO_REPAIR_ADVICE = (r"fill_missing",)  # a parse problem is never answered with advice to fill days
NO_REMAP_ADVICE = (r"data\.columns",)  # a separator problem is not a column-mapping problem


def _dates(frame: pd.DataFrame, fmt: str) -> pd.DataFrame:
    frame["ds"] = pd.to_datetime(frame["ds"]).dt.strftime(fmt)
    return frame


def _series(name: str, edit) -> callable:
    def change(frame: pd.DataFrame) -> None:
        mask = frame["unique_id"] == name
        frame.loc[mask, "y"] = edit(frame.loc[mask, "y"])

    return change


def _shift_years(years: int):
    def change(frame: pd.DataFrame) -> None:
        frame["ds"] = (pd.to_datetime(frame["ds"]) + pd.DateOffset(years=years)).dt.strftime("%Y-%m-%d")

    return change


def _first_days(n: int):
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.groupby("unique_id").head(n).reset_index(drop=True)

    return change


def _drop_days(name: str, start: str, n: int):
    days = set(pd.date_range(start, periods=n).strftime("%Y-%m-%d"))
    return lambda f: f[~((f["unique_id"] == name) & f["ds"].isin(days))].reset_index(drop=True)


def _with_regressor(values) -> callable:
    def change(frame: pd.DataFrame) -> None:
        frame["x_temperature"] = np.round(np.linspace(2, 25, len(frame)), 1).astype(object)
        for row, value in values.items():
            frame.loc[row, "x_temperature"] = value

    return change


def _text(frame_edit=None, **to_csv) -> str:
    frame = clean_counts().copy() if frame_edit is None else edited(clean_counts, frame_edit)()
    return frame.to_csv(index=False, **to_csv)


COUNTS = clean_counts
HUGE_ROW, HUGE_ID, HUGE_DAY = 1000, "city/C2", "2020-09-27"  # row 1000 of the clean file

CASES = [
    # --- named in issue 10 ---------------------------------------------------------------------
    Case(
        "counts-1e12-glm",
        "forecast",
        [PATH, "model=glm"],
        [HUGE_ID, HUGE_DAY, csv_line(HUGE_ROW)],
        csv_file(set_value(COUNTS, HUGE_ROW, "y", 1e12)),
    ),
    Case(
        "counts-1e12-default-model",
        "forecast",
        [PATH],
        [HUGE_ID, HUGE_DAY, csv_line(HUGE_ROW)],
        csv_file(set_value(COUNTS, HUGE_ROW, "y", 1e12)),
    ),
    Case(
        "counts-1e12-parquet-glm",
        "forecast",
        [PATH, "model=glm"],
        [HUGE_ID, HUGE_DAY],
        parquet_file(set_value(COUNTS, HUGE_ROW, "y", 1e12)),
    ),
    Case(
        "counts-1e7-among-hundreds",
        "forecast",
        [PATH],
        [HUGE_ID, HUGE_DAY],
        csv_file(set_value(COUNTS, HUGE_ROW, "y", 10_000_000)),
    ),
    Case(
        "counts-ddmmyyyy-whole-years",
        "forecast",
        [PATH],
        [r"\bds\b|date", r"date_format|%d/%m|dd/mm|day.first|ambiguous"],
        csv_file(edited(COUNTS, lambda f: _dates(f, "%d/%m/%Y"))),
        forbid=NO_REPAIR_ADVICE,
    ),
    Case(
        "counts-ddmmyyyy-part-year",
        "forecast",
        [PATH],
        [r"\bds\b|date", r"date_format|%d/%m|dd/mm|day.first|ambiguous"],
        csv_file(edited(COUNTS, lambda f: _dates(_first_days(1200)(f), "%d/%m/%Y"))),
        forbid=NO_REPAIR_ADVICE,
    ),
    Case(
        "counts-ddmmyyyy-fill-missing-0",  # the advice, followed: still refused, never repaired
        "forecast",
        [PATH, "data.fill_missing=0"],
        [r"\bds\b|date", r"date_format|%d/%m|dd/mm|day.first|ambiguous"],
        csv_file(edited(COUNTS, lambda f: _dates(_first_days(1200)(f), "%d/%m/%Y"))),
        forbid=NO_REPAIR_ADVICE,
    ),
    Case(
        "counts-mmddyyyy-us-dates",
        "forecast",
        [PATH],
        [r"\bds\b|date", r"date_format|ambiguous|%m/%d|mm/dd|month"],
        csv_file(edited(COUNTS, lambda f: _dates(f, "%m/%d/%Y"))),
        forbid=NO_REPAIR_ADVICE,
    ),
    Case(
        "counts-mixed-date-formats",
        "forecast",
        [PATH],
        [r"\bds\b|date", csv_line(3000)],
        csv_file(set_value(COUNTS, 3000, "ds", "20/03/2020")),
        forbid=NO_REPAIR_ADVICE,
    ),
    Case(
        "counts-unparseable-date",
        "forecast",
        [PATH],
        [r"\bds\b|date", r"someday", csv_line(3000)],
        csv_file(set_value(COUNTS, 3000, "ds", "someday")),
        forbid=NO_REPAIR_ADVICE,
    ),
    Case(
        "counts-all-zero-file",
        "forecast",
        [PATH],
        [r"zero", r"city/C2|coast/C3|moor/C1|moor/C4|series|\by\b"],
        csv_file(edited(COUNTS, lambda f: f.assign(y=0))),
    ),
    Case(
        "counts-one-series-all-zero",
        "forecast",
        [PATH],
        [r"zero", r"moor/C1"],
        csv_file(edited(COUNTS, _series("moor/C1", lambda y: 0))),
    ),
    Case(
        "counts-20-days-seasonal-naive",
        "forecast",
        [PATH, "model=seasonal_naive"],
        [r"\b20\b|short|history|days", r"at least|need|backtest|longer|more"],
        csv_file(edited(COUNTS, _first_days(20))),
        forbid=(r"lightgbm",),
    ),
    Case(
        "counts-5-days",
        "forecast",
        [PATH],
        [r"short|history|days", r"at least|need|backtest|longer|more"],
        csv_file(edited(COUNTS, _first_days(5))),
    ),
    Case(
        "counts-semicolon-separated",
        "forecast",
        [PATH],
        [r"separat|\bsep\b|;"],
        csv_file(COUNTS, sep=";"),
        forbid=NO_REMAP_ADVICE,
    ),
    Case(
        "counts-directory-as-path",
        "forecast",
        [PATH],
        [r"director|folder"],
        directory(),
        forbid=(r"not found",),
    ),
    # --- the class beyond them ------------------------------------------------------------------
    Case(
        "counts-tab-separated",
        "forecast",
        [PATH],
        [r"separat|\bsep\b|tab|\\t"],
        csv_file(COUNTS, sep="\t"),
        forbid=NO_REMAP_ADVICE,
    ),
    Case(
        "counts-semicolon-decimal-comma",
        "forecast",
        [PATH],
        [r"separat|\bsep\b|;"],
        text_file(_text(lambda f: f.assign(y=f["y"].astype(float)), sep=";", decimal=",")),
        forbid=NO_REMAP_ADVICE,
    ),
    Case(
        "counts-missing-file",
        "forecast",
        ["data.path={tmp}/no_such_file.csv"],
        [r"not found|does not exist|no such", r"no_such_file"],
    ),
    Case("counts-empty-file", "forecast", [PATH], [r"empty|no (rows|data|columns)"], text_file("")),
    Case(
        "counts-header-only",
        "forecast",
        [PATH],
        [r"no (rows|data|days|counts)|empty|header"],
        csv_file(header_only(COUNTS)),
    ),
    Case(
        "counts-binary-garbage",
        "forecast",
        [PATH],
        [r"not a (readable|valid)|encoding|binary|cannot (be )?read|utf|decode|csv"],
        bytes_file(garbage()),
    ),
    Case(
        "counts-zip-named-csv",
        "forecast",
        [PATH],
        [r"not a (readable|valid)|encoding|binary|cannot (be )?read|utf|decode|zip|csv"],
        bytes_file(b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + garbage(2000, seed=3)),
    ),
    Case(
        "counts-latin1-encoding",
        "forecast",
        [PATH],
        [r"encoding|utf-?8|latin|decode"],
        text_file(
            _text(lambda f: f.assign(unique_id=f["unique_id"].str.replace("moor", "Ménez"))),
            encoding="latin-1",
        ),
    ),
    Case(
        "counts-utf16-encoding",
        "forecast",
        [PATH],
        [r"encoding|utf|decode"],
        text_file(_text(), encoding="utf-16"),
    ),
    Case(
        "counts-bom-and-missing-y",
        "forecast",
        [PATH],
        [r"\by\b", r"column"],
        text_file(_text(lambda f: f.rename(columns={"y": "calls"})), encoding="utf-8-sig"),
        forbid=("\ufeff", r"\bunique_id\b.*(missing|lacks|not found)"),
    ),
    Case(
        "counts-missing-ds-column",
        "forecast",
        [PATH],
        [r"\bds\b", r"column"],
        csv_file(edited(COUNTS, lambda f: f.drop(columns="ds"))),
    ),
    Case(
        "counts-missing-unique-id-column",
        "forecast",
        [PATH],
        [r"unique_id", r"column"],
        csv_file(edited(COUNTS, lambda f: f.drop(columns="unique_id"))),
    ),
    Case(
        "counts-missing-y-column",
        "forecast",
        [PATH],
        [r"\by\b", r"column"],
        csv_file(edited(COUNTS, lambda f: f.drop(columns="y"))),
    ),
    Case(
        "counts-duplicate-rows",
        "forecast",
        [PATH],
        [r"duplicate|twice|more than once|repeated", r"coast/C3|2020-03-20|\b300[12]\b"],
        csv_file(
            edited(
                COUNTS,
                lambda f: pd.concat([f, f.iloc[[3000]]]).sort_index(kind="stable").reset_index(drop=True),
            )
        ),
    ),
    Case(
        "counts-negative-count",
        "forecast",
        [PATH],
        [r"negative|below 0|less than 0|-4", csv_line(5000)],
        csv_file(set_value(COUNTS, 5000, "y", -4)),
    ),
    Case(
        "counts-empty-cell",
        "forecast",
        [PATH],
        [r"missing|empty|blank|nan|no value", csv_line(5000)],
        csv_file(set_value(COUNTS, 5000, "y", float("nan"))),
        forbid=NO_REPAIR_ADVICE,
    ),
    Case(
        "counts-nan-text",
        "forecast",
        [PATH],
        [r"missing|empty|nan|no value|not a number", csv_line(5000)],
        csv_file(set_value(COUNTS, 5000, "y", "NaN")),
        forbid=NO_REPAIR_ADVICE,
    ),
    Case(
        "counts-inf",
        "forecast",
        [PATH],
        [r"inf|finite", csv_line(5000)],
        csv_file(set_value(COUNTS, 5000, "y", float("inf"))),
    ),
    Case(
        "counts-text-in-number",
        "forecast",
        [PATH],
        [r"twelve|not a number|numeric|number", r"\by\b", csv_line(5000)],
        csv_file(set_value(COUNTS, 5000, "y", "twelve")),
    ),
    Case(
        "counts-thousands-separator",
        "forecast",
        [PATH],
        [r"thousands", r"\by\b"],  # the reader has an option for it: the message should say so
        csv_file(set_value(COUNTS, 100, "y", "1,234")),
    ),
    Case(
        "counts-future-dates",
        "forecast",
        [PATH],
        [r"future|after", r"\bds\b|date"],
        csv_file(edited(COUNTS, _shift_years(84))),  # 84: leap days stay leap days
    ),
    Case(
        "counts-pre-1900-dates",
        "forecast",
        [PATH],
        [r"1900|before|too (old|early)|implausib", r"\bds\b|date"],
        csv_file(edited(COUNTS, _shift_years(-148))),
    ),
    Case(
        "counts-one-pre-1900-row",
        "forecast",
        [PATH],
        [r"1900|before|too (old|early)|implausib", csv_line(7000)],
        csv_file(set_value(COUNTS, 7000, "ds", "1819-03-04")),
        forbid=NO_REPAIR_ADVICE,
    ),
    Case(
        "counts-parquet-y-as-text",
        "forecast",
        [PATH],
        [r"\by\b", r"numeric|number|type|text|string"],
        parquet_file(edited(COUNTS, lambda f: f.assign(y=f["y"].astype(str) + " calls"))),
    ),
    Case(
        "counts-parquet-ds-as-integers",
        "forecast",
        [PATH],
        [r"\bds\b|date"],
        parquet_file(edited(COUNTS, lambda f: f.assign(ds=f["ds"].str.replace("-", "").astype(int)))),
    ),
    Case(
        "counts-text-named-parquet",
        "forecast",
        [PATH],
        [r"parquet"],
        text_file(_text(), name="data.parquet"),
    ),
    Case(
        "counts-missing-days-not-filled",
        "forecast",
        [PATH],
        [r"missing|gap", r"coast/C3", r"fill_missing"],
        csv_file(edited(COUNTS, _drop_days("coast/C3", "2020-03-01", 10))),
    ),
    Case(
        "counts-regressor-text",
        "forecast",
        [PATH, "model=glm"],
        [r"x_temperature", r"warm|number|numeric"],
        csv_file(edited(COUNTS, _with_regressor({2000: "warm"}))),
    ),
    Case(
        "counts-regressor-missing-value",
        "forecast",
        [PATH, "model=glm"],
        [r"x_temperature", r"missing|empty|nan|no value", csv_line(2000)],
        csv_file(edited(COUNTS, _with_regressor({2000: np.nan}))),
    ),
    Case(
        "counts-all-missing-y",
        "forecast",
        [PATH],
        [r"\by\b", r"missing|empty|no value|nan"],
        csv_file(edited(COUNTS, lambda f: f.assign(y=np.nan))),
    ),
    Case(
        "counts-records-unparseable-timestamps",
        "forecast",
        [PATH, "data.records=true", "data.columns={unique_id: unique_id, ds: ds}"],
        [r"\bds\b|date|time", r"notatime"],
        csv_file(lambda: pd.DataFrame({"unique_id": ["a"] * 40, "ds": ["notatime"] * 40})),
    ),
    Case(
        "counts-one-future-row",
        "forecast",
        [PATH],
        [r"future|after", r"2091", csv_line(7000)],
        csv_file(set_value(COUNTS, 7000, "ds", "2091-03-04")),
        forbid=NO_REPAIR_ADVICE,
    ),
    Case(
        "counts-date-format-does-not-fit",
        "forecast",
        [PATH, "data.read.date_format=%d/%m/%Y"],
        [r"date_format|%d/%m/%Y", r"\bds\b|date", r"\b2\b|line"],
        csv_file(COUNTS),
        forbid=NO_REPAIR_ADVICE,
    ),
    Case(
        "counts-wrong-sep-configured",
        "forecast",
        [PATH, "data.read.sep=';'"],
        [r"separat|\bsep\b"],
        csv_file(COUNTS),
        forbid=NO_REMAP_ADVICE,
    ),
    Case(
        "counts-one-tiny-series",  # issue 10: "'Tiny' has 3" with no fix
        "forecast",
        [PATH],
        [r"Tiny", r"exclude_series|backtest|at least|longer|more"],
        csv_file(
            edited(
                COUNTS,
                lambda f: pd.concat(
                    [
                        f,
                        pd.DataFrame(
                            {"unique_id": "Tiny", "ds": ["2023-12-29", "2023-12-30", "2023-12-31"], "y": 3}
                        ),
                    ],
                    ignore_index=True,
                ),
            )
        ),
    ),
    Case(
        "counts-excel-workbook",
        "forecast",
        ["data.path={file}"],
        [r"xlsx|workbook|spreadsheet|csv or parquet"],
        bytes_file(b"PK\x03\x04\x14\x00\x06\x00" + garbage(3000, seed=8), name="counts.xlsx"),
        forbid=(r"read\.encoding",),  # a workbook is not a text file in another encoding
    ),
    Case(
        "counts-json-file",
        "forecast",
        ["data.path={file}"],
        [r"json|csv or parquet|not a (csv|table)"],
        text_file(clean_counts().head(50).to_json(orient="records"), name="counts.json"),
    ),
    Case(
        "counts-corrupt-gzip",
        "forecast",
        ["data.path={file}"],
        [r"gzip|compress|not a (readable|valid)|cannot (be )?read|corrupt"],
        bytes_file(b"\x1f\x8b\x08\x00" + garbage(2000, seed=9), name="counts.csv.gz"),
    ),
    Case(
        "counts-missing-series-name",
        "forecast",
        [PATH],
        [r"unique_id|series", r"missing|empty|blank|no value", csv_line(3000)],
        csv_file(set_value(COUNTS, 3000, "unique_id", float("nan"))),
    ),
    Case(
        "counts-header-repeated-mid-file",  # two exports pasted together
        "forecast",
        [PATH],
        [r"\bds\b|\by\b|date|number", csv_line(4000)],
        csv_file(
            edited(
                COUNTS,
                lambda f: pd.concat(
                    [
                        f.iloc[:4000],
                        pd.DataFrame([{"unique_id": "unique_id", "ds": "ds", "y": "y"}]),
                        f.iloc[4000:],
                    ],
                    ignore_index=True,
                ),
            )
        ),
    ),
    Case(
        "counts-spreadsheet-serial-dates",  # 43101 = 2018-01-01 in a spreadsheet's day numbers
        "forecast",
        [PATH],
        [r"\bds\b|date", r"43101|ISO|date_format"],
        csv_file(
            edited(
                COUNTS, lambda f: f.assign(ds=(pd.to_datetime(f["ds"]) - pd.Timestamp("1899-12-30")).dt.days)
            )
        ),
    ),
    Case(
        "counts-constant-series",  # passes the reader; no model can be scored on it: the gate refuses
        "forecast",
        [PATH],
        [r"moor/C1", r"constant|same|MASE|score|finite"],
        csv_file(edited(COUNTS, lambda f: f.assign(y=f["y"].where(f["unique_id"] != "moor/C1", 5)))),
    ),
    Case(
        "counts-all-series-constant",
        "forecast",
        [PATH],
        [r"constant|same|MASE|score|finite"],
        csv_file(edited(COUNTS, lambda f: f.assign(y=7))),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_bad_daily_counts_are_refused_clearly(case, tmp_path, seeded):
    check(run_case(case, tmp_path, seeded[case.app]))
