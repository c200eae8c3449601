"""Coherent hierarchies: is the reconciled top level as good as forecasting the top series directly?

Two hierarchies: SWAST's seven areas -> the trust (real data, Monks et al. 2023), and the synthetic
world's areas x ARP categories -> area totals, category totals and the total. At every origin the
base model forecasts every node and :class:`~forecasting.hierarchy.HierarchicalForecaster`
reconciles them (each method from the same fit, so the methods differ only in reconciliation);
the *direct* forecast is the same model fitted on the top series alone, with its own intervals.

Honest protocol: the reconciliation method is frozen on the development origins (SWAST: test
windows inside 2017-2018; synthetic: inside 2022) by the same criterion ``auto`` uses (scaled
error averaged over levels), then the held-out year (SWAST 2019 on the Monks et al. origins;
synthetic 2023) is run once and reported for the frozen method, with every method shown beside it.
Uncertainty: a moving-block bootstrap over origins (blocks as long as the forecast horizon spans,
so that overlapping test windows resample together), 95 % intervals.

Run: ``python -m experiments.bench benchmark=hierarchy`` (config: conf/benchmark/hierarchy.yaml).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone

from experiments.harness import ROOT, BenchmarkReport, model_label
from forecasting.backtest import backtest_cutoffs, origin_scales
from forecasting.data import load_daily_counts
from forecasting.hierarchy import METHODS, TOTAL, HierarchicalForecaster, aggregate, metrics_by_level
from forecasting.hierarchy.forecaster import INTERVALS
from forecasting.metrics import summary_metrics
from forecasting.pipeline import build_forecaster

DIRECT = "direct (top series alone)"
BASE = "base (unreconciled)"
COVERAGE_TOLERANCE = 0.025
HORIZON_BANDS = [(1, 7), (8, 28), (29, 56), (57, 84)]  # days ahead, for coverage by horizon
N_BOOTSTRAP = 2000


def load_hierarchy(spec: Mapping) -> tuple[pd.DataFrame, object]:
    """Every node's series and the hierarchy of one data set in the config."""
    path = Path(spec["path"]) if Path(spec["path"]).is_absolute() else ROOT / spec["path"]
    if spec["kind"] == "swast":
        leaves = load_daily_counts(
            path,
            columns={"unique_id": "ORA", "ds": "Actual_dt", "y": "Actual_Value"},
            exclude_series=list(spec["exclude_series"]),
        )
        return aggregate(leaves.assign(area=leaves["unique_id"]), ["area"])
    leaves = load_daily_counts(path, keep=["area", "category"])
    leaves = leaves[leaves["area"].isin(list(spec["areas"]))]
    return aggregate(leaves, ["area", "category"])


def period_backtest(
    model,
    nodes: pd.DataFrame,
    hierarchy,
    period: Mapping,
    horizon: int,
    levels: list[int],
    season_length: int,
    settings: Mapping,
    methods: Sequence[str],
) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """Forecasts at every origin of ``period`` (each method, the base and the direct, one long
    frame), the method ``auto`` chose at each origin, and the calibrated copula's factors per
    origin, method and level of the hierarchy."""
    cutoffs = backtest_cutoffs(
        nodes["ds"].max(), horizon, int(period["n_origins"]), int(period["step"]), period["first_cutoff"]
    )
    frames, choices, factors = [], [], []
    for number, cutoff in enumerate(cutoffs, start=1):
        print(f"hierarchy benchmark: origin {number}/{len(cutoffs)} ({cutoff:%Y-%m-%d})", flush=True)
        train = nodes[nodes["ds"] <= cutoff]
        test = nodes[(nodes["ds"] > cutoff) & (nodes["ds"] <= cutoff + pd.Timedelta(days=horizon))]
        scale = origin_scales(train, season_length)
        fitted = HierarchicalForecaster(clone(model), hierarchy, "auto", horizon=horizon, **settings).fit(
            train
        )
        forecasts = {}
        for method in METHODS:  # every method and every kind of interval from the one fit
            for intervals in INTERVALS:
                variant = fitted.reconciled_with(method, intervals)
                forecasts[label(method, intervals)] = variant.predict(horizon, levels)
            # The calibrated copula's factors on the copula's spread, per level of the hierarchy.
            table = fitted.reconciled_with(method).calibration_factors(levels)
            factors.append(table.rename_axis("level").reset_index().assign(method=method, cutoff=cutoff))
        if "auto" in methods:
            for intervals in INTERVALS:
                variant = fitted.reconciled_with(fitted.method_, intervals)
                forecasts[label("auto", intervals)] = variant.predict(horizon, levels)
        forecasts[BASE] = fitted.model_.predict(horizon, levels)
        top = train[train["unique_id"] == TOTAL]
        forecasts[DIRECT] = clone(model).fit(top).predict(horizon, levels)
        for name, forecast in forecasts.items():
            if name.split(" + ")[0] not in (*methods, BASE, DIRECT):
                continue
            fold = test.merge(forecast, on=["unique_id", "ds"], how="inner", validate="one_to_one")
            fold = fold.assign(method=name, cutoff=cutoff, h=(fold["ds"] - cutoff).dt.days)
            frames.append(fold.assign(scale=fold["unique_id"].map(scale)))
        choices.append(fitted.method_)
        table = fitted.reconciled_with(fitted.method_).calibration_factors(levels)
        factors.append(table.rename_axis("level").reset_index().assign(method="auto", cutoff=cutoff))
    choice = pd.Series(choices, index=cutoffs, name="auto_choice")
    return pd.concat(frames, ignore_index=True), choice, pd.concat(factors, ignore_index=True)


