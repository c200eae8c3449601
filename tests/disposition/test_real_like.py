"""The small real-like triage file (data/real_like): read as it comes, summarised, refused where it
should be, and trained on in the README's one command (the end-to-end run is marked slow)."""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from disposition.data import CallSpec, prepare_calls
from mlops.errors import ConfigError, DataValidationError
from mlops.tables import read_table
from tests.disposition.conftest import ROOT, compose_disposition

TRIAGE = ROOT / "data" / "real_like" / "triage.csv"
# The README's command ("A small file without dates"), as the shell hands it to Hydra.
COMMAND = (
    f"calls=csv calls.path={TRIAGE} \"calls.read.sep=';'\" \"calls.read.decimal=','\" "
    "\"calls.read.na_values=['??']\" calls.split=random calls.target.column=discharged_home "
    "'calls.exclude=[patient_id,diagnosis_in_ed,disposition,length_of_stay_min]' "
    "'calls.never_remote={ktas_rn:[1,2],chief_complaint:[\"re:weakness|dysarthria|slurred|mental change\"]}' "
    "'calls.subgroups={age:age,sex:sex}'"
)


def _overrides(*drop: str) -> list[str]:
    return [o for o in shlex.split(COMMAND) if not o.startswith(drop)]


def _prepare(overrides: list[str]):
    cfg = compose_disposition(overrides)
    spec = CallSpec.from_config(OmegaConf.to_container(cfg.calls, resolve=True))
    return prepare_calls(read_table(cfg.calls.path, cfg.calls.read, "calls.read"), spec, str(TRIAGE))


def test_the_committed_file_is_what_its_script_makes(tmp_path):
    spec = importlib.util.spec_from_file_location("make_triage", TRIAGE.with_name("make_triage.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    made = script.main(tmp_path / "triage.csv")
    assert made.read_bytes() == TRIAGE.read_bytes()
    raw = pd.read_csv(TRIAGE, sep=";", dtype=str)
    assert len(raw) == 1300 and raw["patient_id"].is_unique and (raw["sbp"] == "??").any()


def test_the_file_as_it_comes_is_summarised_refused_and_then_read():
    # Without na_values the vital signs hold '??': refused with the fix, not turned into categories.
    with pytest.raises(
        DataValidationError,
        match=r"'nrs_pain' holds numbers.*so do \['sbp', .*\"calls.read.na_values=\['\?\?'\]\"",
    ):
        _prepare(_overrides('"calls.read.na_values', "calls.read.na_values"))
    # Without the exclusions the identifier is refused (the free-text complaint is a rule column).
    with pytest.raises(ConfigError, match=r"'patient_id' \(looks like an identifier"):
        _prepare(_overrides("calls.exclude"))
    calls = _prepare(_overrides())
    kinds = dict(zip(calls.columns["column"], calls.columns["type"], strict=True))
    roles = dict(zip(calls.columns["column"], calls.columns["role"], strict=True))
    assert kinds["arrival_mode"] == "integer-coded category" and "arrival_mode" in calls.features.categorical
    assert kinds["bt"] == "numeric" and calls.frame["bt"].dropna().between(34, 42).all()  # decimal commas
    assert kinds["ktas_duration_min"] == "numeric"  # the column written with points
    assert kinds["chief_complaint"] == "free text" and roles["chief_complaint"] == "hard rule only"
    assert "chief_complaint" not in calls.features.names and not calls.warnings
    stroke = next(r for r in calls.rules if r.column == "chief_complaint").matches(calls.frame)
    complaints = calls.frame.loc[stroke, "chief_complaint"].str.lower()
    assert complaints.str.contains("weak|dysarthria|slurred|mental change").all() and stroke.sum() > 50


@pytest.mark.slow
def test_the_readme_command_trains_reports_and_registers(tmp_path):
    from disposition.pipeline import train

    cfg = compose_disposition([*_overrides(), f"tracking.store_dir={tmp_path / 'store'}"])
    result = train(cfg, tmp_path / "out")
    assert result.version == "1"
    report = (Path(result.output_dir) / "report.md").read_text()
    assert "## Columns" in report and "## Model choice" in report
    assert "5-fold" not in report and "3-fold stratified cross-validation over 780 training calls" in report
    # 260 calibration calls cannot show 1 %: the report says how many it would need and what it can show.
    assert "the calibration window has 260 calls" in report and "could at best support a limit of" in report
