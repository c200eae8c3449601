"""Threshold procedures compared on the development seeds' cached arrays (see dev_study.py).

Every procedure chooses on the calibration window (planning, when used, on the training window's
out-of-fold probabilities for the model and on the training window's true probabilities for the
oracle) and is scored once on the test window, as the committed benchmark scores the pipeline.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from disposition.evaluation import SafetySettings
from disposition.level_thresholds import level_walks
from disposition.safety import clopper_pearson_upper
from disposition.threshold import Plan

GROUPS = ("age_band", "sex", "category")
LIMIT, DELTA = 0.01, 0.05

# name -> (overall settings, per-level settings or None for no per-level thresholds)
VARIANTS = {
    "counts (before)": ({"plan_start": None}, None),
    "plan 0.7": ({"plan_start": 0.7}, None),
    "plan 0.9": ({"plan_start": 0.9}, None),
    "plan max power": ({"plan_start": "max_power"}, None),
    "counts + levels vs limit": ({"plan_start": None}, {"confirm_power": None, "plan_start": None}),
    "max power + levels confirm 0.5": ({"plan_start": "max_power"}, {}),
    "max power + levels confirm 0.2": ({"plan_start": "max_power"}, {"confirm_power": 0.2}),
    "max power + levels vs limit": ({"plan_start": "max_power"}, {"confirm_power": None}),
    "plan 0.7 + levels vs limit": ({"plan_start": 0.7}, {"confirm_power": None}),
}


def _thresholds(d: dict, window: str, score: str, plan_score: str, safety: SafetySettings, levels):
    """Per-call thresholds on ``window`` chosen on the calibration window with ``score``."""
    plan = Plan(d[f"plan_{plan_score}"], d["plan_unsafe"], d["plan_eligible"])
    p, unsafe, eligible = d[f"calibration_{score}"], d["calibration_unsafe"], d["calibration_eligible"]
    overall = safety.choose(p, unsafe, eligible, plan).threshold
    out = np.full(len(d[f"{window}_{score}"]), overall)
    if levels is None:
        return out
    labels = {g: d[f"calibration_{g}"] for g in GROUPS}
    plan_labels = {g: d[f"plan_{g}"] for g in GROUPS}
    level_safety = replace(safety, **levels)
    for walk in level_walks(labels, p, unsafe, eligible, overall, level_safety, plan, plan_labels):
        in_level = d[f"{window}_{walk.group}"] == walk.level
        out[in_level] = np.maximum(out[in_level], walk.threshold)
    known = {g: set(np.unique(d[f"calibration_{g}"])) for g in GROUPS}
    for g in GROUPS:  # a level the calibration window never saw has no control of its own
        out[~np.isin(d[f"{window}_{g}"], list(known[g]))] = np.inf
    return out


def _score(d: dict, score: str, threshold: np.ndarray) -> dict:
    unsafe = d["test_unsafe"]
    rec = d["test_eligible"] & (d[f"test_{score}"] >= threshold)
    n, k = int(rec.sum()), int(unsafe[rec].sum())
    worst, above, served = 0.0, 0, 0
    for g in GROUPS:
        for level in np.unique(d[f"test_{g}"]):
            m = rec & (d[f"test_{g}"] == level)
            if m.sum():
                served += 1
                bound = float(clopper_pearson_upper(unsafe[m].sum(), m.sum(), 1 - DELTA, two_sided=False))
                above += bound > LIMIT
                worst = max(worst, bound)
    return {
        "share": n / len(rec),
        "bound": float(clopper_pearson_upper(k, n, 1 - DELTA, two_sided=False)),
        "served": served,
        "above": above,
        "worst": worst,
    }


def _study(seeds, variants: dict, thresholds, tag: str | None = None) -> pd.DataFrame:
    """One row per seed and variant: the model's closure on the test window under the variant's
    thresholds, beside the oracle's under the same procedure. ``thresholds(d, score, variant, meta)``
    gives the test window's per-call thresholds for scores ``score`` (``p`` or ``oracle``)."""
    from experiments.disposition_safety.dev_study import load

    rows = []
    for seed in seeds:
        d, meta = load(seed, tag)
        for name, variant in variants.items():
            model = _score(d, "p", thresholds(d, "p", variant, meta))
            oracle = _score(d, "oracle", thresholds(d, "oracle", variant, meta))
            rows.append(
                {
                    "seed": seed,
                    "variant": name,
                    **model,
                    "oracle_share": oracle["share"],
                    "ratio": model["share"] / oracle["share"] if oracle["share"] else np.nan,
                    "oracle_bound": oracle["bound"],
                    "oracle_above": oracle["above"],
                }
            )
    return pd.DataFrame(rows)