def label(method: str, intervals: str) -> str:
    """``mint_shrink`` (joint-error intervals), ``mint_shrink + copula`` or ``mint_shrink +
    calibrated_copula``."""
    return method if intervals == INTERVALS[0] else f"{method} + {intervals}"


def level_table(frame: pd.DataFrame, hierarchy, levels: list[int]) -> pd.DataFrame:
    """MASE, CRPS and coverage per method and level (DIRECT exists at the top only)."""
    rows = []
    for method, part in frame.groupby("method", sort=False):
        by_level = metrics_by_level(part, hierarchy, levels).assign(method=method)
        rows.append(by_level)
    columns = ["method", "level", "n_nodes", "mase", "crps", *[f"coverage_{lv}" for lv in levels]]
    return pd.concat(rows, ignore_index=True)[columns]


def choice_score(table: pd.DataFrame) -> pd.Series:
    """The criterion ``auto`` uses, on the development origins: MASE averaged over levels (the
    kind of interval does not change the mean, so only the default kind is compared)."""
    plain = ~table["method"].isin([BASE, DIRECT]) & ~table["method"].str.contains(" + ", regex=False)
    return table[plain].groupby("method")["mase"].mean().sort_values()


def interval_choice(table: pd.DataFrame, method: str, levels: list[int]) -> tuple[str, dict[str, float]]:
    """The kind of interval with the smallest worst coverage gap (any level, 80 or 95 %) on the
    development origins, for the frozen method."""
    gaps = {}
    for intervals in INTERVALS:
        rows = table[table["method"] == label(method, intervals)]
        gaps[intervals] = max(float((rows[f"coverage_{lv}"] - lv / 100).abs().max()) for lv in levels)
    return min(gaps, key=gaps.get), gaps


def coverage_by_horizon(
    frame: pd.DataFrame, tree, names: Sequence[str], levels: list[int], bands: Sequence[tuple[int, int]]
) -> pd.DataFrame:
    """Coverage of each forecast per level of the hierarchy and band of days ahead, with the share
    of days below the lower bound (over- or under-forecasting shows as a lopsided miss)."""
    part = frame[frame["method"].isin(names)]
    part = part.assign(level=part["unique_id"].map(tree.level_of()))
    rows = []
    for (name, level), group in part.groupby(["method", "level"], sort=False):
        for lo, hi in bands:
            days = group[group["h"].between(lo, hi)]
            row = {"method": name, "level": level, "h": f"{lo}-{hi}"}
            for lv in levels:
                row[f"coverage_{lv}"] = float(days["y"].between(days[f"lo_{lv}"], days[f"hi_{lv}"]).mean())
                row[f"below_{lv}"] = float((days["y"] < days[f"lo_{lv}"]).mean())
            rows.append(row)
    order = {name: i for i, name in enumerate(tree.level_names)}
    table = pd.DataFrame(rows)
    return table.sort_values(
        ["method", "level"], key=lambda c: c.map(order) if c.name == "level" else c, kind="stable"
    )


