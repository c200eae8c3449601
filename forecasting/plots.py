"""Forecast fan plots: recent history, the forecast mean and its prediction intervals."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no screen needed: plots are written to files and logged
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def forecast_figure(
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    series: Sequence[str],
    level: Sequence[int],
    history_days: int = 120,
) -> plt.Figure:
    """One panel per series: the last ``history_days`` of actuals and the forecast fan."""
    fig, axes = plt.subplots(len(series), 1, figsize=(10, 2.6 * len(series)), squeeze=False)
    for ax, uid in zip(axes[:, 0], series, strict=True):
        past = history[history["unique_id"] == uid].tail(history_days)
        future = forecast[forecast["unique_id"] == uid]
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
        ax.set_title(uid, loc="left", fontsize=10)
        ax.set_ylabel("calls per day")
    axes[0, 0].legend(loc="upper left", fontsize=8, ncols=4)
    fig.tight_layout()
    return fig
