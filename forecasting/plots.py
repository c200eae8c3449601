"""Forecast plots: what a model forecasts over the served horizon and how its backtest forecasts met
the actuals, and the components of a calendar GLM (trend, weekly, annual, holidays) as Prophet users
know them."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no screen needed: plots are written to files and logged
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from forecasting.calendar import FESTIVE_DAYS, calendar_design  # noqa: E402
from forecasting.models.base import Forecaster  # noqa: E402
from forecasting.models.glm import _EPOCH, CalendarGLM  # noqa: E402

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def busiest_series(history: pd.DataFrame, n: int) -> list[str]:
    """The ``n`` series with the most calls, busiest first: the ones a reader checks first."""
    totals = history.groupby("unique_id")["y"].sum().sort_values(ascending=False, kind="stable")
    return [str(uid) for uid in totals.index[:n]]


def forecast_figure(
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    series: Sequence[str],
    level: Sequence[int],
    history_days: int = 120,
    title: str = "",
    backtest: pd.DataFrame | None = None,
    add_up: bool = True,
) -> plt.Figure:
    """The forecast after the history, then how the backtest forecasts met the actuals.

    Panels: all series added up (actual calls and the sum of the forecast means: a sum of
    intervals is not an interval, so none is drawn), then one panel per series in ``series`` with
    its intervals, then, given ``backtest``, every origin's forecast of the total against what
    happened.

    Parameters
    ----------
    history : DataFrame
        ``unique_id, ds, y``.
    forecast : DataFrame
        ``unique_id, ds, mean, lo_*, hi_*``, e.g. the served horizon.
    series : sequence of str
        Series drawn one per panel (e.g. :func:`busiest_series`).
    level : sequence of int
        Interval levels in ``forecast``.
    history_days : int
        Days of history before the forecast.
    title : str
        Figure title, e.g. "glm on swast: 84-day forecast".
    backtest : DataFrame, optional
        :func:`forecasting.backtest.rolling_origin_backtest` output (``cutoff, unique_id, ds, y, mean``).
    add_up : bool
        Whether the series add up to something (False for a hierarchy, whose totals are series
        themselves): then there is no sum panel and the backtest panel shows the first series.
    """
    n_series = history["unique_id"].nunique()
    panels = add_up + len(series) + (backtest is not None and len(backtest) > 0)
    fig, axes = plt.subplots(panels, 1, figsize=(11, 2.7 * panels), squeeze=False)
    axes = list(axes[:, 0])
    if add_up:
        total_ax = axes.pop(0)
        past = history.groupby("ds", as_index=False)["y"].sum().tail(history_days)
        ahead = forecast.groupby("ds", as_index=False)["mean"].sum()
        total_ax.plot(past["ds"], past["y"], color="0.3", lw=0.8, label="actual")
        total_ax.plot(ahead["ds"], ahead["mean"], color="tab:blue", lw=1.2, label="forecast (sum of means)")
        total_ax.set_title(f"All {n_series} series added up", loc="left", fontsize=10)
        total_ax.legend(loc="upper left", fontsize=8, ncols=2)
    for uid in series:
        ax = axes.pop(0)
        _fan(
            ax,
            history[history["unique_id"] == uid].tail(history_days),
            forecast[forecast["unique_id"] == uid],
            level,
        )
        ax.set_title(str(uid), loc="left", fontsize=10)
    if axes:
        if not add_up:  # one series' own backtest: totals of a hierarchy would count calls twice
            backtest, history = (f[f["unique_id"] == series[0]] for f in (backtest, history))
        _backtest_panel(axes.pop(0), backtest, history, "all series added up" if add_up else series[0])
    for ax in fig.axes:
        ax.set_ylabel("calls per day")
        ax.grid(alpha=0.3)
    days = forecast["ds"].nunique()
    note = (
        f"{days}-day forecast; {len(series)} of {n_series} series drawn (busiest first), all in forecast.csv"
    )
    fig.suptitle(f"{title}\n{note}" if title else note, x=0.01, ha="left", fontsize=11)
    fig.tight_layout()
    return fig


def _fan(ax: plt.Axes, past: pd.DataFrame, future: pd.DataFrame, level: Sequence[int]) -> None:
    ax.plot(past["ds"], past["y"], color="0.3", lw=0.8, label="actual")
    for lv in sorted(level, reverse=True):
        ax.fill_between(
            future["ds"],
            future[f"lo_{lv}"],
            future[f"hi_{lv}"],
            color="tab:blue",
            alpha=0.15 + 0.15 * (lv < max(level)),
            lw=0,
            label=f"{lv} % interval",
        )
    ax.plot(future["ds"], future["mean"], color="tab:blue", lw=1.2, label="forecast")
    ax.legend(loc="upper left", fontsize=8, ncols=4)


def _backtest_panel(ax: plt.Axes, backtest: pd.DataFrame, history: pd.DataFrame, what: str) -> None:
    """Each origin's forecast of the total (coloured) over the actual total (grey)."""
    totals = backtest.groupby(["cutoff", "ds"], as_index=False)[["y", "mean"]].sum()
    first = totals["ds"].min() - pd.Timedelta(days=14)
    actual = (
        history[history["ds"].between(first, totals["ds"].max())].groupby("ds", as_index=False)["y"].sum()
    )
    ax.plot(actual["ds"], actual["y"], color="0.3", lw=0.9, label="actual")
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, totals["cutoff"].nunique()))
    for colour, (_, fold) in zip(colours, totals.groupby("cutoff"), strict=True):
        ax.plot(fold["ds"], fold["mean"], color=colour, lw=1.0, alpha=0.9)
    error = (totals["mean"] - totals["y"]).abs().sum() / totals["y"].sum()
    ax.plot([], [], color=colours[-1], label=f"forecast from each of {len(colours)} origins")
    ax.set_title(
        f"Backtest, {what}: each origin's forecast against the actuals (absolute error {error:.1%} of calls)",
        loc="left",
        fontsize=10,
    )
    ax.legend(loc="upper left", fontsize=8, ncols=2)