def mean_factors(factors: pd.DataFrame, method: str, levels: list[int]) -> pd.DataFrame:
    """The calibrated copula's factors of ``method`` averaged over origins (with their range)."""
    mine = factors[factors["method"] == method]
    rows = []
    for level, group in mine.groupby("level", sort=False):
        row = {"level": level}
        for lv in levels:
            row[f"factor_{lv}"] = float(group[lv].mean())
            row[f"factor_{lv}_range"] = f"{group[lv].min():.2f}-{group[lv].max():.2f}"
        rows.append(row)
    return pd.DataFrame(rows)


def base_incoherence(frame: pd.DataFrame, tree) -> float:
    """How far the model's own forecast of the total is from the sum of its forecasts of the leaves,
    as a share of that sum, averaged over origins and days: the most reconciliation can move it."""
    base = frame[frame["method"] == BASE].pivot_table(
        index=["cutoff", "ds"], columns="unique_id", values="mean"
    )
    leaves = base[list(tree.leaves)].sum(axis=1)
    return float(((base[TOTAL] - leaves).abs() / leaves).mean())


def per_origin(frame: pd.DataFrame, method: str, levels: list[int]) -> pd.DataFrame:
    """Top-level MASE and CRPS of ``method`` at each origin, oldest first."""
    top = frame[(frame["method"] == method) & (frame["unique_id"] == TOTAL)]
    rows = {cutoff: summary_metrics(part, levels) for cutoff, part in top.groupby("cutoff")}
    return pd.DataFrame.from_dict(rows, orient="index")[["mase", "crps"]].sort_index()


def block_bootstrap_ratio(a: np.ndarray, b: np.ndarray, block: int, seed: int = 0) -> tuple[float, float]:
    """95 % moving-block bootstrap interval of mean(a) / mean(b) over paired origins."""
    n = len(a)
    block = max(1, min(block, n))
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n - block + 1, size=(N_BOOTSTRAP, math.ceil(n / block)))
    index = (starts[:, :, None] + np.arange(block)).reshape(N_BOOTSTRAP, -1)[:, :n]
    ratios = a[index].mean(axis=1) / b[index].mean(axis=1)
    return float(np.quantile(ratios, 0.025)), float(np.quantile(ratios, 0.975))


def top_comparison(frame: pd.DataFrame, method: str, levels: list[int], block: int) -> pd.DataFrame:
    """Reconciled top vs direct (and base): means over origins and the bootstrap ratio interval."""
    direct = per_origin(frame, DIRECT, levels)
    rows = []
    for name in (method, BASE, DIRECT):
        ours = per_origin(frame, name, levels)
        row = {"forecast": name}
        for metric in ("mase", "crps"):
            row[metric] = float(ours[metric].mean())
            ratio = row[metric] / float(direct[metric].mean())
            lo, hi = block_bootstrap_ratio(ours[metric].to_numpy(), direct[metric].to_numpy(), block)
            row[f"{metric}_vs_direct"] = ratio
            row[f"{metric}_vs_direct_95ci"] = f"{lo:.3f}-{hi:.3f}"
        rows.append(row)
    return pd.DataFrame(rows)


