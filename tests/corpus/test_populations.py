"""Bad population tables and history counts through the projection job (``project`` in its pipeline).

The projection population is the ONS 2020-based England table (2020-2050, 19 five-year bands),
read with ``population=csv``; the history population is the synthetic world's (seven areas,
2018-2024); the history counts are the synthetic world's daily counts. Each case breaks one of
them; the store already has a projection champion.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.corpus.harness import (
    Case,
    bytes_file,
    check,
    clean_history_counts,
    clean_history_population,
    clean_population,
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

OWN = ["population=csv", "population.path={file}"]
HISTORY_POP = ["history.population_path={file}"]
HISTORY_COUNTS = ["history.counts_path={file}"]
POP, HPOP, HCOUNTS = clean_population, clean_history_population, clean_history_counts
ROW = 100  # England, 2025, 25-29


def _drop_band(band: str):
    return lambda f: f[f["age_band"] != band].reset_index(drop=True)


def _add_band(band: str, value: float):
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        extra = frame[frame["age_band"] == "90+"].assign(age_band=band, population=value)
        return pd.concat([frame, extra], ignore_index=True)

    return change


def _text(frame, **to_csv) -> str:
    return frame().to_csv(index=False, **to_csv)


CASES = [
    # --- named in issue 10 ---------------------------------------------------------------------
    Case(
        "population-all-zero",
        "project",
        OWN,
        [r"population", r"zero|\b0\b|no residents"],
        csv_file(edited(POP, lambda f: f.assign(population=0))),
    ),
    Case(
        "history-population-all-zero",
        "project",
        HISTORY_POP,
        [r"population", r"zero|\b0\b|no residents"],
        csv_file(edited(HPOP, lambda f: f.assign(population=0.0))),
    ),
    Case(
        "population-semicolon-separated",
        "project",
        OWN,
        [r"separat|\bsep\b|;"],
        csv_file(POP, sep=";"),
        forbid=(r"population\.columns",),
    ),
    Case(
        "population-directory-as-path",
        "project",
        OWN,
        [r"director|folder"],
        directory(),
        forbid=(r"not found",),
    ),
    # --- the class beyond them ------------------------------------------------------------------
    Case(
        "population-negative",
        "project",
        OWN,
        [r"population", r"negative|-5|below|>= ?0", csv_line(ROW)],
        csv_file(set_value(POP, ROW, "population", -5)),
    ),
    Case(
        "population-missing-value",
        "project",
        OWN,
        [r"population", r"missing|empty|nan|no value", csv_line(ROW)],
        csv_file(set_value(POP, ROW, "population", float("nan"))),
    ),
    Case(
        "population-text",
        "project",
        OWN,
        [r"population", r"lots|number|numeric", csv_line(ROW)],
        csv_file(set_value(POP, ROW, "population", "lots")),
    ),
    Case(
        "population-infinite",
        "project",
        OWN,
        [r"population", r"inf|finite", csv_line(ROW)],
        csv_file(set_value(POP, ROW, "population", float("inf"))),
    ),
    Case(
        "population-1e12-in-one-band",
        "project",
        OWN,
        [
            r"population",
            r"implausib|1e\+?12|1000000000000|too (large|big)|times",
            r"25-29|2025|" + csv_line(ROW),
        ],
        csv_file(set_value(POP, ROW, "population", 1e12)),
    ),
    Case(
        "population-missing-age-band-column",
        "project",
        OWN,
        [r"age_band", r"column|missing|lacks"],
        csv_file(edited(POP, lambda f: f.drop(columns="age_band"))),
    ),
    Case(
        "population-missing-population-column",
        "project",
        OWN,
        [r"population", r"column|missing|lacks"],
        csv_file(edited(POP, lambda f: f.drop(columns="population"))),
    ),
    Case(
        "population-missing-year-column",
        "project",
        OWN,
        [r"\byear\b", r"column|missing|lacks"],
        csv_file(edited(POP, lambda f: f.drop(columns="year"))),
    ),
    Case(
        "population-band-missing",
        "project",
        OWN,
        [r"45-49|age.band|band"],
        csv_file(edited(POP, _drop_band("45-49"))),
    ),
    Case(
        "population-ages-200",
        "project",
        OWN,
        [r"200-204|age.band|band", r"200"],
        csv_file(edited(POP, _add_band("200-204", 1000))),
    ),
    Case(
        "population-negative-ages",
        "project",
        OWN,
        [r"age.band|band", r"-5"],
        csv_file(edited(POP, _add_band("-5-0", 1000))),
    ),
    Case(
        "population-duplicate-rows",
        "project",
        OWN,
        [r"duplicate|twice|more than once|repeated", r"2025|25-29|" + csv_line(ROW)],
        csv_file(
            edited(
                POP, lambda f: pd.concat([f, f.iloc[[ROW]]]).sort_index(kind="stable").reset_index(drop=True)
            )
        ),
    ),
    Case(
        "population-year-text",
        "project",
        OWN,
        [r"\byear\b", r"twenty|number|numeric|integer", csv_line(ROW)],
        csv_file(set_value(POP, ROW, "year", "twenty")),
    ),
    Case(
        "population-year-fraction",
        "project",
        OWN,
        [r"\byear\b", r"2025\.5|whole|integer"],
        csv_file(set_value(POP, ROW, "year", 2025.5)),
    ),
    Case(
        "population-pre-1900-year",
        "project",
        OWN,
        [r"\byear\b", r"1825"],
        csv_file(set_value(POP, ROW, "year", 1825)),
    ),
    Case(
        "population-ends-too-early",
        "project",
        OWN,
        [r"\byear", r"2035|2030|final|horizon"],
        csv_file(edited(POP, lambda f: f[f["year"] <= 2030].reset_index(drop=True))),
    ),
    Case(
        "population-header-only",
        "project",
        OWN,
        [r"no (rows|data)|empty|header|only"],
        csv_file(header_only(POP)),
    ),
    Case("population-empty-file", "project", OWN, [r"empty|no (rows|data|columns)"], text_file("")),
    Case(
        "population-binary-garbage",
        "project",
        OWN,
        [r"not a (readable|valid)|encoding|binary|cannot (be )?read|utf|decode|csv"],
        bytes_file(garbage(seed=6)),
    ),
    Case(
        "population-parquet-as-text",
        "project",
        OWN,
        [r"population", r"number|numeric|text|type|string"],
        parquet_file(edited(POP, lambda f: f.assign(population=f["population"].map("{:,}".format)))),
    ),
    Case(
        "population-latin1-encoding",
        "project",
        OWN,
        [r"encoding|utf-?8|latin|decode"],
        text_file(_text(edited(POP, lambda f: f.assign(area="Île-de-Bretagne"))), encoding="latin-1"),
    ),
    Case(
        "population-bom-and-missing-column",
        "project",
        OWN,
        [r"population", r"column|missing|lacks"],
        text_file(
            _text(edited(POP, lambda f: f.rename(columns={"population": "residents"}))), encoding="utf-8-sig"
        ),
        forbid=("\ufeff",),
    ),
    Case(
        "backtest-population-all-zero",
        "project",
        ["backtest.population_path={file}"],
        [r"population", r"zero|\b0\b|no residents"],
        csv_file(edited(HPOP, lambda f: f.assign(population=0.0))),
    ),
    Case(
        "history-population-negative",
        "project",
        HISTORY_POP,
        [r"population", r"negative|below|>= ?0", csv_line(100)],
        csv_file(set_value(HPOP, 100, "population", -68830.4)),
    ),
    Case(
        "history-population-missing-area",
        "project",
        HISTORY_POP,
        [r"moor", r"area|population"],
        csv_file(edited(HPOP, lambda f: f[f["area"] != "moor"].reset_index(drop=True))),
    ),
    Case(
        "history-population-missing-file",
        "project",
        ["history.population_path={tmp}/no_such_population.csv"],
        [r"not found|does not exist|no such", r"no_such_population"],
    ),
    # --- history counts the rates and daily shape are fitted on ---------------------------------
    Case(
        "history-counts-all-zero",
        "project",
        HISTORY_COUNTS,
        [r"zero", r"\by\b|count|calls|area|series"],
        csv_file(edited(HCOUNTS, lambda f: f.assign(y=0))),
    ),
    Case(
        "history-counts-negative",
        "project",
        HISTORY_COUNTS,
        [r"negative|below|>= ?0", csv_line(1000)],
        csv_file(set_value(HCOUNTS, 1000, "y", -3)),
    ),
    Case(
        "history-counts-1e12",
        "project",
        HISTORY_COUNTS,
        [r"implausib|1e\+?12|1000000000000|too (large|big)|times", csv_line(1000)],
        csv_file(set_value(HCOUNTS, 1000, "y", 1e12)),
    ),
    Case(
        "history-counts-ddmmyyyy",
        "project",
        HISTORY_COUNTS,
        [r"\bds\b|date", r"date_format|%d/%m|dd/mm|day.first|ambiguous"],
        csv_file(edited(HCOUNTS, lambda f: f.assign(ds=pd.to_datetime(f["ds"]).dt.strftime("%d/%m/%Y")))),
        forbid=(r"fill_missing",),
    ),
    Case(
        "history-counts-header-only",
        "project",
        HISTORY_COUNTS,
        [r"no (rows|data)|empty|header|only"],
        csv_file(header_only(HCOUNTS)),
    ),
    Case(
        "history-counts-missing-area-column",
        "project",
        HISTORY_COUNTS,
        [r"\barea\b", r"column|missing|lacks"],
        csv_file(edited(HCOUNTS, lambda f: f.drop(columns="area"))),
    ),
    Case(
        "history-counts-semicolon-separated",
        "project",
        HISTORY_COUNTS,
        [r"separat|\bsep\b|;"],
        csv_file(HCOUNTS, sep=";"),
        forbid=(r"history\.columns",),
    ),
    Case(
        "history-counts-future-dates",
        "project",
        HISTORY_COUNTS,
        [r"future|after", r"\bds\b|date"],
        csv_file(
            edited(
                HCOUNTS,
                lambda f: f.assign(
                    ds=(pd.to_datetime(f["ds"]) + pd.DateOffset(years=84)).dt.strftime("%Y-%m-%d")
                ),
            )
        ),
    ),
    Case(
        "history-counts-text-in-number",
        "project",
        HISTORY_COUNTS,
        [r"\by\b|count", r"many|number|numeric", csv_line(1000)],
        csv_file(set_value(HCOUNTS, 1000, "y", "many")),
    ),
    Case(
        "history-counts-parquet-inf",
        "project",
        HISTORY_COUNTS,
        [r"inf|finite"],
        parquet_file(set_value(HCOUNTS, 1000, "y", np.inf)),
    ),
    Case(
        "population-thousands-separators",
        "project",
        OWN,
        [r"population", r"thousands"],  # the reader has an option for it: the message should say so
        csv_file(edited(POP, lambda f: f.assign(population=f["population"].map("{:,}".format)))),
    ),
    Case(
        "population-band-notation",
        "project",
        OWN,
        [r"band", r"0 to 4|'<from>-<to>'|85-89|90\+"],
        csv_file(edited(POP, lambda f: f.assign(age_band=f["age_band"].str.replace("-", " to ")))),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_bad_populations_and_history_are_refused_clearly(case, tmp_path, seeded):
    check(run_case(case, tmp_path, seeded[case.app]))
