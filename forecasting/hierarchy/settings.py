"""The ``hierarchy:`` block of the forecasting config, checked, and what it changes in a run.

Plain mappings in, no Hydra: the pipeline hands over ``cfg.hierarchy`` as a dict. With ``levels``
empty (``hierarchy=none``, the default) nothing changes; with e.g. ``levels=[area, category]`` the
leaves are named by those columns (``city/C2``), every node is forecast and reconciled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from forecasting.hierarchy.forecaster import CHOICES, INTERVALS, HierarchicalForecaster
from forecasting.hierarchy.structure import Hierarchy, aggregate
from forecasting.models.base import Forecaster
from mlops.errors import ConfigError

KEYS = ("levels", "method", "n_windows", "step", "horizon", "intervals")


@dataclass(frozen=True)
class HierarchySettings:
    """Checked ``hierarchy`` settings (see conf/hierarchy/none.yaml for each one's meaning)."""

    levels: tuple[str, ...] = ()
    method: str = "mint_shrink"
    n_windows: int = 8
    step: int = 14
    horizon: int = 84
    intervals: str = "copula"

    @property
    def enabled(self) -> bool:
        return bool(self.levels)

    @classmethod
    def from_config(cls, given: Mapping | None, records: bool = False) -> HierarchySettings:
        """Check the block, naming ``hierarchy.<key>`` in a one-line :class:`ConfigError`."""
        given = dict(given or {})
        unknown = sorted(set(map(str, given)) - set(KEYS))
        if unknown:
            raise ConfigError(f"hierarchy: unknown key(s) {unknown}; it takes {list(KEYS)}")
        levels = given.get("levels") or []
        if isinstance(levels, str) or not all(isinstance(c, str) and c for c in levels):
            raise ConfigError(
                f"hierarchy.levels={levels!r} must be a list of column names, "
                "e.g. hierarchy.levels=[area,category]"
            )
        if len(set(levels)) != len(levels):
            raise ConfigError(f"hierarchy.levels={list(levels)} names a column twice")
        method = given.get("method", cls.method)
        if method not in CHOICES:
            raise ConfigError(f"hierarchy.method={method!r}: choose one of {', '.join(CHOICES)}")
        intervals = given.get("intervals", cls.intervals)
        if intervals not in INTERVALS:
            raise ConfigError(f"hierarchy.intervals={intervals!r}: choose one of {', '.join(INTERVALS)}")
        numbers = {}
        for key, low in (("n_windows", 2), ("step", 1), ("horizon", 1)):
            value = given.get(key, getattr(cls, key))
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 3660:
                raise ConfigError(f"hierarchy.{key}={value!r} must be a whole number from {low} to 3660")
            numbers[key] = value
        if levels and records:
            raise ConfigError(
                "hierarchy.levels needs daily counts with the level columns (data.records=false): count "
                "the calls per day and level first"
            )
        return cls(tuple(levels), str(method), intervals=str(intervals), **numbers)

    def load_options(self, columns: Mapping, keep: list[str]) -> tuple[dict, list[str]]:
        """The data's column mapping and kept columns: leaves are named by the level columns."""
        columns = dict(columns)
        if not self.enabled:
            return columns, keep
        columns["unique_id"] = list(self.levels)
        return columns, [*keep, *(c for c in self.levels if c not in keep)]

    def wrap(self, model: Forecaster, leaves: pd.DataFrame) -> tuple[pd.DataFrame, HierarchicalForecaster]:
        """Every node's series and the model that forecasts and reconciles them."""
        nodes, hierarchy = aggregate(leaves, self.levels)
        return nodes, HierarchicalForecaster(
            model, hierarchy, self.method, self.n_windows, self.step, self.horizon, self.intervals
        )


def hierarchy_contract(fitted: HierarchicalForecaster) -> dict:
    """What a served hierarchical model answers for, for its contract (metadata)."""
    hierarchy: Hierarchy = fitted.hierarchy
    return {
        "levels": list(hierarchy.columns),
        "method": fitted.method_,
        "intervals": fitted.intervals,
        "nodes": hierarchy.nodes_by_level(),
        "naming": hierarchy.describe(),
    }
