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