def markdown_table(frame: pd.DataFrame) -> str:
    shown = frame.copy()
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column]):
            shown[column] = shown[column].map(lambda v: f"{v:.3f}")
    header = "| " + " | ".join(map(str, shown.columns)) + " |"
    rule = "|" + "|".join("---" for _ in shown.columns) + "|"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in shown.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def run(
    workdir: Path,
    model: Mapping,
    datasets: Mapping[str, Mapping],
    horizon: int,
    levels: Sequence[int],
    season_length: int,
    hierarchy: Mapping,
    methods: Sequence[str],
) -> BenchmarkReport:
    levels = [int(lv) for lv in levels]
    forecaster = build_forecaster(model)
    sections, metrics, tables = [], {}, {}
    load_before, start = os.getloadavg()[0], time.perf_counter()
    for name, spec in datasets.items():
        nodes, tree = load_hierarchy(spec)
        results, auto_choices, factors = {}, {}, {}
        for period in ("dev", "test"):
            frame, auto_choices[period], factors[period] = period_backtest(
                forecaster, nodes, tree, spec[period], horizon, levels, season_length, hierarchy, methods
            )
            frame.to_csv(workdir / f"{name}_{period}_backtest.csv.gz", index=False)
            factors[period].to_csv(workdir / f"{name}_{period}_calibration_factors.csv", index=False)
            results[period] = frame
        dev_table = level_table(results["dev"], tree, levels)
        scores = choice_score(dev_table)
        frozen_method = str(scores.index[0])
        intervals, gaps = interval_choice(dev_table, frozen_method, levels)
        frozen = label(frozen_method, intervals)
        test = results["test"]
        test_table = level_table(test, tree, levels)
        block = math.ceil(horizon / int(spec["test"]["step"]))
        top = top_comparison(test, frozen, levels, block)
        dev_top = top_comparison(
            results["dev"], frozen, levels, math.ceil(horizon / int(spec["dev"]["step"]))
        )
        tables[f"{name}_levels"] = test_table.assign(period="test")
        tables[f"{name}_dev_levels"] = dev_table.assign(period="dev")
        tables[f"{name}_top"] = top
        # The frozen forecast beside both copulas of the frozen method: where each misses, and how.
        shown = list(dict.fromkeys([frozen, *(label(frozen_method, kind) for kind in INTERVALS[1:])]))
        by_horizon = {
            period: coverage_by_horizon(results[period], tree, shown, levels, HORIZON_BANDS)
            for period in ("dev", "test")
        }
        tables[f"{name}_coverage_by_horizon"] = pd.concat(
            [table.assign(period=period) for period, table in by_horizon.items()], ignore_index=True
        )
        calibration = {period: mean_factors(factors[period], frozen_method, levels) for period in factors}
        tables[f"{name}_calibration_factors"] = pd.concat(
            [table.assign(period=period) for period, table in factors.items()], ignore_index=True
        )
        frozen_levels = test_table[test_table["method"] == frozen]
        worst = {lv: float((frozen_levels[f"coverage_{lv}"] - lv / 100).abs().max()) for lv in levels}
        reconciled = top.iloc[0]
        metrics |= {
            f"{name}_top_mase_vs_direct": float(reconciled["mase_vs_direct"]),
            f"{name}_top_crps_vs_direct": float(reconciled["crps_vs_direct"]),
            **{f"{name}_worst_coverage_gap_{lv}": gap for lv, gap in worst.items()},
        }
        choices = auto_choices["test"].value_counts()
        auto_choices["test"].to_csv(workdir / f"{name}_test_auto_choices.csv")
        metrics[f"{name}_base_incoherence"] = incoherence = base_incoherence(test, tree)
        sections.append(
            section(
                name=name,
                spec=spec,
                tree=tree,
                frozen=frozen,
                scores=scores,
                gaps=gaps,
                dev_table=dev_table,
                dev_top=dev_top,
                test_table=test_table,
                top=top,
                worst=worst,
                choices=choices,
                levels=levels,
                incoherence=incoherence,
                by_horizon=by_horizon,
                calibration=calibration,
                frozen_method=frozen_method,
            )
        )
    seconds = time.perf_counter() - start
    metrics["wall_seconds"] = seconds
    header = HEADER.format(
        model=model_label(forecaster),
        horizon=horizon,
        settings=", ".join(f"{k}={v}" for k, v in hierarchy.items()),
        seconds=seconds / 60,
        load_before=load_before,
        load_after=os.getloadavg()[0],
    )
    return BenchmarkReport(markdown="\n\n".join([header, *sections]) + "\n", metrics=metrics, tables=tables)


HEADER = """# Coherent hierarchies: reconciled totals vs direct forecasts

`python -m experiments.bench benchmark=hierarchy` (conf/benchmark/hierarchy.yaml,
experiments/hierarchy/run.py). Base model: {model}, forecasting every node {horizon} days ahead;
reconciliation and intervals as in `forecasting/hierarchy/` ({settings}: the model is refitted at
that many earlier origins inside each training window, and its joint errors there weight MinT/WLS,
choose `auto` and make the intervals). **Direct** is the same model fitted on the top series alone,
with its own intervals; **base** is the model's own forecast of each node before reconciliation.

Protocol: the reconciliation method is frozen on the development origins by the criterion `auto`
uses (MASE averaged over levels), then the held-out year is run once. Ratios below 1 favour the
reconciled forecast; their 95 % intervals come from a moving-block bootstrap over origins (blocks
spanning one horizon, {n_boot} resamples). Coverage is pooled over the nodes of a level, origins
and days; the target is within 2.5 points of nominal at every level.

Wall time {seconds:.1f} min for everything below, on a shared machine (load average {load_before:.1f}
before, {load_after:.1f} after; 2 cores shared with other work), so only a rough guide.""".replace(
    "{n_boot}", str(N_BOOTSTRAP)
)


