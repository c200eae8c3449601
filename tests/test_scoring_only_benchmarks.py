"""Scoring-only re-runs of the scale benchmarks keep what they did not re-run, and say so."""

from __future__ import annotations

import json

import pytest

from mlops.errors import ConfigError


def test_a_call_level_only_page_keeps_the_committed_forecasting_section_once(tmp_path, monkeypatch):
    from experiments.dask_scale import run as dask_scale

    committed = "# t\n\nload 8\n\n## Forecasting backtests\n\nold table\n\n## Call level\n\nold calls\n"
    (tmp_path / "dask_scale.md").write_text(committed)
    monkeypatch.setattr(dask_scale, "RESULTS", tmp_path)
    new = "# t\n\nload 2\n\n## Forecasting backtests\n\nempty\n\n## Call level\n\nnew calls\n"
    page = dask_scale._kept_forecasting(new)
    assert "load 2" in page and "old table" in page and "new calls" in page
    assert "empty" not in page and "old calls" not in page and page.count("Not re-run in this run") == 1
    # A second call-level-only run keeps the section, and its note, as they are.
    (tmp_path / "dask_scale.md").write_text(page)
    assert dask_scale._kept_forecasting(new) == page


def test_a_scoring_only_run_reuses_an_earlier_runs_answers_and_refuses_an_unfinished_one(tmp_path):
    from experiments.disposition_scale.benchmark import _reused

    earlier, workdir = tmp_path / "earlier", tmp_path / "now"
    (earlier / "store").mkdir(parents=True)
    workdir.mkdir()
    (earlier / "registered_version").write_text("3")
    (earlier / "generate.log").write_text('progress\n{"seconds": 1.0, "peak_gib": 0.5}\n')
    with pytest.raises(ConfigError, match="train.log"):
        _reused(earlier, workdir)
    (earlier / "train.log").write_text(json.dumps({"seconds": 2.0}) + "\nRegistered model\n")
    answers = _reused(earlier, workdir)
    assert answers == {"generate": {"seconds": 1.0, "peak_gib": 0.5}, "train": {"seconds": 2.0}}
    assert (workdir / "registered_version").read_text() == "3" and (workdir / "store").is_dir()
