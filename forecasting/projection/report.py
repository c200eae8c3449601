"""The planner's report: one self-contained HTML page (charts embedded), readable offline.

It answers, per area: how many calls in the final year under each scenario and how sure we are;
how many incidents still need an ambulance with and without more remote closure; how busy the peak
days get; where the growth comes from (age); and what was assumed, in plain words.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field

import pandas as pd

from forecasting.projection.bands import bands_in_range
from forecasting.projection.charts import age_band_chart, fan_chart, figure_png, scenario_chart
from forecasting.projection.daily_shape import DailyShape, days_in_year
from forecasting.projection.projector import Projection
from forecasting.projection.rates import AgeRateModel
from forecasting.projection.scenario import Scenario
from forecasting.projection.splits import PLAIN_NAMES
from forecasting.synthetic import CATEGORIES
from mlops.errors import DataValidationError

AGE_GROUPS = ("65-84", "85+")
_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.3em .6em}
th{background:#f3f3f3;text-align:left}td.n{text-align:right;white-space:nowrap}
.headline{background:#eef5fb;border-left:4px solid #1f77b4;padding:.8em 1em;margin:1em 0}
img{max-width:100%}.small{font-size:.85em;color:#555}
"""


@dataclass(frozen=True)
class ReportContext:
    """What the report needs besides the projection.

    Attributes
    ----------
    title : str
        Page title, e.g. "Ambulance demand projection 2026-2035".
    headline : str
        Name of the scenario the report leads with.
    population_note : str
        Where the population comes from, with its licence attribution.
    history_note : str
        What history the rates and daily shape were estimated from.
    rates : AgeRateModel
    shape : DailyShape
    backtest_note : str
        One sentence on how the method did when the truth was known.
    command : str
        The command that reproduces the run.
    files : list of str
        Output files, listed at the end.
    """

    title: str
    headline: str
    population_note: str
    history_note: str
    rates: AgeRateModel
    shape: DailyShape
    backtest_note: str = ""
    command: str = ""
    files: list[str] = field(default_factory=list)


def build_charts(projection: Projection, headline: str) -> dict[str, bytes]:
    """PNG charts by file name: scenario comparison, each scenario's fan and the age bands, per area."""
    s = projection.settings
    charts = {}
    for area in projection.annual["area"].unique():
        annual = projection.annual[projection.annual["area"] == area]
        daily = projection.daily[projection.daily["area"] == area]
        charts[f"scenarios_{area}.png"] = figure_png(
            scenario_chart(annual, s.labels, s.base_year, f"{area}: scenarios compared")
        )
        for scenario in annual["scenario"].unique():
            charts[f"fan_{area}_{scenario}.png"] = figure_png(
                fan_chart(
                    annual[annual["scenario"] == scenario],
                    daily[daily["scenario"] == scenario],
                    s.labels,
                    f"{area}: {scenario}",
                )
            )
        by_band = projection.by_band
        bands = by_band[(by_band["area"] == area) & (by_band["scenario"] == headline)]
        charts[f"age_bands_{area}.png"] = figure_png(
            age_band_chart(bands, s.base_year, s.final_year, f"{area}, {headline}: calls by age band")
        )
    return charts


def render_html(projection: Projection, context: ReportContext, charts: dict[str, bytes]) -> str:
    """The whole report as one HTML string with the charts embedded as base64 PNGs."""
    s = projection.settings
    lo, hi = s.labels[0].upper(), s.labels[-1].upper()
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(context.title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(context.title)}</h1>",
        f"<p class='small'>Projected {projection.first_year}-{s.final_year}; growth is measured from "
        f"{s.base_year} (&ldquo;today&rdquo;) to {s.final_year}. Leading scenario: "
        f"<b>{_e(context.headline)}</b>. Ranges are {lo}-{hi}: {s.quantiles[-1] - s.quantiles[0]:.0%} of "
        "simulated futures fall inside them.</p>",
    ]
    for area in projection.annual["area"].unique():
        view = _AreaView(projection, str(area))
        parts += [
            f"<h2>{_e(area)}</h2>",
            _headline_box(view, context.headline),
            _scenario_table(view),
            _img(charts.get(f"scenarios_{area}.png"), "scenarios compared"),
            _remote_closure_section(view),
            _year_table(view, context.headline),
            _img(charts.get(f"fan_{area}_{context.headline}.png"), f"fan chart {context.headline}"),
            _split_table(view, context.headline),
            _age_section(view, context.headline),
            _img(charts.get(f"age_bands_{area}.png"), "calls by age band"),
        ]
    parts += [_assumptions(projection, context), "</body></html>"]
    return "\n".join(parts)