def find_glm(model: Forecaster) -> CalendarGLM | None:
    """The fitted calendar GLM in ``model``: itself, an ensemble member, or the model an ``auto``,
    conformal or hierarchical wrapper fitted; None when there is none."""
    seen, queue = set(), [model]
    while queue:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, CalendarGLM) and hasattr(current, "fitted_"):
            return current
        queue += list(getattr(current, "members_", []) or [])
        inner = getattr(current, "model_", None)
        if inner is not None:
            queue.append(inner)
    return None


def glm_components(model: CalendarGLM, uid: str) -> dict[str, pd.DataFrame]:
    """The fitted GLM of one series split into multiplicative components, as factors on calls.

    Returns ``trend`` (``ds, calls``: the level on an ordinary Monday outside holidays with the
    yearly cycle at zero, over the fit window), ``weekly`` (``day, factor``, Monday = 1),
    ``annual`` (``day_of_year, factor``) and ``holidays`` (``day, factor``: bank holiday and each
    day of the festive fortnight). A factor of 1.2 is 20 % more calls than otherwise.
    """
    glm, centre, _, _, *order = model.fitted_[uid]
    order = order[0] if order else model.annual_order  # 0: too short a history for a yearly cycle
    coef = np.asarray(glm.coef_, dtype=float)
    last = pd.Timestamp(model.last_dates_[uid])
    window = model.window_days or 3 * 365
    days = pd.date_range(last - pd.Timedelta(days=window - 1), last, freq="D")
    names = list(calendar_design(days[:1], model.nation, order).columns)
    named = dict(zip(names, coef[1 : 1 + len(names)], strict=True))
    years = (days.values.astype("datetime64[D]") - _EPOCH).astype(float) / 365.25
    trend = pd.DataFrame({"ds": days, "calls": np.exp(glm.intercept_ + coef[0] * (years - centre))})
    weekly = pd.DataFrame(
        {"day": WEEKDAYS, "factor": np.exp([0.0, *(named[f"dow_{k}"] for k in range(1, 7))])}
    )
    year = pd.date_range("2023-01-01", "2023-12-31", freq="D")  # a year without 29 February
    design = calendar_design(year, model.nation, order)
    annual_columns = [c for c in names if c.startswith("annual_")]
    cycle = (
        design[annual_columns].to_numpy() @ np.array([named[c] for c in annual_columns])
        if annual_columns
        else 0
    )
    annual = pd.DataFrame({"day_of_year": year.day_of_year, "ds": year, "factor": np.exp(cycle)})
    festive = [(pd.Timestamp(f"2023-{d}").strftime("%d %b"), named[f"festive_{d}"]) for d in FESTIVE_DAYS]
    holidays = pd.DataFrame(
        [("bank holiday", np.exp(named["bank_holiday"])), *((d, np.exp(v)) for d, v in festive)],
        columns=["day", "factor"],
    )
    return {"trend": trend, "weekly": weekly, "annual": annual, "holidays": holidays}


def components_figure(model: CalendarGLM, uid: str, title: str = "") -> plt.Figure:
    """Trend, weekly, yearly and holiday components of one series' GLM, Prophet-style.

    The model is multiplicative (log link), so each component is a factor on calls: the trend in
    calls per day, the others as % above or below it.
    """
    parts = glm_components(model, uid)
    fig, axes = plt.subplots(4, 1, figsize=(10, 11))
    trend, weekly, annual, holidays = (parts[k] for k in ("trend", "weekly", "annual", "holidays"))
    axes[0].plot(trend["ds"], trend["calls"], color="tab:blue")
    axes[0].set_ylabel("calls per day")
    axes[0].set_title("Trend (an ordinary Monday, yearly cycle at its mean)", loc="left", fontsize=10)
    axes[1].bar(weekly["day"], (weekly["factor"] - 1) * 100, color="tab:blue")
    axes[1].set_title("Weekly: % against Monday", loc="left", fontsize=10)
    axes[2].plot(annual["ds"], (annual["factor"] - 1) * 100, color="tab:blue")
    axes[2].xaxis.set_major_formatter(matplotlib.dates.DateFormatter("%b"))
    axes[2].set_title("Yearly cycle: % against the year's level", loc="left", fontsize=10)
    axes[3].bar(holidays["day"], (holidays["factor"] - 1) * 100, color="tab:red")
    axes[3].tick_params(axis="x", labelrotation=45, labelsize=8)
    axes[3].set_title("Holidays: % against an ordinary day", loc="left", fontsize=10)
    for ax in axes[1:]:
        ax.set_ylabel("%")
        ax.axhline(0, color="0.5", lw=0.8)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title or f"Components of the calendar GLM for {uid}", x=0.01, ha="left", fontsize=11)
    fig.tight_layout()
    return fig
