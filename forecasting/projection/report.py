"""The planner's report: one self-contained HTML page (charts embedded), readable offline, rendered from
the Jinja2 templates in ``templates/``; the tables beside it as links and as one xlsx workbook.

It answers, per area: how many calls each year under each scenario, after the history, and how sure
we are; how many incidents still need an ambulance with and without more remote closure; how the
calls split into categories C1-C4 and dispositions; how busy the peak days get; where the growth
comes from (age); and what was assumed, in words generated from the same resolved values the
projection used. Other modules add sections (e.g. workforce) through ``ReportContext.sections``.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from openpyxl import Workbook

from forecasting.io import atomic_write
from forecasting.projection.bands import bands_in_range
from forecasting.projection.charts import age_band_chart, fan_chart, figure_png, scenario_chart
from forecasting.projection.daily_shape import DailyShape, days_in_year
from forecasting.projection.projector import Projection
from forecasting.projection.rates import AgeRateModel
from forecasting.projection.scenario import Scenario
from forecasting.projection.splits import PLAIN_NAMES
from forecasting.synthetic import CATEGORIES
from mlops.errors import DataValidationError

TEMPLATES = Path(__file__).with_name("templates")
WORKBOOK = "projection.xlsx"
AGE_GROUPS = ("65-84", "85+")
DISPOSITIONS = ("hear_and_treat", "see_and_treat", "conveyed", "needs_ambulance")
EXCEL_MAX_ROWS = 1_048_575  # below the header row
# The default name of the trust total the projector adds over several areas (its `total_name`).
TOTAL_AREA = "total"
# A history more than this far from an area's first projected year is not that area's own (one
# year's change in calls is a few per cent).
SAME_POPULATION = 0.2


@dataclass(frozen=True)
class ReportTable:
    """A table for an extra section: header and rows of already formatted cells (text, escaped)."""

    caption: str
    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    note: str = ""


@dataclass(frozen=True)
class ReportSection:
    """A section another module adds after the areas (e.g. the workforce a scenario needs).

    Attributes
    ----------
    title : str
    paragraphs : sequence of str
        Plain text, escaped in the page.
    tables : sequence of ReportTable
    charts : sequence of str
        File names of charts in the ``charts`` given to :func:`render_html` (embedded in the page).
    """

    title: str
    paragraphs: Sequence[str] = ()
    tables: Sequence[ReportTable] = ()
    charts: Sequence[str] = ()


@dataclass(frozen=True)
class ReportContext:
    """What the report needs besides the projection.

    Attributes
    ----------
    title : str
        Page title without years, e.g. "Ambulance demand projection"; the projected years are
        added from the projection so title and text always agree.
    headline : str
        Name of the scenario the report leads with.
    population_note : str
        Where the population comes from, with its licence attribution.
    history_note : str
        What history the rates and daily shape were estimated from.
    rates : AgeRateModel
    shape : DailyShape
    history : DataFrame, optional
        ``area, year, calls`` of the history's complete years, drawn before the projection: an area
        with the same name gets its own history, a projection of one area (or the trust total)
        the history areas added up.
    synthetic_history : bool
        The history is the synthetic world: the page then says so in a banner at the top.
    backtest_note : str
        One sentence on how the method did when the truth was known.
    command : str
        The command that reproduces the run.
    files : list of str
        Output files beside the report (relative names), linked at the end.
    sections : list of ReportSection
        Extra sections, shown after the areas and before the assumptions.
    total_area : str or None
        The area name of the trust total over several areas, when the projection has one: it is
        shown first, with the history areas added up as its history.
    """

    title: str
    headline: str
    population_note: str
    history_note: str
    rates: AgeRateModel
    shape: DailyShape
    history: pd.DataFrame | None = None
    synthetic_history: bool = False
    backtest_note: str = ""
    command: str = ""
    files: list[str] = field(default_factory=list)
    sections: list[ReportSection] = field(default_factory=list)
    total_area: str | None = TOTAL_AREA


def page_title(projection: Projection, title: str) -> str:
    """The title with the projected years, the same years the text uses."""
    return f"{title} {projection.first_year}-{projection.settings.final_year}"


def area_history(
    history: pd.DataFrame | None,
    area: str,
    n_areas: int,
    total_area: str | None = TOTAL_AREA,
    first_projected: float | None = None,
) -> pd.DataFrame | None:
    """The history to draw before an area's projection: its own, or all history areas added up when
    the projection is one area or the total (a trust projected as a whole); None when neither fits.

    The history areas added up are drawn only when they are the same population as the projected
    area: when their last year is more than ``SAME_POPULATION`` away from the area's first projected
    year (``first_projected``, expected calls), the projection is for other residents (e.g. two
    areas sized by hand from the synthetic trust) and the history line would mislead.
    """
    if history is None or not len(history):
        return None
    own = history[history["area"].astype(str) == area]
    if len(own):
        return own.groupby("year", as_index=False)["calls"].sum()
    if n_areas == 1 or area == total_area:
        whole = history.groupby("year", as_index=False)["calls"].sum()
        last = float(whole["calls"].iloc[-1])
        if first_projected is not None and abs(first_projected / last - 1) > SAME_POPULATION:
            return None
        return whole
    return None


def build_charts(
    projection: Projection,
    headline: str,
    history: pd.DataFrame | None = None,
    total_area: str | None = TOTAL_AREA,
) -> dict[str, bytes]:
    """PNG charts by file name, per area: the scenarios after the history, each scenario's fans and
    months, and the age bands of the leading scenario."""
    s = projection.settings
    charts = {}
    areas = list(projection.annual["area"].unique())
    for area in areas:
        annual = projection.annual[projection.annual["area"] == area]
        past = area_history(history, str(area), len(areas), total_area, _first_calls(projection, area))
        daily = projection.daily[projection.daily["area"] == area]
        charts[f"scenarios_{area}.png"] = figure_png(
            scenario_chart(annual, s.labels, s.base_year, f"{area}: history and scenarios", past)
        )
        for scenario in annual["scenario"].unique():
            charts[f"fan_{area}_{scenario}.png"] = figure_png(
                fan_chart(
                    annual[annual["scenario"] == scenario],
                    daily[daily["scenario"] == scenario],
                    s.labels,
                    f"{area}: {scenario}",
                    past,
                )
            )
        by_band = projection.by_band
        bands = by_band[(by_band["area"] == area) & (by_band["scenario"] == headline)]
        if len(bands):
            charts[f"age_bands_{area}.png"] = figure_png(
                age_band_chart(bands, s.base_year, s.final_year, f"{area}, {headline}: calls by age band")
            )
    return charts


def render_html(projection: Projection, context: ReportContext, charts: Mapping[str, bytes]) -> str:
    """The whole report as one HTML string, charts embedded as base64 PNGs (nothing fetched)."""
    s = projection.settings
    areas = [str(a) for a in projection.annual["area"].unique()]
    total = context.total_area
    areas.sort(key=lambda a: a != total)  # the trust total first, then the areas as projected
    views = [_area_view(projection, context, area, len(areas)) for area in areas]
    page = {
        "title": page_title(projection, context.title),
        "first_year": projection.first_year,
        "base_year": s.base_year,
        "final_year": s.final_year,
        "lo": s.labels[0].upper(),
        "hi": s.labels[-1].upper(),
        "coverage": s.quantiles[-1] - s.quantiles[0],
        "headline": context.headline,
        "synthetic": context.synthetic_history,
        "several_areas": len(areas) > 1,
        "has_total": total in areas,
        "areas": views,
        "sections": context.sections,
        "assumptions": _assumptions(projection, context),
        "backtest_note": context.backtest_note,
        "command": context.command,
        "files": context.files,
        "workbook": WORKBOOK if WORKBOOK in context.files else None,
    }
    return _environment(charts).get_template("report.html.j2").render(page=page)


def write_workbook(path: Path, tables: Mapping[str, pd.DataFrame]) -> None:
    """The report's tables as one xlsx workbook, a sheet per table (named after its file), written
    atomically; a planner who gets the report by email gets every table in one attachment."""
    used: set[str] = set()

    def sheet_name(name: str) -> str:
        # Excel: at most 31 characters, none of []:*?/\ ; names must be unique.
        base = "".join("_" if c in "[]:*?/\\" else c for c in Path(name).stem)[:31] or "table"
        candidate, n = base, 1
        while candidate.lower() in used:
            n += 1
            candidate = f"{base[: 31 - len(str(n)) - 1]}_{n}"
        used.add(candidate.lower())
        return candidate

    for name, table in tables.items():
        if len(table) > EXCEL_MAX_ROWS:
            raise DataValidationError(
                f"{name}: {len(table):,} rows do not fit an Excel sheet ({EXCEL_MAX_ROWS:,}); "
                "use the CSV beside the report"
            )

    def write(handle) -> None:
        # openpyxl's write-only mode streams rows: pandas' to_excel builds every cell with its style
        # first, which made the workbook about 40 % of a projection run (1.6x faster measured).
        book = Workbook(write_only=True)
        for name, table in tables.items():
            sheet = book.create_sheet(sheet_name(name))
            sheet.append([str(column) for column in table.columns])
            cells = table.astype(object).where(table.notna(), None)  # a missing value: an empty cell
            for row in cells.itertuples(index=False, name=None):
                sheet.append(row)
        book.save(handle)

    atomic_write(path, write, mode="wb")


def _environment(charts: Mapping[str, bytes]) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True),
        undefined=StrictUndefined,  # a misspelt field fails the run, never renders as blank
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(n=_n, signed=_signed, pct=_pct)
    env.globals["chart"] = lambda name: _data_uri(charts.get(name))
    return env


def _area_view(projection: Projection, context: ReportContext, area: str, n_areas: int) -> dict:
    """Everything the template shows for one area, as plain values."""
    v = _Lookup(projection, area)
    s = projection.settings
    head, base, final = context.headline, s.base_year, s.final_year
    names = v.names
    scenarios = {sc.name: sc for sc in projection.scenarios}
    today = scenarios[names[0]].remote_closure.start_share
    past = area_history(context.history, area, n_areas, context.total_area, _first_calls(projection, area))
    return {
        "name": area,
        "anchor": "area-" + "".join(c if c.isalnum() else "-" for c in area),
        "is_total": area == context.total_area,
        "headline": {
            "calls": v.cell(head, final, "calls"),
            "growth": v.growth_cell(head, "calls"),
            "needs_ambulance": v.cell(head, final, "needs_ambulance"),
            "peak_day": v.peak_cell(head, final, "peak_day"),
            "busiest_week": v.peak_cell(head, final, "busiest_week"),
            "average_day": v.value(head, final, "calls") / days_in_year(final),
            "peak_quantile": s.peak_quantile,
        },
        "history": _history_rows(past),
        "scenario_rows": [
            {
                "name": name,
                "summary": " ".join(describe_scenario(scenarios[name], context.rates, base)[:3]),
                "calls_base": v.cell(name, base, "calls"),
                "calls_final": v.cell(name, final, "calls"),
                "growth": v.growth_cell(name, "calls"),
                "needs_ambulance": v.cell(name, final, "needs_ambulance"),
                "needs_ambulance_no_change": v.cell(name, final, "needs_ambulance_no_change"),
                "peak_day": v.peak_cell(name, final, "peak_day"),
                "busiest_week": v.peak_cell(name, final, "busiest_week"),
            }
            for name in names
        ],
        "today_share": today,
        "remote_closure": _remote_closure(v, scenarios, s.base_year, final),
        "years": [
            {
                "year": year,
                "calls": v.cell(head, year, "calls"),
                "needs_ambulance": v.cell(head, year, "needs_ambulance"),
                "peak_day": v.peak_cell(head, year, "peak_day"),
                "busiest_day": v.peak_cell(head, year, "busiest_day"),
                "busiest_week": v.peak_cell(head, year, "busiest_week"),
            }
            for year in range(projection.first_year, final + 1)
        ],
        "split_header": [PLAIN_NAMES.get(m, m) for m in (*CATEGORIES, *DISPOSITIONS)],
        "splits": [
            {"name": name, "cells": [v.cell(name, final, m) for m in (*CATEGORIES, *DISPOSITIONS)]}
            for name in names
        ],
        "charts": {
            "scenarios": f"scenarios_{area}.png",
            "headline_fan": f"fan_{area}_{head}.png",
            "other_fans": [(name, f"fan_{area}_{name}.png") for name in names if name != head],
            "age_bands": f"age_bands_{area}.png",
        },
        "age": _age(v, head, base, final),
    }


def _first_calls(projection: Projection, area: str) -> float:
    """Expected calls of ``area`` in the first projected year (the same in every scenario)."""
    a = projection.annual
    rows = a[
        (a["area"].astype(str) == area) & (a["year"] == projection.first_year) & (a["measure"] == "calls")
    ]
    return float(rows["mean"].iloc[0])


class _Lookup:
    """One area's slices of the projection, with lookups by scenario, year and measure."""

    def __init__(self, projection: Projection, area: str):
        self.labels = projection.settings.labels
        self.annual, self.growth, self.peaks, self.by_band, self.population = (
            frame[frame["area"].astype(str) == area]
            for frame in (
                projection.annual,
                projection.growth,
                projection.peaks,
                projection.by_band,
                projection.population,
            )
        )
        self.names = [str(n) for n in self.annual["scenario"].unique()]
        self._annual = self.annual.set_index(["scenario", "year", "measure"]).sort_index()
        self._growth = self.growth.set_index(["scenario", "measure"]).sort_index()
        self._peaks = self.peaks.set_index(["scenario", "year", "statistic"]).sort_index()

    def value(self, scenario: str, year: int, measure: str, column: str = "mean") -> float:
        return float(self._annual.loc[(scenario, year, measure), column])

    def cell(self, scenario: str, year: int, measure: str) -> dict:
        """Expected value and the outer quantile range, for a table cell."""
        row = self._annual.loc[(scenario, year, measure)]
        return _cell(row, self.labels)

    def growth_cell(self, scenario: str, measure: str) -> dict:
        return _cell(self._growth.loc[(scenario, measure)], self.labels)

    def peak_cell(self, scenario: str, year: int, statistic: str) -> dict:
        return _cell(self._peaks.loc[(scenario, year, statistic)], self.labels)


