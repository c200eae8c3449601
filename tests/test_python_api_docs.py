"""Every Python example in docs/python-api.md runs as written, in order, as in one notebook."""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import pytest

from tests.conftest import ROOT

PAGE = ROOT / "docs" / "python-api.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def test_the_page_has_the_notebook_steps():
    blocks = BLOCK.findall(PAGE.read_text())
    code = "\n".join(blocks)
    for step in ("load_daily_counts", ".fit(", ".predict(", "rolling_origin_backtest", "summary_metrics",
                 "forecast_figure", "components_figure"):  # fmt: skip
        assert step in code, f"docs/python-api.md has no example using {step}"


def test_every_example_runs(tmp_path, monkeypatch, capsys):
    (tmp_path / "data").symlink_to(ROOT / "data")  # the page's paths are relative to the repository
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for number, block in enumerate(BLOCK.findall(PAGE.read_text()), start=1):
        try:
            exec(compile(block, f"docs/python-api.md block {number}", "exec"), namespace)  # noqa: S102
        except Exception as error:  # noqa: BLE001 - name the block that failed
            pytest.fail(f"docs/python-api.md block {number} fails: {error!r}\n{block}")
        finally:
            plt.close("all")
    shown = capsys.readouterr().out
    assert "2 series" in shown and "lo_80" in shown and "mase" in shown
    assert (tmp_path / "forecast.png").stat().st_size > 20_000
    assert (tmp_path / "components.png").stat().st_size > 20_000
    forecast, scores = namespace["forecast"], namespace["scores"]
    assert forecast["ds"].nunique() == 28 and (forecast["lo_95"] <= forecast["lo_80"]).all()
    assert 0 < scores["mase"] < 1.5 and 0.5 < scores["coverage_80"] <= 1
