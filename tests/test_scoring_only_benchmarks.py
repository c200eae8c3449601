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


def test_a_forecasting_only_page_keeps_the_committed_call_level_section_once(tmp_path, monkeypatch):
    from experiments.dask_scale import run as dask_scale

    committed = (
        "# t\n\n## Forecasting backtests\n\nold table\n\n## Call level: x\n\nold calls\n\n## Memory\n\nold\n"
    )
    (tmp_path / "dask_scale.md").write_text(committed)
    monkeypatch.setattr(dask_scale, "RESULTS", tmp_path)
    new = "# t\n\n## Forecasting backtests\n\nnew table\n\n## Call level: x\n\nempty\n\n## Memory\n\nnew\n"
    page = dask_scale._kept_calls(new)
    assert "new table" in page and "old calls" in page and page.endswith("## Memory\n\nnew\n")
    assert "empty" not in page and "old table" not in page and page.count("benchmark.params.calls=false") == 1
    (tmp_path / "dask_scale.md").write_text(page)
    assert dask_scale._kept_calls(new) == page


@pytest.mark.parametrize(
    ("areas", "forecasting", "calls", "message"),
    [
        ({"prophet": 2}, True, False, "unknown model"),
        ({"arima": 11}, True, False, "from 1 to n_areas"),
        ({"arima": 0}, True, False, "from 1 to n_areas"),
        (None, False, False, "nothing to run"),
    ],
)
def test_dask_scale_refuses_bad_switches_before_any_work(areas, forecasting, calls, message):
    from experiments.dask_scale.run import _checked_model_areas

    with pytest.raises(ConfigError, match=message):
        _checked_model_areas(areas, 10, forecasting, calls)
    assert _checked_model_areas({"arima": 3}, 10, True, False)["arima"] == 3
    assert _checked_model_areas(None, 10, True, False)["ets"] == 10


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
