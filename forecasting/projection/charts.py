"""Charts for planners: fans by scenario, the scenarios side by side, and where the growth comes from."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no screen needed: charts go to files and into the HTML report
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

COLOURS = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:cyan")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))


def figure_png(figure: plt.Figure) -> bytes:
    """The figure as PNG bytes (then closed, so long runs do not keep figures in memory)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def fan_chart(annual: pd.DataFrame, daily: pd.DataFrame, labels: Sequence[str], title: str) -> plt.Figure:
    """Annual calls and incidents needing an ambulance with their fans, and the final year day by day.

    Parameters
    ----------
    annual : DataFrame
        One area and scenario from :attr:`Projection.annual`.
    daily : DataFrame
        The same area and scenario from :attr:`Projection.daily`.
    labels : sequence of str
        Quantile columns, lowest to highest (the outermost pair is shaded).
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
    left.set_ylabel("thousand a year")
    left.set_title("Calls a year", loc="left", fontsize=10)
    left.legend(fontsize=8, loc="upper left")
    left.grid(alpha=0.3)
    final = daily[daily["year"] == daily["year"].max()]
    right.fill_between(
        final["ds"], final[low], final[high], color="tab:blue", alpha=0.2, lw=0, label=f"{low}-{high}"
    )
    right.plot(final["ds"], final["mean"], color="tab:blue", lw=0.8, label="expected")
    right.set_ylabel("calls per day")
    right.set_title(f"Every day of {int(final['year'].iloc[0])}", loc="left", fontsize=10)
    right.legend(fontsize=8, loc="upper left")
    right.grid(alpha=0.3)
    right.tick_params(axis="x", labelrotation=30, labelsize=8)
    fig.suptitle(title, x=0.01, ha="left", fontsize=11)
    fig.tight_layout()
    return fig


def scenario_chart(annual: pd.DataFrame, labels: Sequence[str], base_year: int, title: str) -> plt.Figure:
    """All scenarios of one area on one chart: calls a year, and incidents needing an ambulance."""
    low, high = labels[0], labels[-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), sharex=True)
    groups = annual.groupby("scenario", sort=False)
    # Scenarios that share their calls (a remote-closure lever) would hide each other: vary the dashes.
    for i, (scenario, rows) in enumerate(groups):
        colour, dashes = COLOURS[i % len(COLOURS)], LINESTYLES[i % len(LINESTYLES)]
        calls = rows[rows["measure"] == "calls"]
        left.fill_between(calls["year"], calls[low] / 1e3, calls[high] / 1e3, color=colour, alpha=0.1, lw=0)
        left.plot(calls["year"], calls["mean"] / 1e3, color=colour, ls=dashes, lw=1.8, label=scenario)
        amb = rows[rows["measure"] == "needs_ambulance"]
        right.plot(amb["year"], amb["mean"] / 1e3, color=colour, ls=dashes, lw=1.8, label=scenario)
    left.set_title(f"All calls a year (lines: expected; shading: {low}-{high})", loc="left", fontsize=10)
    right.set_title("Incidents needing an ambulance a year", loc="left", fontsize=10)
    for ax in (left, right):
        ax.axvline(base_year, color="0.5", lw=0.8, ls=":")
        ax.set_ylabel("thousand a year")
        ax.grid(alpha=0.3)
    left.legend(fontsize=8, loc="upper left")
    fig.suptitle(title, x=0.01, ha="left", fontsize=11)
    fig.tight_layout()
    return fig


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
