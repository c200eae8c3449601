"""Backtest scores per level of a hierarchy (total, each column's totals, leaves)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from forecasting.hierarchy.structure import Hierarchy
from forecasting.metrics import summary_metrics


def metrics_by_level(backtest: pd.DataFrame, hierarchy: Hierarchy, level: Sequence[int]) -> pd.DataFrame:
    """Metrics pooled over the nodes of each level (rows from the top down), with ``n_nodes``."""
    labelled = backtest.assign(level=backtest["unique_id"].map(hierarchy.level_of()))
    rows = []
    for name in hierarchy.level_names:
        part = labelled[labelled["level"] == name]
        if part.empty:
            continue
        rows.append({"level": name, "n_nodes": part["unique_id"].nunique(), **summary_metrics(part, level)})
    return pd.DataFrame(rows)


def level_metrics(by_level: pd.DataFrame) -> dict[str, float]:
    """Flat ``<level>.<metric>`` numbers for a tracker, e.g. ``total.mase``, ``area/category.crps``."""
    return {
        f"{row['level']}.{name}": float(value)
        for row in by_level.to_dict("records")
        for name, value in row.items()
        if name not in ("level", "n_nodes")
    }


def describe_levels(by_level: pd.DataFrame, method: str, level: Sequence[int]) -> str:
    """One line per level for the run's log: MASE, CRPS and coverage."""
    lines = [f"hierarchy: reconciled by {method}; backtest by level:"]
    for row in by_level.to_dict("records"):
        cover = ", ".join(f"{lv} % coverage {row[f'coverage_{lv}']:.3f}" for lv in level)
        nodes = f"{row['level']} ({row['n_nodes']} node(s))"
        lines.append(f"  {nodes}: MASE {row['mase']:.3f}, CRPS {row['crps']:.2f}, {cover}")
    return "\n".join(lines)