class _AreaView:
    """One area's slices of the projection, with lookups by scenario, year and measure."""

    def __init__(self, projection: Projection, area: str):
        self.area = area
        self.settings = projection.settings
        self.first_year = projection.first_year
        self.scenarios = {sc.name: sc for sc in projection.scenarios}
        pick = {
            name: getattr(projection, name) for name in ("annual", "growth", "peaks", "by_band", "population")
        }
        self.annual, self.growth, self.peaks, self.by_band, self.population = (
            frame[frame["area"] == area] for frame in pick.values()
        )
        self.names = list(self.annual["scenario"].unique())
        self.lo, self.hi = self.settings.labels[0], self.settings.labels[-1]

    def value(self, scenario: str, year: int, measure: str, column: str = "mean") -> float:
        a = self.annual
        return float(
            a[(a["scenario"] == scenario) & (a["year"] == year) & (a["measure"] == measure)][column].iloc[0]
        )

    def grown(self, scenario: str, measure: str, column: str = "mean") -> float:
        g = self.growth
        return float(g[(g["scenario"] == scenario) & (g["measure"] == measure)][column].iloc[0])

    def peak(self, scenario: str, year: int, statistic: str) -> float:
        p = self.peaks
        return float(
            p[(p["scenario"] == scenario) & (p["year"] == year) & (p["statistic"] == statistic)]["mean"].iloc[
                0
            ]
        )

    def span(self, scenario: str, year: int, measure: str) -> str:
        low, high = (self.value(scenario, year, measure, q) for q in (self.lo, self.hi))
        return f"{_n(low)}-{_n(high)}"

    def growth_span(self, scenario: str, measure: str) -> str:
        low, high = (self.grown(scenario, measure, q) for q in (self.lo, self.hi))
        return f"{_signed(low)} to {_signed(high)}"


def _headline_box(v: _AreaView, head: str) -> str:
    s = v.settings
    final = s.final_year
    calls = v.value(head, final, "calls")
    return (
        "<div class='headline'>"
        f"Under <b>{_e(head)}</b>, {_e(v.area)} is projected to have <b>{_n(calls)}</b> calls in {final} "
        f"({v.lo.upper()}-{v.hi.upper()} {v.span(head, final, 'calls')}), "
        f"<b>{_signed(v.grown(head, 'calls'))}</b> on {s.base_year} ({v.growth_span(head, 'calls')}). Of "
        f"these, <b>{_n(v.value(head, final, 'needs_ambulance'))}</b> would need an ambulance. On a peak "
        f"day (busier than {s.peak_quantile:.0%} of days) expect about "
        f"<b>{_n(v.peak(head, final, 'peak_day'))}</b> calls, against {_n(calls / days_in_year(final))} on "
        f"an average day; the busiest week of {final} brings about "
        f"<b>{_n(v.peak(head, final, 'busiest_week'))}</b>.</div>"
    )


def _scenario_table(v: _AreaView) -> str:
    base, final = v.settings.base_year, v.settings.final_year
    rows = [
        [
            f"<b>{_e(name)}</b>",
            _e(v.scenarios[name].description),
            _n(v.value(name, base, "calls")),
            f"{_n(v.value(name, final, 'calls'))}<br><span class='small'>{v.span(name, final, 'calls')}"
            "</span>",
            f"{_signed(v.grown(name, 'calls'))}<br><span class='small'>{v.growth_span(name, 'calls')}</span>",
            _n(v.value(name, final, "needs_ambulance")),
            _n(v.value(name, final, "needs_ambulance_no_change")),
            _n(v.peak(name, final, "peak_day")),
            _n(v.peak(name, final, "busiest_week")),
        ]
        for name in v.names
    ]
    today = v.scenarios[v.names[0]].remote_closure.start_share
    header = [
        "Scenario",
        "What it assumes",
        f"Calls {base}",
        f"Calls {final}",
        f"Growth {base}-{final}",
        f"Needing an ambulance {final}",
        f"&hellip; if remote closure stays at {today:.0%}",
        f"Peak day {final}",
        f"Busiest week {final}",
    ]
    return f"<h3>Scenarios in {final}</h3>" + _table(header, rows, numeric_from=2)


