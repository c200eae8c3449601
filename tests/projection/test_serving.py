"""Requests from other services: every split for each (area, date, scenario), clear errors otherwise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.projection.serving import ProjectionRequestError, answer_requests, output_columns
from tests.projection.conftest import scenario

LABELS = ["p10", "p50", "p90"]


@pytest.fixture(scope="module")
def served():
    days = pd.date_range("2024-01-01", "2035-12-31")
    rows = []
    for name in ("principal", "lever"):
        rows.append(
            pd.DataFrame(
                {
                    "area": "trust",
                    "scenario": name,
                    "ds": days,
                    "mean": 2000.0,
                    "sd": 120.0,
                    "p10": 1850.0,
                    "p50": 2000.0,
                    "p90": 2150.0,
                }  # fmt: skip
            )
        )
    scenarios = {
        "principal": scenario("principal"),
        "lever": scenario("lever", remote_closure={"start_share": 0.2, "end_share": 0.3, "end_year": 2035}),
    }
    return pd.concat(rows, ignore_index=True), scenarios


def test_answers_every_measure_in_request_order(served):
    daily, scenarios = served
    request = pd.DataFrame(
        {"area": ["trust", "trust"], "date": ["2035-06-01", "2026-01-01"], "scenario": ["lever", "principal"]}
    )
    answer = answer_requests(daily, scenarios, 2025, LABELS, request)
    assert list(answer.columns) == ["area", "date", "scenario", *output_columns(LABELS)]
    assert list(answer["scenario"]) == ["lever", "principal"]
    first = answer.iloc[0]
    assert first["calls_mean"] == 2000.0
    assert first["needs_ambulance_mean"] == pytest.approx(1400.0)  # 30 % closed remotely by 2035
    assert first["needs_ambulance_no_change_mean"] == pytest.approx(1600.0)
    categories = sum(first[f"{c}_mean"] for c in ("C1", "C2", "C3", "C4"))
    assert categories == pytest.approx(2000.0)
    for measure in ("C1", "conveyed", "needs_ambulance"):
        assert first[f"{measure}_p10"] < first[f"{measure}_mean"] < first[f"{measure}_p90"]
    assert np.isfinite(answer[output_columns(LABELS)].to_numpy()).all()


@pytest.mark.parametrize(
    "request_rows, message",
    [
        ({"area": ["trust"], "date": ["2030-01-01"]}, r"lacks column\(s\) \['scenario'\]"),
        (
            {"area": ["Atlantis"], "date": ["2030-01-01"], "scenario": ["principal"]},
            r"unknown area: `area` in 1 row\(s\) \(row 0\).*\['trust'\]",
        ),
        (
            {"area": ["trust"], "date": ["2030-01-01"], "scenario": ["boom"]},
            r"unknown scenario: `scenario` in 1 row\(s\) \(row 0\)",
        ),
        (
            {"area": ["trust"], "date": ["2040-01-01"], "scenario": ["lever"]},
            "projects 2024-01-01 to 2035-12-31",
        ),
        (
            {"area": ["trust"], "date": ["soon"], "scenario": ["lever"]},
            r"`date` holds 1 value\(s\) that are not dates \(row 0\)",
        ),
        ({"area": [], "date": [], "scenario": []}, "no rows"),
    ],
)
def test_bad_requests_say_what_is_wrong(served, request_rows, message):
    daily, scenarios = served
    with pytest.raises(ProjectionRequestError, match=message):
        answer_requests(daily, scenarios, 2025, LABELS, pd.DataFrame(request_rows))
