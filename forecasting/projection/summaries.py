"""Tables from simulated paths: daily and annual fans, growth over the horizon, and peak days."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecasting.projection.simulate import Simulation, year_starts
from forecasting.projection.splits import quantile_label

PEAK_STATISTICS = {
    "peak_day": "the {q}th-percentile day (only {n} days of the year are busier)",
    "busiest_day": "the busiest day of the year",
    "busiest_week": "the busiest 7 days in a row, in total",
}


def daily_fan(sim: Simulation, quantiles: Sequence[float]) -> pd.DataFrame:
    """Per day: expected calls, the spread of simulated calls (``sd``) and their quantiles."""
    values = np.quantile(sim.counts, quantiles, axis=0)
    frame = pd.DataFrame({"ds": sim.days, "year": sim.days.year, "mean": sim.expected_daily})
    frame["sd"] = sim.counts.std(axis=0)
    for q, row in zip(quantiles, values, strict=True):
        frame[quantile_label(q)] = row
    return frame


def annual_fan(sim: Simulation, quantiles: Sequence[float]) -> pd.DataFrame:
    """Per year: expected calls, and the sd and quantiles of simulated annual calls."""
    counts = sim.annual_counts
    frame = pd.DataFrame(
        {"year": sim.years, "mean": sim.annual_expected.mean(axis=0), "sd": counts.std(axis=0)}
    )
    for q, row in zip(quantiles, np.quantile(counts, quantiles, axis=0), strict=True):
        frame[quantile_label(q)] = row
    return frame


def growth_ratios(sim: Simulation, base_year: int) -> np.ndarray:
    """Each path's annual calls in its final year over those in ``base_year``, shape (n_paths,).

    Taken path by path, so uncertainty shared by both years (the rate level) cancels, as it does
    for a planner comparing 2035 with 2025 under the same assumptions.
    """
    counts = sim.annual_counts
    return counts[:, -1] / counts[:, list(sim.years).index(base_year)]


def peak_days(sim: Simulation, quantiles: Sequence[float], day_quantile: float = 0.95) -> pd.DataFrame:
    """Per year, the peak-day statistics planners size capacity on, with their spread over paths.

    Statistics: ``peak_day`` (the ``day_quantile`` day of the year), ``busiest_day`` and
    ``busiest_week`` (largest 7-day total inside the year). Each is computed per path, and the table
    gives their mean and quantiles across paths.
    """
    starts = np.r_[year_starts(sim.days), len(sim.days)]
    rows = []
    for year, lo, hi in zip(sim.years, starts[:-1], starts[1:], strict=True):
        block = sim.counts[:, lo:hi].astype(np.int64)
        cumulative = np.cumsum(block, axis=1)
        week = cumulative[:, 6:] - np.c_[np.zeros(len(block), dtype=np.int64), cumulative[:, :-7]]
        stats = {
            "peak_day": np.quantile(block, day_quantile, axis=1),
            "busiest_day": block.max(axis=1),
            "busiest_week": week.max(axis=1),
        }
        for name, values in stats.items():
            row = {"year": int(year), "statistic": name, "mean": float(values.mean())}
            qs = np.quantile(values, quantiles)
            row.update({quantile_label(q): float(v) for q, v in zip(quantiles, qs, strict=True)})
            rows.append(row)
    return pd.DataFrame(rows)