def _remote_closure_section(v: _AreaView) -> str:
    s = v.settings
    final = s.final_year
    sentences = []
    for name in v.names:
        rc = v.scenarios[name].remote_closure
        if rc.end_share == rc.start_share:
            continue
        with_more = v.value(name, final, "needs_ambulance")
        without = v.value(name, final, "needs_ambulance_no_change")
        sentences.append(
            f"Under <b>{_e(name)}</b>, closing {rc.end_share:.0%} of calls remotely by {rc.end_year} (from "
            f"{rc.start_share:.0%} in {s.base_year}) leaves <b>{_n(with_more)}</b> incidents needing an "
            f"ambulance in {final}, <b>{_n(without - with_more)}</b> fewer than the {_n(without)} if remote "
            f"closure stayed at {rc.start_share:.0%} ({_signed(with_more / without - 1)})."
        )
    if not sentences:
        sentences.append(
            "No scenario in this run changes the remote-closure share, so every figure holds it at today's "
            "share; add the <code>more_remote_closure</code> scenario to see the lever."
        )
    return (
        "<h3>Incidents needing an ambulance, with and without more remote closure</h3>"
        f"<p>{' '.join(sentences)}</p><p class='small'>Remote closure (&ldquo;hear and treat&rdquo;) is a "
        "share of all calls; NHS England reported about one 999 call in five managed without sending an "
        "ambulance in November 2025. The column &ldquo;if remote closure stays&rdquo; in the table above "
        "gives every scenario's figure without the change.</p>"
    )


def _year_table(v: _AreaView, head: str) -> str:
    s = v.settings
    rows = [
        [
            str(year),
            _n(v.value(head, year, "calls")),
            v.span(head, year, "calls"),
            _n(v.value(head, year, "needs_ambulance")),
            _n(v.peak(head, year, "peak_day")),
            _n(v.peak(head, year, "busiest_day")),
            _n(v.peak(head, year, "busiest_week")),
        ]
        for year in range(v.first_year, s.final_year + 1)
    ]
    header = [
        "Year",
        "Calls",
        f"{v.lo.upper()}-{v.hi.upper()}",
        "Needing an ambulance",
        f"Peak day (P{s.peak_quantile * 100:g})",
        "Busiest day",
        "Busiest week",
    ]
    return (
        f"<h3>{_e(head)}: year by year</h3>"
        + _table(header, rows)
        + "<p class='small'>The busiest day is usually New Year's Day. Peak figures are for all calls; "
        "multiply by the share needing an ambulance for crews.</p>"
    )


def _split_table(v: _AreaView, head: str) -> str:
    final = v.settings.final_year
    measures = (*CATEGORIES, "hear_and_treat", "see_and_treat", "conveyed", "needs_ambulance")
    rows = [
        [_e(PLAIN_NAMES.get(m, m)), _n(v.value(head, final, m)), v.span(head, final, m)] for m in measures
    ]
    return (
        f"<h3>{_e(head)}: what the {final} calls are</h3>"
        + _table(["Part", f"Calls {final}", f"{v.lo.upper()}-{v.hi.upper()}"], rows)
        + "<p class='small'>Categories (C1 life-threatening &hellip; C4 less urgent) and dispositions are "
        "two separate splits of the same calls, each from the scenario's shares.</p>"
    )


def _age_section(v: _AreaView, head: str) -> str:
    base, final = v.settings.base_year, v.settings.final_year
    bands = list(dict.fromkeys(v.population["age_band"]))
    items = []
    for name in v.names:
        rows = v.population[v.population["scenario"] == name]
        parts = [f"all ages {_signed(_group_growth(rows, bands, None, base, final))}"]
        for group in AGE_GROUPS:
            try:
                parts.append(f"{group} {_signed(_group_growth(rows, bands, group, base, final))}")
            except DataValidationError:  # a user's bands may not split at 65 or 85
                continue
        items.append(f"<li><b>{_e(name)}</b>: {', '.join(parts)}</li>")
    out = f"<h3>Where the growth comes from</h3><p>Population change {base}-{final}:</p>"
    out += f"<ul>{''.join(items)}</ul>"
    try:
        old = bands_in_range(bands, "85+")
    except DataValidationError:
        return out
    calls = v.by_band[v.by_band["scenario"] == head]
    share = {
        year: calls[(calls["year"] == year) & calls["age_band"].isin(old)]["calls"].sum()
        / calls[calls["year"] == year]["calls"].sum()
        for year in (base, final)
    }
    return out + (
        f"<p>Under {_e(head)}, people aged 85 and over make {share[base]:.0%} of calls in {base} and "
        f"{share[final]:.0%} in {final}: they call an ambulance several times as often as younger adults, so "
        "their growth drives demand well beyond the growth of the population as a whole.</p>"
    )


