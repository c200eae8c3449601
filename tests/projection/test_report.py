"""The planner's report: what the page says is generated from the projection's own values."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pandas as pd
import pytest
from openpyxl import load_workbook

from forecasting.projection.charts import same_lines
from forecasting.projection.history import annual_history
from forecasting.projection.population import scale_to_areas
from forecasting.projection.projector import ProjectionSettings, project_scenarios
from forecasting.projection.report import (
    WORKBOOK,
    ReportContext,
    ReportSection,
    ReportTable,
    area_history,
    build_charts,
    describe_scenario,
    render_html,
    write_workbook,
)
from tests.projection.conftest import scenario


@pytest.fixture(scope="module")
def report(fitted, ons_population, synthetic_daily, tmp_path_factory):
    """A two-scenario report on the synthetic history, a trust of 4.6 M, written beside its tables."""
    rates, shape = fitted
    england = ons_population[ons_population["year"].between(rates.last_year_, 2030)]
    population = scale_to_areas(england, {"trust": 4_600_000}, 2025)  # the synthetic trust's size
    principal = scenario("principal")
    lever = scenario(
        "more_remote_closure",
        description="stale free text: rising evenly from 20 % to 30 % of calls by 2035",
        remote_closure={"start_share": 0.2, "end_share": 0.35, "end_year": 2029},
    )
    settings = ProjectionSettings(base_year=2025, horizon_years=5, n_paths=60, seed=1)
    projection = project_scenarios(rates, shape, population, [principal, lever], settings)
    history = annual_history(synthetic_daily[["area", "ds", "y"]])
    charts = build_charts(projection, "principal", history)
    out = tmp_path_factory.mktemp("report")
    tables = {"projection_by_year.csv": projection.annual, "peak_days.csv": projection.peaks}
    for name, table in tables.items():
        table.to_csv(out / name, index=False)
    write_workbook(out / WORKBOOK, tables)
    for name, png in charts.items():
        (out / name).write_bytes(png)
    context = ReportContext(
        title="Ambulance demand projection",
        headline="principal",
        population_note="ONS <principal> & co",
        history_note="From the synthetic history.",
        rates=rates,
        shape=shape,
        history=history,
        synthetic_history=True,
        command="python -m forecasting.project",
        files=[*tables, WORKBOOK, *charts],
        sections=[
            ReportSection(
                "Workforce",
                ["Crews by hour."],
                [ReportTable("Crews needed", ["Hour", "Crews"], [["08:00", "41"]], note="A note.")],
                ["scenarios_trust.png"],
            )
        ],
    )
    html = render_html(projection, context, charts)
    (out / "report.html").write_text(html)
    return html, projection, charts, out


def test_banner_years_and_escaping(report):
    html, projection, _, _ = report
    assert "Synthetic history: these figures are not a real service" in html
    assert html.index('class="banner"') < html.index("<h1>")
    years = f"{projection.first_year}-{projection.settings.final_year}"
    assert f"<title>Ambulance demand projection {years}</title>" in html
    assert f"<h1>Ambulance demand projection {years}</h1>" in html
    assert "Projected 2024&ndash;2030" in html and "2026-2030" not in html
    assert "ONS &lt;principal&gt; &amp; co" in html  # autoescaped


def test_scenario_text_comes_from_resolved_values(report, fitted):
    html, projection, _, _ = report
    lever = projection.scenarios[1]
    sentence = "moving evenly to 35% by 2029"
    assert sentence in " ".join(describe_scenario(lever, fitted[0], 2025))
    # The scenario list at the top and the assumptions both say it; the stale free text is gone.
    assert html.count(sentence) == 2
    assert "stale free text" not in html
    assert "closing 35% of calls remotely by 2029" in html


def test_every_projected_figure_has_its_range(report):
    html, projection, _, _ = report
    annual = projection.annual
    row = annual[(annual["scenario"] == "principal") & (annual["year"] == 2030)]
    amb = row[row["measure"] == "needs_ambulance"].iloc[0]
    assert f"({amb['p10']:,.0f}&ndash;{amb['p90']:,.0f}) would need an ambulance" in html
    for scenario_name in ("principal", "more_remote_closure"):
        for measure in ("C1", "C4", "needs_ambulance"):
            r = annual[(annual["scenario"] == scenario_name) & (annual["year"] == 2030)]
            r = r[r["measure"] == measure].iloc[0]
            assert f'{r["mean"]:,.0f}<br><span class="small">{r["p10"]:,.0f}&ndash;{r["p90"]:,.0f}' in html


def test_c1_to_c4_for_every_scenario_and_history_first(report):
    html, _, _, _ = report
    split = html[html.index("What the 2030 calls are") :]
    split = split[: split.index("</table>")]
    assert split.count("<tr>") == 3  # header + both scenarios
    assert "more_remote_closure" in split and "C4" in split
    assert "2018 (actual)" in html and html.index("2023 (actual)") < html.index("<td>2024</td>")
    assert "Every day of" not in html  # the unreadable daily year is replaced by months


def test_scenarios_sharing_calls_are_drawn_as_one_named_line(report):
    _, projection, _, _ = report
    assert same_lines(projection.annual, "calls") == [["principal", "more_remote_closure"]]
    assert same_lines(projection.annual, "needs_ambulance") == [["principal"], ["more_remote_closure"]]


def test_charts_embedded_tables_linked_and_extra_sections(report):
    html, _, charts, out = report
    sources = re.findall(r'<img[^>]* src="([^"]+)"', html)
    assert len(sources) == 1 + 2 + 1 + 1  # scenarios, two fans, age bands, the extra section's chart
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from elsewhere
    links = re.findall(r'<a href="([^"#]+)"', html)
    assert set(links) == {"projection_by_year.csv", "peak_days.csv", WORKBOOK, *charts}
    assert all((out / link).is_file() for link in links)  # relative paths next to the HTML
    assert "<h2>Workforce</h2>" in html and "Crews needed" in html and "A note." in html
    parser = HTMLParser()
    parser.feed(html)  # well-formed enough to parse


def test_workbook_holds_every_table(report):
    _, projection, _, out = report
    book = load_workbook(out / WORKBOOK, read_only=True)
    assert book.sheetnames == ["projection_by_year", "peak_days"]
    sheet = pd.read_excel(out / WORKBOOK, sheet_name="projection_by_year")
    assert len(sheet) == len(projection.annual)
    assert list(sheet.columns) == list(projection.annual.columns)


def test_workbook_sheet_names_are_valid_and_unique(tmp_path):
    frame = pd.DataFrame({"a": [1]})
    long = "a_very_long_table_name_beyond_thirty_one"
    names = {f"{long}.csv": frame, f"{long}_x.csv": frame, "x[1]?.csv": frame}
    write_workbook(tmp_path / "w.xlsx", names)
    sheets = load_workbook(tmp_path / "w.xlsx", read_only=True).sheetnames
    assert len(set(sheets)) == 3 and all(len(s) <= 31 and not set(s) & set("[]:*?/\\") for s in sheets)


def test_history_is_drawn_only_for_the_same_residents():
    history = pd.DataFrame(
        {"area": ["a", "b", "a", "b"], "year": [2022, 2022, 2023, 2023], "calls": [50, 50, 60, 40]}
    )
    own = area_history(history, "a", 3, "total", first_projected=10.0)
    assert own["calls"].tolist() == [50, 60]  # an area's own history, whatever its size
    assert area_history(history, "total", 3, "total", first_projected=102.0)["calls"].tolist() == [100, 100]
    assert area_history(history, "trust", 1, "total", first_projected=103.0) is not None
    # Areas sized by hand from another trust's history: its calls are not theirs, so none is drawn.
    assert area_history(history, "total", 3, "total", first_projected=40.0) is None
    assert area_history(history, "north", 3, "total", first_projected=100.0) is None
