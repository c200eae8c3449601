"""A few bad inputs through the real entry points, in subprocesses, as a user would type them.

What the user sees must be exactly one line on stderr starting ``error:``, exit status 2 (the
usage-error convention of ``report_user_errors``), no traceback anywhere, and the run folder and
store as they were (Hydra's ``.hydra/`` and log file aside).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.corpus.harness import (
    ROOT,
    Case,
    clean_calls,
    clean_counts,
    clean_population,
    copy_store,
    csv_file,
    edited,
    header_only,
    left_behind,
    merged_overrides,
    set_value,
    state_before,
)
from tests.corpus.test_daily_counts import HUGE_DAY, HUGE_ID, HUGE_ROW

MODULES = {
    "forecast": "forecasting.train",
    "disposition": "disposition.train",
    "project": "forecasting.project",
}

CASES = [
    Case("cli-forecast-horizon-abc", "forecast", ["backtest.horizon=abc"], [r"backtest\.horizon", r"abc"]),
    Case(
        "cli-forecast-semicolon-file",
        "forecast",
        ["data.path={file}"],
        [r"separat|\bsep\b|;"],
        csv_file(clean_counts, sep=";"),
    ),
    Case(
        "cli-forecast-1e12-glm",
        "forecast",
        ["data.path={file}", "model=glm"],
        [HUGE_ID, HUGE_DAY],
        csv_file(set_value(clean_counts, HUGE_ROW, "y", 1e12)),
    ),
    Case(
        "cli-calls-csv-never-remote-omitted",
        "disposition",
        ["calls=csv"],
        [r"never_remote"],
        drop=["calls.never_remote"],
    ),
    Case(
        "cli-calls-header-only",
        "disposition",
        ["calls=csv", "calls.path={file}"],
        [r"no (calls|rows|data)|empty|header|only"],
        csv_file(header_only(clean_calls)),
    ),
    Case("cli-project-base-year-abc", "project", ["base_year=abc"], [r"base_year", r"abc"]),
    Case(
        "cli-project-all-zero-population",
        "project",
        ["population=csv", "population.path={file}"],
        [r"population", r"zero|\b0\b|no residents"],
        csv_file(edited(clean_population, lambda f: f.assign(population=0))),
    ),
    Case(
        "cli-project-no-population-path",
        "project",
        ["population=csv"],
        [r"population\.path"],
        drop=["population.path"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_entry_point_prints_one_error_line(case, tmp_path, seeded):
    store, run_dir = tmp_path / "store", tmp_path / "run"
    copy_store(seeded[case.app], store)
    db = store / "mlflow.db"
    before, runs_before = state_before(seeded[case.app], db)
    file = case.file(tmp_path) if case.file else None
    overrides = [*merged_overrides(case, store, tmp_path, file), f"hydra.run.dir={run_dir}"]
    env = os.environ | {"MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run(
        [sys.executable, "-m", MODULES[case.app], *overrides],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [
        line.replace(str(tmp_path), "<case folder>") for line in done.stderr.splitlines() if line.strip()
    ]
    wrong, tags = [], []
    if "Traceback" in done.stdout + done.stderr:
        tags.append("traceback")
        wrong.append("a traceback was printed")
    if done.returncode == 0:
        tags.append("silent")
        wrong.append("exit status 0: the bad input was accepted")
    elif done.returncode != 2:
        wrong.append(f"exit status {done.returncode}, not 2")
    if len(lines) != 1 or not lines[0].startswith("error:"):
        wrong.append(f"stderr is {len(lines)} line(s), not one starting 'error:'")
    wrong += [f"lacks /{p}/" for p in case.expect if not (lines and re.search(p, lines[-1], re.IGNORECASE))]
    if wrong and not tags:
        tags.append("unclear")
    if done.returncode != 0:
        left = left_behind(db, before, runs_before, run_dir)
        if left:
            tags.append("half-written")
            wrong += left
    shown = " | ".join(lines[-3:])[:400]
    assert not tags, (
        "".join(f"[{tag}]" for tag in tags) + f" {case.id} ({case.app}, CLI): {'; '.join(wrong)} -- {shown!r}"
    )