def _assumptions(projection: Projection, context: ReportContext) -> str:
    s = projection.settings
    rates = context.rates
    low, high = rates.trend_interval()
    weekday = context.shape.weekday_profile()
    out = [
        "<h2>Assumptions, in plain words</h2><ul>",
        f"<li><b>Population.</b> {_e(context.population_note)}</li>",
        f"<li><b>Use per person.</b> {_e(context.history_note)} Older people call far more often (the "
        "relative rates by age band follow the literature: people over 85 call several times as often as "
        f"people aged 45-69). Use per person changed by {_signed(math.expm1(rates.trend_), 2)} a year in the "
        f"history (95 % range {_signed(low, 2)} to {_signed(high, 2)}); scenarios either keep that trend "
        f"after {rates.last_year_} or set their own.</li>",
        "<li><b>Days of the year.</b> The daily pattern is learnt from the history: "
        f"{weekday.idxmax()} is the busiest weekday ({_signed(weekday.max() - 1)} on the weekly average), "
        f"{weekday.idxmin()} the quietest ({_signed(weekday.min() - 1)}); winter is busier than summer; bank "
        "holidays and the Christmas-New Year fortnight have their own effects, with New Year's Day the "
        "busiest day of the year.</li>",
        "<li><b>Scenarios.</b><ul>",
        *(
            f"<li><b>{_e(sc.name)}</b>: {_e(_describe(sc, rates, s.base_year))}</li>"
            for sc in projection.scenarios
        ),
        "</ul></li>",
        f"<li><b>Uncertainty.</b> {s.n_paths:,} simulated futures per scenario draw the per-person level and "
        f"trend from what the history supports, the population change (&plusmn;{s.population_sd:.0%} of it, "
        "one standard deviation), year-to-year swings of the size seen in the history, and day-to-day noise. "
        "All scenarios use the same random draws, so differences between them come from the assumptions. Not "
        "included: changes in how calls are categorised, pandemics or other shocks unlike the history, and "
        "uncertainty in the category and disposition shares.</li>",
    ]
    if context.backtest_note:
        out.append(f"<li><b>How well the method works.</b> {_e(context.backtest_note)}</li>")
    out.append("</ul>")
    if context.command:
        out.append(f"<h2>Reproduce</h2><pre>{_e(context.command)}</pre>")
    if context.files:
        out.append("<p class='small'>Files beside this report: " + ", ".join(map(_e, context.files)) + "</p>")
    return "\n".join(out)


def _describe(sc: Scenario, rates: AgeRateModel, base_year: int) -> str:
    """The scenario's assumptions as sentences."""
    last = rates.last_year_
    words = [sc.description.rstrip(".") + "." if sc.description else ""]
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
        words.append(f"Remote closure: {rc.start_share:.0%} of calls throughout.")
    else:
        words.append(
            f"Remote closure: {rc.start_share:.0%} of calls in {base_year}, moving evenly to "
            f"{rc.end_share:.0%} by {rc.end_year}."
        )
    mix = "/".join(f"{sc.category_mix[c]:.1%}" for c in CATEGORIES)
    conveyed = sc.attended_split["conveyed"]
    words.append(f"Categories C1/C2/C3/C4 {mix}; of incidents attended, {conveyed:.0%} conveyed to hospital.")
    return " ".join(w for w in words if w)


def _group_growth(rows: pd.DataFrame, bands: list[str], group: str | None, base: int, final: int) -> float:
    members = bands if group is None else bands_in_range(bands, group)
    totals = rows[rows["age_band"].isin(members)].groupby("year")["population"].sum()
    return float(totals[final] / totals[base] - 1)


def _table(header: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    def cell(i: int, text: str) -> str:
        return f"<td class='n'>{text}</td>" if i >= numeric_from else f"<td>{text}</td>"

    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(i, c) for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    return f"<img alt='{_e(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'>"


def _e(text: str) -> str:
    return html.escape(str(text))


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _signed(fraction: float, digits: int = 1) -> str:
    return f"{fraction:+.{digits}%}"