def _cell(row: pd.Series, labels: Sequence[str]) -> dict:
    return {"mean": float(row["mean"]), "lo": float(row[labels[0]]), "hi": float(row[labels[-1]])}


def _history_rows(past: pd.DataFrame | None) -> list[dict]:
    if past is None:
        return []
    return [{"year": int(r.year), "calls": float(r.calls)} for r in past.sort_values("year").itertuples()]


def _remote_closure(v: _Lookup, scenarios: Mapping[str, Scenario], base_year: int, final: int) -> list[dict]:
    rows = []
    for name in v.names:
        rc = scenarios[name].remote_closure
        if rc.end_share == rc.start_share:
            continue
        with_more = v.cell(name, final, "needs_ambulance")
        without = v.cell(name, final, "needs_ambulance_no_change")
        rows.append(
            {
                "name": name,
                "start_share": rc.start_share,
                "end_share": rc.end_share,
                "end_year": rc.end_year,
                "share_in_final": float(rc.share([final], base_year)[0]),
                "with_more": with_more,
                "without": without,
                "fewer": without["mean"] - with_more["mean"],
                "change": with_more["mean"] / without["mean"] - 1,
            }
        )
    return rows


def _age(v: _Lookup, head: str, base: int, final: int) -> dict:
    bands = list(dict.fromkeys(v.population["age_band"]))
    growth = []
    for name in v.names:
        rows = v.population[v.population["scenario"] == name]
        parts = [("all ages", _group_growth(rows, bands, None, base, final))]
        for group in AGE_GROUPS:
            try:
                parts.append((group, _group_growth(rows, bands, group, base, final)))
            except DataValidationError:  # a user's bands may not split at 65 or 85
                continue
        growth.append({"name": name, "parts": parts})
    share = None
    try:
        old = bands_in_range(bands, "85+")
        calls = v.by_band[v.by_band["scenario"] == head]
        share = {
            year: float(
                calls[(calls["year"] == year) & calls["age_band"].isin(old)]["calls"].sum()
                / calls[calls["year"] == year]["calls"].sum()
            )
            for year in (base, final)
        }
    except DataValidationError:
        pass
    return {"growth": growth, "share_85": share}