def study(seeds, variants=VARIANTS, tag: str | None = None) -> pd.DataFrame:
    def thresholds(d, score, variant, meta):
        overall, levels = variant
        base = SafetySettings(
            limit=LIMIT, delta=DELTA, confirm_power=0.5, test_scale=meta["test_scale"], grid=100
        )
        return _thresholds(d, "test", score, score, replace(base, **overall), levels)

    return _study(seeds, variants, thresholds, tag)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per variant over seeds: the benchmark's four targets counted, and mean closure."""
    return (
        table.assign(
            bound_ok=table["bound"] <= LIMIT,
            levels_ok=(table["above"] == 0) & (table["served"] > 0),
            share_ok=table["share"] >= 0.15,
            ratio_ok=table["ratio"] >= 0.9,
        )
        .groupby("variant", sort=False)
        .agg(
            bound_ok=("bound_ok", "sum"),
            levels_ok=("levels_ok", "sum"),
            share_ok=("share_ok", "sum"),
            ratio_ok=("ratio_ok", "sum"),
            mean_share=("share", "mean"),
            min_share=("share", "min"),
            mean_ratio=("ratio", "mean"),
            max_bound=("bound", "max"),
            levels_above=("above", "sum"),
            oracle_mean_share=("oracle_share", "mean"),
        )
        .reset_index()
    )


# The joint (intersection-union) procedure: one threshold for every served level, levels withheld
# up front by planning data, delta split over planned starts (disposition/joint_threshold.py).
# name -> (overall confirm_power, level confirm_power, start fractions, shares of delta)
JOINT_VARIANTS = {
    "joint vs limit, 1 start": (None, None, (1.0,), (1.0,), 0.5),
    "joint vs limit, 3 starts": (None, None, (1.0, 0.6, 0.35), (0.6, 0.25, 0.15), 0.5),
    "joint confirm 0.5/levels limit, 3 starts": (0.5, None, (1.0, 0.6, 0.35), (0.6, 0.25, 0.15), 0.5),
    "joint confirm 0.3/levels 0.2, 3 starts": (0.3, 0.2, (1.0, 0.6, 0.35), (0.6, 0.25, 0.15), 0.5),
}


def _joint(d: dict, window: str, score: str, variant, test_scale: float) -> np.ndarray:
    from disposition.joint_threshold import joint_threshold, plan_served_levels

    power, level_power, fractions, shares, quantile = variant
    plan = Plan(d[f"plan_{score}"], d["plan_unsafe"], d["plan_eligible"])
    p, unsafe, eligible = d[f"calibration_{score}"], d["calibration_unsafe"], d["calibration_eligible"]
    cal_labels = {g: d[f"calibration_{g}"] for g in GROUPS}
    chosen = plan_served_levels(
        plan,
        {g: d[f"plan_{g}"] for g in GROUPS},
        {g: v[eligible] for g, v in cal_labels.items()},
        int(eligible.sum()),
        LIMIT,
        DELTA,
        power,
        level_power,
        test_scale,
        shares,
        fractions,
        quantile,
    )
    served = eligible.copy()
    for g, levels in chosen.withheld.items():
        served &= ~np.isin(cal_labels[g], levels)
    test = joint_threshold(
        p,
        unsafe,
        served,
        LIMIT,
        DELTA,
        chosen.starts,
        cal_labels,
        chosen.served,
        power,
        level_power,
        test_scale,
    )
    out = np.full(len(d[f"{window}_{score}"]), test.threshold)
    for g in GROUPS:
        known = set(chosen.served.get(g, []))
        out[~np.isin(d[f"{window}_{g}"], list(known))] = np.inf
    return out


