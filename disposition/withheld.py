"""Per-level thresholds and withheld subgroup levels, applied in training and when served.

:func:`level_controls` runs the Learn-then-Test walk within every level of the configured groupings
(:mod:`disposition.level_thresholds`): a level's calls are recommended only above the stricter of
the overall threshold and the level's own, and a level whose walk rejected no candidate (too few
calls, or too many unsafe among them) is withheld: none of its calls is recommended. The report
says how many recommended calls such a level would need. A level value never seen on the
calibration window has no control of its own and is withheld too.

:func:`small_levels` is the count-only rule (fewer recommended calls than the limit needs at all:
:func:`disposition.threshold.required_calls`, 299 for 1 % at delta 0.05), used when no per-level
walk is run.
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
    request columns (``calls.subgroups``) and age band edges that give each call its levels.

    ``thresholds``: grouping -> level -> its own threshold (``inf`` for a withheld level); empty
    when only the count rule ran. ``counts``: recommended calibration calls per level at the overall
    threshold; ``needed``: the fewest that could show the limit at all (none unsafe);
    ``needed_by_level``: about how many a level with its calibration rate would need (None: its
    rate is at or above the limit).
    """

    columns: dict[str, str]
    age_edges: list[int]
    levels: dict[str, list[str]] = field(default_factory=dict)
    needed: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    needed_by_level: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def required_columns(self) -> list[str]:
        keys = {
            key for key, group in GROUP_OF_KEY.items() if self.levels.get(group) or self.thresholds.get(group)
        }
        return [self.columns[key] for key in sorted(keys) if self.columns.get(key)]

    def call_thresholds(self, frame: pd.DataFrame, overall: float) -> np.ndarray:
        """Each call's threshold: the strictest of ``overall`` and its levels' own (``inf`` for a
        call in a withheld level or in a level the calibration window never saw)."""
        threshold = np.full(len(frame), float(overall))
        labels = self.labels(frame) if self.thresholds or any(self.levels.values()) else {}
        for group, values in labels.items():
            own = self.thresholds.get(group)
            if own:
                values = values.astype(str)
                level_threshold = pd.Series(values).map(own).fillna(np.inf).to_numpy(dtype=float)
                threshold = np.maximum(threshold, level_threshold)
        threshold[self._held(labels, len(frame))] = np.inf  # the same labels: served calls are labelled once
        return threshold

    def labels(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        from disposition.report import subgroup_labels  # lazily: report imports matplotlib

        return subgroup_labels(frame, self.columns, self.age_edges, None)

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """True for calls in a withheld level."""
        labels = self.labels(frame) if any(self.levels.values()) else {}
        return self._held(labels, len(frame))

    def _held(self, labels: Mapping[str, np.ndarray], n_calls: int) -> np.ndarray:
        held = np.zeros(n_calls, dtype=bool)
        for group, values in labels.items():
            if self.levels.get(group):
                held |= np.isin(values.astype(str), self.levels[group])
        return held

    def describe(self) -> list[str]:
        """One line per withheld level: its calls at the overall threshold and what it would need."""
        lines = []
        for group, levels in self.levels.items():
            for level in levels:
                count = self.counts.get(group, {}).get(level, 0)
                text = f"{group} = {level} ({count:,} recommended calibration calls; {self.needed:,} needed"
                if group in self.needed_by_level:
                    need, tested = _need_and_tested(self.needed_by_level[group].get(level))
                    why = (
                        "; its walk's first test was not rejected"
                        if tested
                        else "; too few calls for its walk to test any candidate"
                    )
                    text += (
                        f" with none unsafe{why}; at its calibration rate about {need:,} for a test to "
                        "pass half the time"
                        if need is not None
                        else f" with none unsafe{why}; its calibration rate is at or above the limit, "
                        "so no number of calls would do"
                    )
                lines.append(text + ")")
        return lines

    def own_thresholds(self) -> list[str]:
        """One line per level whose own threshold is stricter than none (finite), for the report."""
        return [
            f"{group} = {level}: {value:.4f}"
            for group, levels in self.thresholds.items()
            for level, value in levels.items()
            if np.isfinite(value)
        ]

    def to_dict(self) -> dict:
        return {
            "columns": dict(self.columns),
            "age_edges": list(self.age_edges),
            "levels": {g: list(v) for g, v in self.levels.items()},
            "needed": int(self.needed),
            "counts": self.counts,
            # JSON has no infinity: a withheld level's threshold is stored as the string "inf".
            "thresholds": {
                g: {k: (float(v) if np.isfinite(v) else "inf") for k, v in levels.items()}
                for g, levels in self.thresholds.items()
            },
            "needed_by_level": {
                g: {k: _plain(v) for k, v in d.items()} for g, d in self.needed_by_level.items()
            },
        }

    @classmethod
    def from_dict(cls, state: Mapping) -> WithheldLevels:
        return cls(
            dict(state["columns"]),
            list(state["age_edges"]),
            {g: list(v) for g, v in state["levels"].items()},
            int(state["needed"]),
            {g: dict(v) for g, v in state.get("counts", {}).items()},
            {
                g: {k: float(v) for k, v in levels.items()}
                for g, levels in state.get("thresholds", {}).items()
            },
            {
                g: {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
                for g, d in state.get("needed_by_level", {}).items()
            },
        )


def _need_and_tested(value) -> tuple[int | None, int]:
    """``needed_by_level`` holds (calls needed, candidates tested) for withheld levels, else a count."""
    if isinstance(value, tuple | list):
        return value[0], int(value[1])
    return value, 1


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


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


def level_controls(
    calibration: pd.DataFrame,
    p: np.ndarray,
    unsafe: np.ndarray,
    rules,
    overall_threshold: float,
    columns: Mapping[str, str | None],
    age_edges: Sequence[int],
    safety,
    plan=None,
    plan_calls: pd.DataFrame | None = None,
) -> WithheldLevels | None:
    """Per-level thresholds for the calibration calls (scores ``p``, outcomes ``unsafe``; hard-rule
    calls are never recommended): :func:`disposition.level_thresholds.level_walks` with
    ``safety.for_levels()``, planned on ``plan`` (a :class:`disposition.threshold.Plan`) whose calls
    are ``plan_calls``. With ``safety.subgroup_thresholds`` false, only the count rule
    (:func:`levels_to_withhold`). None when no subgroup column is configured or present."""
    from disposition.level_thresholds import level_walks
    from disposition.safety import excluded_by_rules
    from disposition.threshold import required_calls

    if not safety.subgroup_thresholds:  # one threshold for all calls: only the count rule
        return levels_to_withhold(
            calibration, p, rules, overall_threshold, columns, age_edges, safety.limit, safety.delta
        )
    present = {k: v for k, v in columns.items() if v and v in calibration.columns and k in GROUP_OF_KEY}
    if not present:
        return None
    held = WithheldLevels(present, [int(e) for e in age_edges])
    excluded, _ = excluded_by_rules(calibration, rules)
    plan_labels = held.labels(plan_calls) if plan is not None and plan_calls is not None else None
    walks = level_walks(
        held.labels(calibration),
        p,
        unsafe,
        ~excluded,
        overall_threshold,
        safety.for_levels(),
        plan,
        plan_labels,
    )
    levels, counts, thresholds, needed = {}, {}, {}, {}
    for walk in walks:
        counts.setdefault(walk.group, {})[walk.level] = walk.recommended
        thresholds.setdefault(walk.group, {})[walk.level] = walk.threshold
        needed.setdefault(walk.group, {})[walk.level] = walk.needed
        # A level the hard rules exclude entirely (category C1) is not withheld: it was never open.
        if walk.withheld and walk.eligible > 0:
            levels.setdefault(walk.group, []).append(walk.level)
            needed[walk.group][walk.level] = (walk.needed, walk.tested)
    return WithheldLevels(
        held.columns,
        held.age_edges,
        levels,
        required_calls(safety.limit, safety.delta),
        counts,
        thresholds,
        needed,
    )
