"""The corpus checks itself: it can fail, it covers every case issue 10 names, and it is big enough."""

from __future__ import annotations

import pytest

from mlops.errors import ConfigError, DataValidationError
from tests.corpus import test_call_records, test_cli, test_daily_counts, test_overrides, test_populations
from tests.corpus.harness import Case, Outcome, check, clean_counts, csv_file, problems, run_case

IN_PROCESS = [
    *test_daily_counts.CASES,
    *test_call_records.CASES,
    *test_populations.CASES,
    *test_overrides.CASES,
]

# Every bad input issue 10 lists, by the id of the case that reproduces it.
NAMED_IN_ISSUE = {
    "1e12 count with model=glm": "counts-1e12-glm",
    "dd/mm/yyyy, whole years": "counts-ddmmyyyy-whole-years",
    "dd/mm/yyyy, not whole years": "counts-ddmmyyyy-part-year",
    "dd/mm/yyyy, following the advice data.fill_missing=0": "counts-ddmmyyyy-fill-missing-0",
    "all-zero series": "counts-all-zero-file",
    "backtest.horizon=7.5": "forecast-horizon-7.5",
    "levels=[]": "forecast-levels-empty",
    "20-day series with model=seasonal_naive": "counts-20-days-seasonal-naive",
    "backtest.horizon=abc": "forecast-horizon-abc",
    "data.fill_missing=abc": "forecast-fill-missing-abc",
    "data.train_end=notadate": "forecast-train-end-notadate",
    "model.learning_rate=-1": "forecast-learning-rate-negative",
    "no data.path": "forecast-no-data-path",
    "tracking.store_dir pointing at a file": "forecast-store-dir-is-a-file",
    "header-only call-records file": "calls-header-only-csv-config",
    "calls.never_remote omitted with calls=csv": "calls-csv-never-remote-omitted",
    "no calls.path": "calls-csv-no-path",
    "all-zero population": "population-all-zero",
    "base_year=abc": "project-base-year-abc",
    "no population.path": "project-no-population-path",
    "levels=80": "forecast-levels-80",
    "semicolon-separated file": "counts-semicolon-separated",
    "directory as path": "counts-directory-as-path",
    "too-short series ('Tiny' has 3)": "counts-one-tiny-series",
}


def test_every_case_named_in_the_issue_is_in_the_corpus():
    ids = {case.id for case in IN_PROCESS}
    assert {name: case_id for name, case_id in NAMED_IN_ISSUE.items() if case_id not in ids} == {}


def test_the_corpus_is_big_and_its_ids_are_unique():
    ids = [case.id for case in [*IN_PROCESS, *test_cli.CASES]]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 100
    assert {case.app for case in IN_PROCESS} == {"forecast", "disposition", "project"}


def test_a_clean_file_is_reported_as_silently_accepted(tmp_path, seeded):
    """The harness can fail: good data through the same path is an accepted run, not a refusal."""
    case = Case("clean-counts", "forecast", ["data.path={file}"], [r"\by\b"], csv_file(clean_counts))
    outcome = run_case(case, tmp_path, seeded["forecast"])
    assert outcome.error is None, outcome.message
    assert problems(outcome)[0] == ["silent"]
    with pytest.raises(AssertionError, match=r"^\[silent\] clean-counts"):
        check(outcome)


@pytest.mark.parametrize(
    ("error", "expect", "leftovers", "tags"),
    [
        (
            ConfigError("backtest.horizon=abc: must be a whole number of days >= 1"),
            [r"backtest\.horizon"],
            [],
            [],
        ),
        (
            ConfigError("backtest.horizon=abc:\nmust be a whole number"),
            [r"backtest\.horizon"],
            [],
            ["unclear"],
        ),
        (ConfigError("horizon: must be a whole number"), [r"backtest\.horizon"], [], ["unclear"]),
        (ConfigError("levels: 'int' object is not iterable"), [r"levels"], [], ["unclear"]),
        (DataValidationError("y holds np.float64(nan) at line 3; fix it"), [r"\by\b"], [], ["unclear"]),
        (ValueError("operands could not be broadcast together"), [], [], ["traceback"]),
        (
            DataValidationError("series 'a' is all zeros: exclude it"),
            [r"zero"],
            ["registered version(s) [('m', '2')]"],
            ["half-written"],
        ),
    ],
)
def test_outcomes_are_judged_by_their_message_and_what_they_left(error, expect, leftovers, tags):
    outcome = Outcome(Case("judged", "forecast", expect=expect), error=error, leftovers=list(leftovers))
    assert problems(outcome)[0] == tags
