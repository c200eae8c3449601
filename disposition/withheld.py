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
    # The joint walk's one threshold for every served call (disposition/joint_threshold.py), which
    # replaces the overall one; None for the per-level walks and the count rule. ``joint``: how it
    # was chosen (p-value, walks, the level that bound it), for the report.
    common_threshold: float | None = None
    joint: dict[str, object] = field(default_factory=dict)

    @property
    def required_columns(self) -> list[str]:
        keys = {
            key for key, group in GROUP_OF_KEY.items() if self.levels.get(group) or self.thresholds.get(group)
        }
        return [self.columns[key] for key in sorted(keys) if self.columns.get(key)]

    def call_thresholds(self, frame: pd.DataFrame, overall: float) -> np.ndarray:
        """Each call's threshold: the strictest of ``overall`` and its levels' own (``inf`` for a
        call in a withheld level or in a level the calibration window never saw)."""
        common = self.common_threshold
        threshold = np.full(len(frame), float(overall if common is None else common))
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
                        "; withheld before testing: the planning data predicted that serving it would "
                        "make the joint test fail"
                        if self.common_threshold is not None
                        else "; its walk's first test was not rejected"
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
        """One line per level whose own threshold is stricter than none (finite), for the report
        (none with the joint walk's one common threshold)."""
        if self.common_threshold is not None:
            return []
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
            "common_threshold": None
            if self.common_threshold is None
            else (float(self.common_threshold) if np.isfinite(self.common_threshold) else "inf"),
            "joint": dict(self.joint),
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
            None if state.get("common_threshold") is None else float(state["common_threshold"]),
            dict(state.get("joint", {})),
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


def _configured_levels(
    calibration: pd.DataFrame, rules, columns: Mapping[str, str | None], age_edges: Sequence[int]
) -> tuple[WithheldLevels, np.ndarray] | None:
    """The configured groupings present in ``calibration`` (an empty :class:`WithheldLevels` that
    labels calls) and which calls no hard rule excludes; None when no subgroup column is present."""
    from disposition.safety import excluded_by_rules

    present = {k: v for k, v in columns.items() if v and v in calibration.columns and k in GROUP_OF_KEY}
    if not present:
        return None
    excluded, _ = excluded_by_rules(calibration, rules)
    return WithheldLevels(present, [int(e) for e in age_edges]), ~excluded


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
    from disposition.threshold import required_calls

    if not safety.subgroup_thresholds:  # one threshold for all calls: only the count rule
        return levels_to_withhold(
            calibration, p, rules, overall_threshold, columns, age_edges, safety.limit, safety.delta
        )
    if safety.subgroup_control == "joint":
        return joint_controls(calibration, p, unsafe, rules, columns, age_edges, safety, plan, plan_calls)
    configured = _configured_levels(calibration, rules, columns, age_edges)
    if configured is None:
        return None
    held, eligible = configured
    plan_labels = held.labels(plan_calls) if plan is not None and plan_calls is not None else None
    walks = level_walks(
        held.labels(calibration),
        p,
        unsafe,
        eligible,
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


def joint_controls(
    calibration: pd.DataFrame,
    p: np.ndarray,
    unsafe: np.ndarray,
    rules,
    columns: Mapping[str, str | None],
    age_edges: Sequence[int],
    safety,
    plan=None,
    plan_calls: pd.DataFrame | None = None,
) -> WithheldLevels | None:
    """The joint walk (:mod:`disposition.joint_threshold`): levels withheld up front from planning
    data and counts, then one threshold for every served call, tested in the overall and every
    served level at once (intersection-union), delta split over ``safety``'s planned starts. It
    replaces the overall threshold (``common_threshold``). None when no subgroup column is present.
    """
    from disposition.joint_threshold import joint_threshold, plan_served_levels
    from disposition.level_thresholds import calls_needed
    from disposition.threshold import required_calls

    configured = _configured_levels(calibration, rules, columns, age_edges)
    if configured is None:
        return None
    held, eligible = configured
    labels = {g: np.asarray(v).astype(str) for g, v in held.labels(calibration).items()}
    p, unsafe = np.asarray(p, dtype=float), np.asarray(unsafe, dtype=bool)
    level_power = safety.subgroup_confirm_power
    if plan is not None and plan_calls is not None:
        chosen = plan_served_levels(
            plan,
            held.labels(plan_calls),
            {g: v[eligible] for g, v in labels.items()},
            int(eligible.sum()),
            safety.limit,
            safety.delta,
            safety.confirm_power,
            level_power,
            safety.test_scale,
            safety.start_shares,
            safety.start_fractions,
        )
        served_levels, withheld, starts = chosen.served, chosen.withheld, chosen.starts
    else:  # no planning data: serve every level with enough calls, one walk from the strict end
        need = required_calls(safety.limit, safety.delta)
        withheld = {
            g: [lv for lv in sorted(np.unique(v)) if int((eligible & (v == lv)).sum()) < need]
            for g, v in labels.items()
        }
        withheld = {g: v for g, v in withheld.items() if v}
        served_levels = {
            g: [lv for lv in sorted(np.unique(v)) if lv not in withheld.get(g, [])] for g, v in labels.items()
        }
        starts = [(1, 1.0)]
    served = eligible.copy()
    for g, levels in withheld.items():
        served &= ~np.isin(labels[g], levels)
    test = joint_threshold(
        p,
        unsafe,
        served,
        safety.limit,
        safety.delta,
        starts,
        labels,
        served_levels,
        safety.confirm_power,
        level_power,
        safety.test_scale,
        safety.grid,
    )
    counts, needed, levels = {}, {}, {}
    for g, values in labels.items():
        for lv in sorted(np.unique(values)):
            at = eligible & (values == lv) & (p >= test.threshold)
            counts.setdefault(g, {})[lv] = int(at.sum())
            if lv in withheld.get(g, []) and int((eligible & (values == lv)).sum()) > 0:
                levels.setdefault(g, []).append(lv)
                # its rate above the served threshold (all its eligible calls when none is): what a
                # test of it would face; descriptive only, the plan chose without outcomes
                mine = at if at.any() else eligible & (values == lv)
                rate = float(unsafe[mine].mean())
                # withheld by the plan: not tested, so "tested" is 0
                needed.setdefault(g, {})[lv] = (
                    calls_needed(rate, safety.limit, safety.delta, confirm_power=level_power),
                    0,
                )
    joint = {
        "p_value": test.p_value,
        "tested": test.tested,
        "rejected": test.rejected,
        "start_calls": test.start_calls,
        "starts": [list(s) for s in test.starts],
        "weakest": test.weakest,
        "served_calls": int(served.sum()),
        "recommended": int((served & (p >= test.threshold)).sum()),
        "unsafe": int((served & (p >= test.threshold) & unsafe).sum()),
    }
    return WithheldLevels(
        held.columns,
        held.age_edges,
        levels,
        required_calls(safety.limit, safety.delta),
        counts,
        # every served level at the common threshold and every other level at inf, so that a level
        # value the calibration window never saw maps to no threshold (withheld) when served
        {
            g: {
                lv: float(test.threshold) if lv in served_levels.get(g, []) else np.inf for lv in np.unique(v)
            }
            for g, v in labels.items()
        },
        needed,
        float(test.threshold),
        joint,
    )
