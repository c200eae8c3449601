"""The workforce section of the projection report: tables and an hour-by-weekday heatmap (pipeline
layer: it formats :mod:`forecasting.projection.workforce` results for the report's sections hook)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from forecasting.projection.charts import figure_png  # noqa: E402
from forecasting.projection.report import ReportSection, ReportTable  # noqa: E402
from forecasting.projection.workforce import Workforce, heatmap_table  # noqa: E402

HEATMAP = "workforce_heatmap.png"
COLUMNS = {
    "incidents_face_to_face": "Incidents needing a face-to-face response (a year)",
    "ambulance_hours": "Ambulance hours (a year)",
    "vehicles_peak_hour": "Ambulances on shift, busiest winter hour",
    "crew_peak_hour": "Crew members on shift, busiest winter hour",
    "clinicians_peak_hour": "Hub clinicians, busiest winter hour",
}


def heatmap_chart(workforce: Workforce, area: str, scenario: str, year: int) -> bytes:
    """Ambulances and hub clinicians on shift by hour and weekday, typical winter week (expected)."""
    figure, axes = plt.subplots(2, 1, figsize=(11, 6.2), constrained_layout=True)
    for ax, column, title in (
        (axes[0], "vehicles", "Ambulances on shift"),
        (axes[1], "clinicians", "Clinical hub clinicians"),
    ):
        table = heatmap_table(workforce.by_hour, area, scenario, year, column)
        image = ax.imshow(table.to_numpy(dtype=float), aspect="auto", cmap="YlOrRd")
        ax.set_yticks(range(7), table.index)
        ax.set_xticks(range(24), [f"{h:02d}" for h in range(24)])
        ax.set_xlabel("hour of day")
        ax.set_title(f"{title}, {area}, {scenario}, typical winter week {year}")
        for (row, col), value in np.ndenumerate(table.to_numpy(dtype=float)):
            ax.text(col, row, f"{value:.0f}", ha="center", va="center", fontsize=6.5)
        figure.colorbar(image, ax=ax, shrink=0.8)
    return figure_png(figure)


def _cell(row: pd.Series, low: str, high: str) -> str:
    return f"{row['mean']:,.0f} ({row[low]:,.0f}-{row[high]:,.0f})"


def workforce_section(
    workforce: Workforce, area: str, headline: str, base_year: int, final_year: int, labels: Sequence[str]
) -> tuple[ReportSection, dict[str, bytes]]:
    """The report section and its chart for ``area`` (the trust total when there is one)."""
    s = workforce.settings
    low, high = labels[0], labels[-1]
    table = workforce.by_year[workforce.by_year["area"] == area].set_index(["scenario", "year", "measure"])
    scenarios = list(dict.fromkeys(workforce.by_year["scenario"]))
    by_scenario = [
        [name, *[_cell(table.loc[(name, final_year, m)], low, high) for m in COLUMNS]] for name in scenarios
    ]
    years = [y for y in sorted(workforce.by_year["year"].unique()) if y >= base_year]
    by_year = [[str(y), *[_cell(table.loc[(headline, y, m)], low, high) for m in COLUMNS]] for y in years]
    cycle = s.job_cycle
    travel = ", ".join(f"{c} {m:g}" for c, m in cycle.travel.items())
    paragraphs = [
        "Incidents needing a face-to-face response are the calls not closed by telephone, split by the "
        "scenario's category mix. Each keeps an ambulance busy for its job cycle: travel to the scene "
        f"({travel} minutes), {cycle.on_scene:g} minutes on scene and, for those conveyed, "
        f"{cycle.to_hospital:g} minutes to hospital, {cycle.handover:g} minutes handover and "
        f"{cycle.clear:g} minutes clearing up.",
        f"Ambulances on shift in an hour = incidents arriving per hour x job cycle (the average number "
        f"busy) / {s.utilisation:.0%} target utilisation, rounded up; crew = ambulances x {s.crew_size}. "
        "Calls spread over the hours of each weekday of a typical winter week (December-February outside "
        "the Christmas-New Year fortnight) with the hour-of-day profile.",
        f"Hub clinicians: calls assessed = calls closed by telephone / {s.hub.closure_rate:.0%} (the share "
        f"of assessed calls closed remotely), {s.hub.assessment_min:g} minutes each; enough clinicians "
        f"to answer {s.hub.target:.0%} within {s.hub.answer_within_min:g} minutes ("
        + (
            "Erlang C: nobody hangs up"
            if s.hub.patience_min is None
            else f"Erlang A: callers hang up after {s.hub.patience_min:g} minutes on average, "
            "and one who does is not answered in time"
        )
        + "; checked against the dispatch simulation, experiments/results/projection_workforce_erlang.md).",
        f"Each figure is for the expected calls, with the {low}-{high} range of the projection in "
        "brackets. Defaults are round figures and judgements (conf/workforce/default.yaml): set your "
        "own job-cycle times, utilisation and hub targets.",
    ]
    header = ["Scenario", *COLUMNS.values()]
    section = ReportSection(
        "Workforce",
        paragraphs,
        [
            ReportTable(f"{area}: workforce in {final_year}, every scenario", header, by_scenario),
            ReportTable(
                f"{area}, {headline}: workforce by year", ["Year", *COLUMNS.values()], by_year, note=""
            ),
        ],
        [HEATMAP],
    )
    return section, {HEATMAP: heatmap_chart(workforce, area, headline, final_year)}
