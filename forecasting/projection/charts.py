"""Charts for planners: history then the scenarios, each scenario's fans and month-by-month view, and
where the growth comes from. Every projected line carries its P10-P90 (or whichever outer pair) band."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no screen needed: charts go to files and into the HTML report
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

COLOURS = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:cyan")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
HISTORY_STYLE = {"color": "black", "lw": 1.6, "marker": "o", "ms": 3}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def figure_png(figure: plt.Figure) -> bytes:
    """The figure as PNG bytes (then closed, so long runs do not keep figures in memory)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def same_lines(annual: pd.DataFrame, measure: str) -> list[list[str]]:
    """Scenarios grouped by identical projected values of ``measure`` (in their order of appearance).

    Scenarios that differ only in a lever downstream of ``measure`` (more remote closure leaves all
    calls as they are) would draw one line over another, hiding the first; drawing each group once
    with every name in its label keeps every scenario visible.
    """
    groups: list[tuple[np.ndarray, list[str]]] = []
    for scenario, rows in annual[annual["measure"] == measure].groupby("scenario", sort=False):
        values = rows.sort_values("year")["mean"].to_numpy(dtype=float)
        for existing, names in groups:
            if existing.shape == values.shape and np.allclose(existing, values, rtol=1e-9, atol=1e-6):
                names.append(str(scenario))
                break
        else:
            groups.append((values, [str(scenario)]))
    return [names for _, names in groups]


def scenario_chart(
    annual: pd.DataFrame,
    labels: Sequence[str],
    base_year: int,
    title: str,
    history: pd.DataFrame | None = None,
) -> plt.Figure:
    """All scenarios of one area after its history: calls a year, and incidents needing an ambulance.

    Parameters
    ----------
    annual : DataFrame
        One area from :attr:`Projection.annual`.
    labels : sequence of str
        Quantile columns, lowest to highest (the outermost pair is shaded).
    history : DataFrame, optional
        ``year, calls`` observed in the history, drawn in black before the projection.
    """
    low, high = labels[0], labels[-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4), sharex=True)
    colour_of = {name: i for i, name in enumerate(annual["scenario"].unique())}
    for ax, measure in ((left, "calls"), (right, "needs_ambulance")):
        for names in same_lines(annual, measure):
            i = colour_of[names[0]]
            rows = annual[(annual["scenario"] == names[0]) & (annual["measure"] == measure)]
            colour = COLOURS[i % len(COLOURS)]
            label = names[0] if len(names) == 1 else f"{' = '.join(names)} (same {_what(measure)})"
            ax.fill_between(rows["year"], rows[low] / 1e3, rows[high] / 1e3, color=colour, alpha=0.12, lw=0)
            ax.plot(
                rows["year"],
                rows["mean"] / 1e3,
                color=colour,
                lw=1.6,
                marker=MARKERS[i % len(MARKERS)],
                ms=3.5,
                label=label,
            )
    if history is not None and len(history):
        left.plot(history["year"], history["calls"] / 1e3, label="history (actual)", **HISTORY_STYLE)
    left.set_title(f"All calls a year (lines: expected; shading: {low}-{high})", loc="left", fontsize=10)
    right.set_title(f"Incidents needing an ambulance a year ({low}-{high} shaded)", loc="left", fontsize=10)
    for ax in (left, right):
        ax.axvline(base_year, color="0.5", lw=0.8, ls=":")
        ax.set_ylabel("thousand a year")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # years, not 2017.5
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7.5, loc="upper left")
    fig.suptitle(title, x=0.01, ha="left", fontsize=11)
    fig.tight_layout()
    return fig


def fan_chart(
    annual: pd.DataFrame,
    daily: pd.DataFrame,
    labels: Sequence[str],
    title: str,
    history: pd.DataFrame | None = None,
) -> plt.Figure:
    """One scenario: annual calls and incidents needing an ambulance with their fans after the history,
    and the final year month by month (the average day of each month and the range of its days).

    Parameters
    ----------
    annual : DataFrame
        One area and scenario from :attr:`Projection.annual`.
    daily : DataFrame
        The same area and scenario from :attr:`Projection.daily`.
    labels : sequence of str
        Quantile columns, lowest to highest (the outermost pair is shaded).
    history : DataFrame, optional
        ``year, calls`` observed in the history.
    """
    low, high = labels[0], labels[-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [1.2, 1]})
    for measure, colour, name in (
        ("calls", "tab:blue", "all calls"),
        ("needs_ambulance", "tab:red", "needing an ambulance"),
    ):
        rows = annual[annual["measure"] == measure]
        left.fill_between(rows["year"], rows[low] / 1e3, rows[high] / 1e3, color=colour, alpha=0.2, lw=0)
        left.plot(
            rows["year"],
            rows["mean"] / 1e3,
            color=colour,
            lw=1.8,
            marker="o",
            ms=3,
            label=f"{name} ({low}-{high} shaded)",
        )
    if history is not None and len(history):
        left.plot(history["year"], history["calls"] / 1e3, label="history: all calls", **HISTORY_STYLE)
    left.set_ylabel("thousand a year")
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_title("Calls a year", loc="left", fontsize=10)
    left.legend(fontsize=8, loc="upper left")
    left.grid(alpha=0.3)
    months = monthly_view(daily, labels)
    final_year = int(daily["year"].max())
    x = np.arange(1, 13)
    right.fill_between(x, months[low], months[high], color="tab:blue", alpha=0.2, lw=0, label=f"{low}-{high}")
    right.plot(x, months["mean"], color="tab:blue", lw=1.8, marker="o", ms=3, label="expected")
    right.set_xticks(x, MONTHS, fontsize=8)
    right.set_ylabel("calls per day")
    right.set_title(f"The average day of each month, {final_year}", loc="left", fontsize=10)
    right.legend(fontsize=8, loc="upper left")
    right.grid(alpha=0.3)
    fig.suptitle(title, x=0.01, ha="left", fontsize=11)
    fig.tight_layout()
    return fig


def monthly_view(daily: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """The final year's days averaged by month: expected calls a day and the typical day's range.

    The quantile columns are the month's averages of each day's quantiles: the range a planner
    should expect for one day of that month (not the range of the month's average).
    """
    final = daily[daily["year"] == daily["year"].max()]
    month = pd.to_datetime(final["ds"]).dt.month
    return final.groupby(month)[["mean", *labels]].mean().reindex(range(1, 13))


def age_band_chart(by_band: pd.DataFrame, base_year: int, final_year: int, title: str) -> plt.Figure:
    """Calls by age band in the base and final year: where the growth comes from."""
    rows = by_band[by_band["year"].isin([base_year, final_year])]
    table = rows.pivot_table(index="age_band", columns="year", values="calls", sort=False)
    fig, ax = plt.subplots(figsize=(9, 4))
    positions = range(len(table))
    ax.bar([p - 0.2 for p in positions], table[base_year] / 1e3, width=0.4, color="0.6", label=str(base_year))
    ax.bar(
        [p + 0.2 for p in positions],
        table[final_year] / 1e3,
        width=0.4,
        color="tab:blue",
        label=str(final_year),
    )
    ax.set_xticks(list(positions), table.index, rotation=45, fontsize=8)
    ax.set_ylabel("thousand calls a year")
    ax.set_title(title, loc="left", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def _what(measure: str) -> str:
    return "calls" if measure == "calls" else "incidents"