def joint_study(seeds, variants=JOINT_VARIANTS, tag: str | None = None) -> pd.DataFrame:
    return _study(
        seeds, variants, lambda d, score, v, meta: _joint(d, "test", score, v, meta["test_scale"]), tag
    )


# Multi-start walks (delta split over planned starts) for the overall threshold and each level's.
# name -> (start fractions, shares, level delta divisor: 1 = per-level delta, "L" = Bonferroni over levels)
MULTI_VARIANTS = {
    "3 starts + levels confirm 0.2": ((1.0, 0.6, 0.35), (0.6, 0.25, 0.15), 1, 0.2),
    "2 starts + levels confirm 0.2": ((1.0, 0.5), (0.7, 0.3), 1, 0.2),
    "3 starts + levels vs limit": ((1.0, 0.6, 0.35), (0.6, 0.25, 0.15), 1, None),
    "3 starts + levels confirm 0.2, family-wise": ((1.0, 0.6, 0.35), (0.6, 0.25, 0.15), "L", 0.2),
    "3 starts + levels vs limit, family-wise": ((1.0, 0.6, 0.35), (0.6, 0.25, 0.15), "L", None),
    "3 starts, no levels": ((1.0, 0.6, 0.35), (0.6, 0.25, 0.15), None, None),
}


def _multi_walk(p, unsafe, eligible, plan, safety, fractions, shares, delta):
    from disposition.joint_threshold import joint_threshold

    start = replace(safety, delta=delta).start(plan, int(eligible.sum()))
    if start is None:
        return np.inf
    starts = [(max(int(round(start * f)), 1), s) for f, s in zip(fractions, shares, strict=True)]
    return joint_threshold(
        p,
        unsafe,
        eligible,
        LIMIT,
        delta,
        starts,
        confirm_power=safety.confirm_power,
        test_scale=safety.test_scale,
        grid=safety.grid,
    ).threshold


def _multi(d: dict, window: str, score: str, variant, test_scale: float) -> np.ndarray:
    fractions, shares, divisor, level_power = variant
    base = SafetySettings(limit=LIMIT, delta=DELTA, confirm_power=0.5, test_scale=test_scale, grid=100)
    plan = Plan(d[f"plan_{score}"], d["plan_unsafe"], d["plan_eligible"])
    p, unsafe, eligible = d[f"calibration_{score}"], d["calibration_unsafe"], d["calibration_eligible"]
    overall = _multi_walk(p, unsafe, eligible, plan, base, fractions, shares, DELTA)
    out = np.full(len(d[f"{window}_{score}"]), overall)
    if divisor is None:
        return out
    levels = [(g, lv) for g in GROUPS for lv in np.unique(d[f"calibration_{g}"])]
    # family-wise: the overall walk and every level's share delta (Bonferroni)
    delta = DELTA if divisor == 1 else DELTA / (len(levels) + 1)
    if divisor != 1:
        overall = _multi_walk(p, unsafe, eligible, plan, base, fractions, shares, delta)
        out[:] = overall
    level_safety = replace(base, confirm_power=level_power)
    for g, lv in levels:
        mask = d[f"calibration_{g}"] == lv
        own_plan = plan.within(d[f"plan_{g}"] == lv)
        t = _multi_walk(
            p[mask], unsafe[mask], eligible[mask], own_plan, level_safety, fractions, shares, delta
        )
        in_level = d[f"{window}_{g}"] == lv
        out[in_level] = np.maximum(out[in_level], t)
    return out


def multi_study(seeds, variants=MULTI_VARIANTS, tag: str | None = None) -> pd.DataFrame:
    return _study(
        seeds, variants, lambda d, score, v, meta: _multi(d, "test", score, v, meta["test_scale"]), tag
    )
