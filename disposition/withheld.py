"""Subgroup levels too small to show the limit receive no recommendations.

A level (age band 85+, category C4, ...) whose recommended calibration calls at the deployed
threshold are fewer than the limit needs at all (:func:`disposition.threshold.required_calls`: 299
with none unsafe for 1 % at delta 0.05) cannot show its own under-triage within the limit, whatever
its outcomes; its calls are not recommended, in training and when served. The rule uses counts
only. Levels with enough calls are kept even if their rate is high: they are reported with their
test-window bound and named when significantly higher than the rest (:mod:`disposition.subgroup_safety`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# calls.subgroups key -> the label of its grouping in the subgroup table.
GROUP_OF_KEY = {"age": "age_band", "sex": "sex", "category": "category"}


@dataclass(frozen=True)
class WithheldLevels:
    """``levels``: grouping (``age_band``, ``sex``, ``category``) -> withheld level labels, with the
    request columns (``calls.subgroups``) and age band edges that give each call its levels."""

    columns: dict[str, str]
    age_edges: list[int]
    levels: dict[str, list[str]] = field(default_factory=dict)
    needed: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def required_columns(self) -> list[str]:
        keys = {key for key, group in GROUP_OF_KEY.items() if self.levels.get(group)}
        return [self.columns[key] for key in sorted(keys) if self.columns.get(key)]

    def labels(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        from disposition.report import subgroup_labels  # lazily: report imports matplotlib

        return subgroup_labels(frame, self.columns, self.age_edges, None)

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """True for calls in a withheld level."""
        held = np.zeros(len(frame), dtype=bool)
        if not any(self.levels.values()):
            return held
        for group, values in self.labels(frame).items():
            if self.levels.get(group):
                held |= np.isin(values.astype(str), self.levels[group])
        return held

    def describe(self) -> list[str]:
        return [
            f"{group} = {level} ({self.counts.get(group, {}).get(level, 0):,} recommended calibration calls; "
            f"{self.needed:,} needed)"
            for group, levels in self.levels.items()
            for level in levels
        ]

    def to_dict(self) -> dict:
        return {
            "columns": dict(self.columns),
            "age_edges": list(self.age_edges),
            "levels": {g: list(v) for g, v in self.levels.items()},
            "needed": int(self.needed),
            "counts": self.counts,
        }

    @classmethod
    def from_dict(cls, state: Mapping) -> WithheldLevels:
        return cls(
            dict(state["columns"]),
            list(state["age_edges"]),
            {g: list(v) for g, v in state["levels"].items()},
            int(state["needed"]),
            {g: dict(v) for g, v in state.get("counts", {}).items()},
        )


def small_levels(
    frame: pd.DataFrame,
    recommended: np.ndarray,
    columns: Mapping[str, str | None],
    age_edges: Sequence[int],
    needed: int,
) -> WithheldLevels:
    """The levels of ``frame`` (calibration calls) with fewer than ``needed`` ``recommended`` calls."""
    present = {k: v for k, v in columns.items() if v and v in frame.columns and k in GROUP_OF_KEY}
    held = WithheldLevels(present, [int(e) for e in age_edges], {}, int(needed))
    levels, counts = {}, {}
    for group, values in held.labels(frame).items():
        values = values.astype(str)
        for level in sorted(pd.unique(values)):
            n = int((recommended & (values == level)).sum())
            counts.setdefault(group, {})[level] = n
            if n < needed:
                levels.setdefault(group, []).append(level)
    return WithheldLevels(held.columns, held.age_edges, levels, int(needed), counts)


def levels_to_withhold(
    calibration: pd.DataFrame,
    p: np.ndarray,
    rules,
    threshold: float,
    columns: Mapping[str, str | None],
    age_edges: Sequence[int],
    limit: float,
    delta: float,
) -> WithheldLevels | None:
    """:func:`small_levels` for scores ``p`` of the calibration calls at ``threshold`` (hard-rule
    calls are not recommended); None when no subgroup column is configured or present."""
    from disposition.safety import excluded_by_rules
    from disposition.threshold import required_calls

    if not any(v and v in calibration.columns for k, v in columns.items() if k in GROUP_OF_KEY):
        return None
    excluded, _ = excluded_by_rules(calibration, rules)
    recommended = ~excluded & (np.asarray(p) >= threshold)
    return small_levels(calibration, recommended, columns, age_edges, required_calls(limit, delta))