def describe_scenario(sc: Scenario, rates: AgeRateModel, base_year: int) -> list[str]:
    """The scenario's assumptions as sentences, from its resolved values (never from free text, which
    an override would leave stale): population, use per person, remote closure, categories.

    The first three sentences are the scenario table's "What it assumes"; all of them are the
    assumptions section's, so the two always say the same.
    """
    last = rates.last_year_
    words = []
    if sc.ageing:
        scaled = ", ".join(f"ages {k} grow {v:g} times as much as projected" for k, v in sc.ageing.items())
        words.append(f"Population: {scaled} (after {last}).")
    else:
        words.append("Population: as projected.")
    if sc.rate_trend_per_year is None:
        words.append(
            f"Use per person: keeps the fitted trend ({_signed(math.expm1(rates.trend_), 2)} a year)."
        )
    elif sc.rate_trend_per_year == 0:
        words.append(f"Use per person: held at its {last} level (only the population changes demand).")
    else:
        words.append(f"Use per person: {_signed(sc.rate_trend_per_year, 2)} a year after {last}.")
    rc = sc.remote_closure
    if rc.end_share == rc.start_share:
        words.append(f"Remote closure: {_pct(rc.start_share)} of calls throughout.")
    else:
        words.append(
            f"Remote closure: {_pct(rc.start_share)} of calls in {base_year}, moving evenly to "
            f"{_pct(rc.end_share)} by {rc.end_year}."
        )
    mix = "/".join(f"{sc.category_mix[c]:.1%}" for c in CATEGORIES)
    conveyed = sc.attended_split["conveyed"]
    words.append(f"Categories C1/C2/C3/C4 {mix}; of incidents attended, {conveyed:.0%} conveyed to hospital.")
    return words


