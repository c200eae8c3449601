"""The column summary before training: types, refusals of identifiers and free text, junk, leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from disposition.columns import column_type, profile_columns
from disposition.data import CallSpec, prepare_calls
from disposition.pyfunc_model import made_up_example
from disposition.report_sections import ReportSections, add_sections, column_section
from mlops.errors import ConfigError, DataValidationError


@pytest.fixture
def triage() -> pd.DataFrame:
    """A triage file as it comes: codes, a typed complaint, a record number, junk vital signs."""
    rng = np.random.default_rng(5)
    n = 600
    words = ["pain", "chest", "fever", "fall", "cough", "weakness", "left", "arm", "since", "today"]
    phrases = [" ".join(rng.choice(words, 4)) for _ in range(400)]
    weights = 1 / np.arange(1, 401)
    complaint = rng.choice(phrases, n, p=weights / weights.sum())  # a few common, most typed once
    sbp = rng.normal(130, 20, n).round(0).astype(int).astype(str).astype(object)
    sbp[rng.choice(n, 25, replace=False)] = "??"
    safe = rng.integers(0, 2, n)
    return pd.DataFrame(
        {
            "patient_no": 4_000_000_000 + rng.permutation(n),  # NHS-number-like
            "arrival_mode": rng.integers(1, 8, n),
            "pain_count": rng.poisson(1.5, n),
            "age": rng.integers(16, 95, n),
            "temp": [f"{t:.1f}".replace(".", ",") for t in rng.normal(37, 0.6, n)],
            "sbp": sbp,
            "complaint": complaint,
            "seen_on": pd.date_range("2023-01-01", periods=n, freq="h").strftime("%Y-%m-%d").tolist(),
            "safe": safe,
        }
    )


def _spec(**changes) -> CallSpec:
    config = {
        "name": "triage",
        "date_column": None,
        "split": "random",
        "target": {"column": "safe"},
        "features": {"categorical": None, "numeric": None},
        "never_remote": {},
        "read": {"decimal": ",", "sep": ";"},
    }
    config.update(changes)
    return CallSpec.from_config(config)


def test_each_column_gets_its_type(triage):
    kinds = {c: column_type(triage[c], ",")[0] for c in triage.columns}
    assert kinds == {
        "patient_no": "identifier",
        "arrival_mode": "integer-coded category",
        "pain_count": "numeric",  # a count starts at 0: it stays a number
        "age": "numeric",
        "temp": "numeric",  # decimal commas read as text are still numbers
        "sbp": "numbers with junk",
        "complaint": "free text",
        "seen_on": "date",
        "safe": "binary",
    }


def test_junk_in_a_numeric_column_is_reported_with_the_fix(triage):
    shown: list[str] = []
    with pytest.raises(
        DataValidationError, match=r"'sbp' holds numbers and 25 value\(s\) that are not, '\?\?'"
    ) as e:
        prepare_calls(triage, _spec(), "triage.csv", show=shown.append)
    assert "calls.read.na_values=['??']" in str(e.value)
    # The summary was printed before the refusal, one line per column.
    assert shown and all(column in shown[0] for column in triage.columns)


def test_identifiers_free_text_and_dates_are_refused_in_one_line(triage):
    clean = triage.assign(sbp=pd.to_numeric(triage["sbp"], errors="coerce"))
    with pytest.raises(ConfigError) as refused:
        prepare_calls(clean, _spec(), "triage.csv")
    message = str(refused.value)
    assert "\n" not in message
    for column in ("patient_no", "complaint", "seen_on"):
        assert repr(column) in message
    assert "'calls.exclude=[patient_no,complaint,seen_on]'" in message
    assert "'calls.allow_columns=[patient_no,complaint]'" in message

    dropped = prepare_calls(clean, _spec(exclude=["patient_no", "complaint", "seen_on"]), "triage.csv")
    assert dropped.features.categorical == ["arrival_mode"]
    assert dropped.features.numeric == ["pain_count", "age", "temp", "sbp"]
    assert dropped.frame["temp"].dtype == float and dropped.frame["temp"].between(34, 40).all()
    roles = dict(zip(dropped.columns["column"], dropped.columns["role"], strict=True))
    assert roles["patient_no"] == "excluded" and roles["safe"] == "target" and roles["age"] == "feature"

    allowed = prepare_calls(
        clean, _spec(exclude=["patient_no", "seen_on"], allow_columns=["complaint"]), "triage.csv"
    )
    assert "complaint" in allowed.features.categorical
    with pytest.raises(ConfigError, match=r"calls.allow_columns names \['complant'\]"):
        prepare_calls(clean, _spec(allow_columns=["complant"]), "triage.csv")


def test_a_feature_that_leaks_the_outcome_is_warned_loudly(triage):
    clean = triage.drop(columns=["complaint", "seen_on", "sbp"])
    leaky = clean.assign(disposition_text=np.where(clean["safe"] == 1, "home", "ward"))
    shown: list[str] = []
    prepared = prepare_calls(leaky, _spec(exclude=["patient_no"]), "triage.csv", show=shown.append)
    assert (
        len(prepared.warnings) == 1
        and "'disposition_text' alone separates the outcome" in prepared.warnings[0]
    )
    assert any(line.startswith("WARNING: feature 'disposition_text'") for line in shown)
    assert not prepare_calls(
        clean, _spec(exclude=["patient_no"]), "triage.csv"
    ).warnings  # honest features: no warning

    sections = ReportSections(warnings=prepared.warnings)
    sections.add("Columns", column_section(prepared.columns))
    report = add_sections("# Title\n\nintro\n\n## Headline (test window)\n\nnumbers\n", sections)
    assert report.index("**WARNING**") < report.index("intro") < report.index("## Columns")
    assert report.index("## Columns") < report.index("## Headline") and "| disposition_text |" in report


def test_the_input_example_never_copies_an_identifier():
    rng = np.random.default_rng(0)
    n = 301
    frame = pd.DataFrame(
        {
            "patient_no": 4_000_000_000 + np.arange(n),
            "ref": [f"P{i:05d}" for i in range(n)],
            "age": rng.integers(20, 90, n),
            "area": rng.choice(["north", "south"], n),
        }
    )
    example = made_up_example(frame, list(frame.columns), None, categorical=["ref", "area"])
    for column in ("patient_no", "ref"):
        assert not example[column].isin(frame[column]).any()
    assert set(example["area"]) <= {"north", "south"}


def test_profile_of_synthetic_calls_keeps_their_types(calls):
    profile = profile_columns(calls, calls["safe_remote"].to_numpy(), lambda c, k: "feature")
    kinds = dict(zip(profile["column"], profile["type"], strict=True))
    assert kinds["call_id"] == "identifier" and kinds["symptom_group"] == "text category"
    assert kinds["contacts_30d"] == "numeric" and kinds["sex"] == "text category"