NEARLY_COHERENT = """ The base forecasts are nearly coherent already, so reconciliation can move
the means very little: a ratio of 1.000 to direct means "no worse", not "better"."""


def section(  # keyword-only: many results of like kinds, easy to pass in the wrong order
    *,
    name,
    spec,
    tree,
    frozen,
    scores,
    gaps,
    dev_table,
    dev_top,
    test_table,
    top,
    worst,
    choices,
    levels,
    incoherence,
    by_horizon,
    calibration,
    frozen_method,
) -> str:
    reconciled = top.iloc[0]
    verdicts = []
    for metric in ("mase", "crps"):
        ratio, ci = reconciled[f"{metric}_vs_direct"], reconciled[f"{metric}_vs_direct_95ci"]
        met = "met" if ratio <= 1 else "missed"
        verdicts.append(
            f"- Top level {metric.upper()} at least as good as direct: **{met}** (ratio {ratio:.3f}, "
            f"95 % interval {ci})"
        )
    for lv in levels:
        met = "met" if worst[lv] <= COVERAGE_TOLERANCE else "missed"
        verdicts.append(
            f"- {lv} % coverage within 2.5 points at every level: **{met}** (largest gap "
            f"{100 * worst[lv]:.1f} points)"
        )
    dev, test = spec["dev"], spec["test"]
    nodes = ", ".join(f"{level} ({len(ids)})" for level, ids in tree.nodes_by_level().items())
    auto = ", ".join(f"{method} {count}" for method, count in choices.items())
    frozen_test = test_table[test_table["method"].isin([frozen, BASE, DIRECT])]
    return f"""## {name}

Nodes: {nodes}. Development origins: {dev["n_origins"]} every {dev["step"]} days from
{dev["first_cutoff"]}; held-out: {test["n_origins"]} every {test["step"]} days from {test["first_cutoff"]}.

Frozen on development origins: **{frozen}**. Method by MASE averaged over levels
({", ".join(f"{m} {v:.4f}" for m, v in scores.items())}); intervals by the largest coverage gap at
any level ({", ".join(f"{k} {100 * v:.1f} points" for k, v in gaps.items())}).

### Held-out year: targets

{chr(10).join(verdicts)}

How much reconciliation can change here: the base model's forecast of the total differs from the
sum of its forecasts of the leaves by {100 * incoherence:.2f} % on average (held-out origins and
days).{NEARLY_COHERENT if incoherence < 0.01 else ""}

### Held-out year: top level, reconciled ({frozen}) vs direct

{markdown_table(top)}

### Held-out year: every level ({frozen}, base and direct)

{markdown_table(frozen_test)}

### Held-out year: every method, every level

{markdown_table(test_table)}

`auto` chose (per held-out origin, on its own earlier-origin errors): {auto}. `+ copula`: the
Gaussian-copula intervals; `+ calibrated_copula`: the copula with each level's spread rescaled per
nominal level on the earlier origins' reconciled errors; without either, quantiles of the
reconciled joint errors.

### Coverage by level and days ahead

Coverage and the share of days below the lower bound (the rest of the misses are above the upper
bound), {" and ".join(f"`{n}`" for n in by_horizon["test"]["method"].unique())}. Held-out year:

{markdown_table(by_horizon["test"])}

Development origins:

{markdown_table(by_horizon["dev"])}

The calibrated copula's factors on the copula's spread for {frozen_method} (mean over origins and
range; 1 = the copula as it is): held-out origins

{markdown_table(calibration["test"])}

development origins

{markdown_table(calibration["dev"])}

### Development origins (used to freeze the method)

{markdown_table(dev_top)}

{markdown_table(dev_table)}"""