def _assumptions(projection: Projection, context: ReportContext) -> dict:
    s = projection.settings
    rates = context.rates
    low, high = rates.trend_interval()
    weekday = context.shape.weekday_profile()
    return {
        "population": context.population_note,
        "history": context.history_note,
        "trend": math.expm1(rates.trend_),
        "trend_low": low,
        "trend_high": high,
        "last_year": rates.last_year_,
        "busiest_weekday": weekday.idxmax(),
        "busiest_weekday_lift": weekday.max() - 1,
        "quietest_weekday": weekday.idxmin(),
        "quietest_weekday_lift": weekday.min() - 1,
        "scenarios": [
            {"name": sc.name, "sentences": describe_scenario(sc, rates, s.base_year)}
            for sc in projection.scenarios
        ],
        "n_paths": s.n_paths,
        "population_sd": s.population_sd,
    }


def _group_growth(rows: pd.DataFrame, bands: list[str], group: str | None, base: int, final: int) -> float:
    members = bands if group is None else bands_in_range(bands, group)
    totals = rows[rows["age_band"].isin(members)].groupby("year")["population"].sum()
    return float(totals[final] / totals[base] - 1)


def _data_uri(png: bytes | None) -> str | None:
    if not png:
        return None
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _signed(fraction: float, digits: int = 1) -> str:
    return f"{fraction:+.{digits}%}"


def _pct(fraction: float) -> str:
    """A share as a whole percentage, or with one decimal when that is what was set (0.355)."""
    text = f"{fraction:.0%}"
    return text if abs(round(fraction * 100) - fraction * 100) < 1e-9 else f"{fraction:.1%}"
