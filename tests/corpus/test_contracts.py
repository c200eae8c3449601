"""Runs that are valid but serve another contract never move the champion (issue 10, deliverable 5).

A planner's what-if run for other areas became ``@champion`` of the projection and broke the
documented serving example; the same holds for a forecast on other series or a classifier on
other features. Each case is a clean run on a copy of a store whose champion serves the usual
contract: it may register a challenger (or refuse in one line), but ``champion`` stays put.
"""

from __future__ import annotations

import pytest

from mlops.errors import UserInputError
from tests.conftest import compose_config
from tests.corpus.harness import (
    CONFIG_NAMES,
    Case,
    clean_counts,
    copy_store,
    csv_file,
    edited,
    merged_overrides,
    registry_snapshot,
    run_job,
    state_before,
)

CASES = [
    Case("projection-other-areas", "project", ["population.areas=null"]),  # England as it is, not the trust
    Case(
        "projection-fewer-scenarios",
        "project",
        ["~scenario@compare.flat_rates", "~scenario@compare.low_ageing"],
    ),
    Case("projection-other-final-year", "project", ["horizon_years=5"]),
    Case(
        "forecast-other-series",
        "forecast",
        # data.name: the seeded champion's registry name (daily-demand-counts), not the file's
        ["data.path={file}", "data.name=counts"],
        file=csv_file(edited(clean_counts, lambda f: f[f["unique_id"].isin(["city/C2", "moor/C1"])])),
    ),
    Case(
        "disposition-other-features",
        "disposition",
        ["calls.features.numeric=[age,care_home,contacts_7d]"],
    ),
]


def _champions(snapshot: dict) -> dict[str, str]:
    return {name: version for name, alias, version in snapshot["aliases"] if alias == "champion"}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_another_contract_never_moves_the_champion(case, tmp_path, seeded):
    store = tmp_path / "store"
    copy_store(seeded[case.app], store)
    before = state_before(seeded[case.app], store / "mlflow.db")[0]
    file = case.file(tmp_path) if case.file else None
    cfg = compose_config(CONFIG_NAMES[case.app], merged_overrides(case, store, tmp_path, file))
    try:
        result = run_job(case.app, cfg, tmp_path / "out")
    except UserInputError as error:  # refusing the run is allowed; moving the champion is not
        assert "\n" not in str(error).strip(), str(error)
        result = None
    after = registry_snapshot(store / "mlflow.db")
    assert _champions(after) == _champions(before), f"[half-written] {case.id}: champion moved"
    if result is not None:
        assert not result.promoted, f"[half-written] {case.id}: reported as promoted: {result.reason}"
