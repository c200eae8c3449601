"""Calibration of the projection's P10-P90 on every real history we have (issue 14).

- SWAST (7 areas and the trust, 2014-2019): fit from 2014 to an origin (2016, 2017, 2018), project
  the remaining years with the planner's method (England's age structure, a level per area, 1,000
  paths), the trust as the path-by-path sum of its areas. The long-range uncertainty is re-estimated
  for each origin from SWAST's own years up to the origin and the AmbSYS trusts other than SWAST
  (RYF): earlier years and the trust left out, never the years scored.
- AmbSYS (10 trusts): only 2018 and 2019 are complete pre-pandemic years, so the check is one year
  ahead: 2018's incidents, England's age-weighted population growth and the per-capita trend SWAST
  showed up to 2018 (the only earlier multi-year evidence), with the uncertainty estimated from
  SWAST up to 2018 alone (AmbSYS 2019 is never used before it is scored).

Areas and trusts in the same year share one national error, so coverage counts are not independent
checks; the page counts both.

Run: ``python -m experiments.bench benchmark=projection_real_backtest``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.harness import BenchmarkReport
from experiments.projection.common import (
    SWAST_AREAS,
    ambsys_annual,
    england,
    england_back_cast,
    markdown_table,
    principal,
    rate_ratio,
    swast_daily,
    weighted_population,
)
from experiments.projection.estimate_uncertainty import growth_table, population_spread
from forecasting.projection.daily_shape import DailyShape
from forecasting.projection.history import annual_history
from forecasting.projection.population import scale_to_areas
from forecasting.projection.projector import ProjectionSettings, project_scenarios
from forecasting.projection.rates import AgeRateModel
from forecasting.projection.simulate import central_by_band
from forecasting.projection.uncertainty import TrendUncertainty, estimate_trend_uncertainty

NAME = "projection_real_backtest"
FIRST, LAST = 2014, 2019
ORIGINS = (2016, 2017, 2018)


def swast_origin(
    daily: pd.DataFrame,
    origin: int,
    uncertainty: TrendUncertainty,
    population_sd: float,
    n_paths: int,
    seed: int,
) -> pd.DataFrame:
    """Projected ``area, year, mean, p10, p90`` for the years after ``origin`` (areas and ``Trust``)."""
    train = daily[daily["ds"].dt.year.between(FIRST, origin)]
    population = scale_to_areas(england_back_cast(FIRST), dict.fromkeys(SWAST_AREAS, 1_000_000), FIRST)
    rates = AgeRateModel(rate_ratio(), area_effects=True).fit(annual_history(train), population)
    settings = ProjectionSettings(
        base_year=origin + 1,
        horizon_years=LAST - origin - 1 if LAST > origin + 1 else 1,
        n_paths=n_paths,
        seed=seed,
        population_sd=population_sd,
        uncertainty=uncertainty,
    )
    projection = project_scenarios(
        rates, DailyShape().fit(train), population, [principal()], settings, total_name="Trust"
    )
    annual = projection.annual[projection.annual["measure"] == "calls"]
    return annual[annual["year"] <= LAST][["area", "year", "mean", "p10", "p90"]].assign(origin=origin)


def log_linear(actual: pd.DataFrame, origin: int) -> pd.DataFrame:
    """Age-blind log-linear trend of each unit's total, fitted up to ``origin``."""
    rows = []
    for area, part in actual.groupby("area"):
        fit = part[part["year"].between(FIRST, origin)]
        slope, intercept = np.polyfit(fit["year"], np.log(fit["calls"]), 1)
        for year in range(origin + 1, LAST + 1):
            rows.append({"area": area, "year": year, "log_linear": np.exp(intercept + slope * year)})
    return pd.DataFrame(rows)


def central_trust(daily: pd.DataFrame, origin: int, ratio: dict[str, float]) -> tuple[pd.Series, float]:
    """The planner's point projection of the SWAST trust (the sum of its areas at the central
    estimates, no sampling) for the years after ``origin``, and the fitted per-capita trend."""
    train = daily[daily["ds"].dt.year.between(FIRST, origin)]
    population = scale_to_areas(england_back_cast(FIRST), dict.fromkeys(SWAST_AREAS, 1_000_000), FIRST)
    rates = AgeRateModel(ratio, area_effects=True).fit(annual_history(train), population)
    years = np.arange(origin + 1, LAST + 1)
    areas = [
        central_by_band(rates, area, population[population["area"] == area], years, None)
        for area in SWAST_AREAS
    ]
    return pd.concat(areas).groupby("year")["calls"].sum(), rates.trend_


def trust_gap_diagnosis(daily: pd.DataFrame, origin: int = 2016, year: int = LAST) -> pd.DataFrame:
    """Why the planner's point for the trust differs from a log-linear trend of its total, from the
    fitted years and the population tables alone (no actual value after ``origin`` is read).

    Both fit the same years; they differ in what they carry forward. The log-linear trend carries the
    total's growth; the planner carries the per-capita trend and applies the population's own change,
    so its point falls short of the log-linear one by how far the population of ``year`` falls short
    of its trend over the fitted years. Shown for the age-weighted population (the method) and for
    residents with no age weighting (every band's rate ratio 1).
    """
    trust = annual_history(daily).groupby("year")["calls"].sum()
    fit = trust.loc[FIRST:origin]
    slope, intercept = np.polyfit(fit.index, np.log(fit.to_numpy()), 1)
    log_linear_point = float(np.exp(intercept + slope * year))
    population = england_back_cast(FIRST)
    rows = []
    for label, ratio in (
        ("age-weighted (the method)", rate_ratio()),
        ("residents, no age weighting", dict.fromkeys(rate_ratio(), 1.0)),
    ):
        weighted = weighted_population(population, ratio)
        past = np.log(weighted.loc[FIRST:origin])
        pop_slope, pop_intercept = np.polyfit(past.index, past.to_numpy(), 1)
        on_trend = float(np.exp(pop_intercept + pop_slope * year))
        point, trend = central_trust(daily, origin, ratio)
        rows.append(
            {
                "population": label,
                "per-capita trend (%/yr)": 100 * trend,
                f"population growth {FIRST}-{origin} (%/yr)": 100 * pop_slope,
                f"population growth {origin}-{year} (%/yr)": 100
                * np.log(weighted[year] / weighted[origin])
                / (year - origin),
                f"population {year} vs its {FIRST}-{origin} trend (%)": 100 * (weighted[year] / on_trend - 1),
                f"point {year} vs log-linear (%)": 100 * (float(point.loc[year]) / log_linear_point - 1),
            }
        )
    return pd.DataFrame(rows).assign(**{f"log-linear trend {FIRST}-{origin} (%/yr)": 100 * slope})


def development_check(daily: pd.DataFrame, origin: int = FIRST + 1) -> pd.DataFrame:
    """The one trust-level check that scores no year of the target: fitted to ``origin``, the next
    year, point errors of the planner's method and of the log-linear trend (each from two years)."""
    trust = annual_history(daily).groupby("year")["calls"].sum()
    fit = trust.loc[FIRST:origin]
    slope, intercept = np.polyfit(fit.index, np.log(fit.to_numpy()), 1)
    point, _ = central_trust(daily, origin, rate_ratio())
    year = origin + 1
    actual = float(trust.loc[year])
    return pd.DataFrame(
        [
            {
                "fitted": f"{FIRST}-{origin}",
                "year": year,
                "actual": actual,
                "projection error (%)": 100 * (float(point.loc[year]) / actual - 1),
                "log-linear error (%)": 100 * (float(np.exp(intercept + slope * year)) / actual - 1),
            }
        ]
    )


def swast_checks(n_paths: int, seed: int, population_sd: float) -> tuple[pd.DataFrame, dict]:
    daily = swast_daily()
    actual = annual_history(daily)
    trust = actual.groupby("year", as_index=False)["calls"].sum().assign(area="Trust")
    actual = pd.concat([actual, trust], ignore_index=True)
    rows, estimates = [], {}
    for origin in ORIGINS:
        estimate = estimate_trend_uncertainty(growth_table(swast_through=origin, exclude=("RYF",)))
        estimates[origin] = estimate.parameters
        for label, uncertainty in (("estimated", estimate.parameters), ("none", TrendUncertainty())):
            projected = swast_origin(daily, origin, uncertainty, population_sd, n_paths, seed)
            rows.append(projected.assign(uncertainty=label))
    table = pd.concat(rows, ignore_index=True)
    table = table.merge(actual.rename(columns={"calls": "actual"}), on=["area", "year"])
    baselines = pd.concat([log_linear(actual, o).assign(origin=o) for o in ORIGINS], ignore_index=True)
    table = table.merge(baselines, on=["area", "year", "origin"])
    table["horizon"] = table["year"] - table["origin"]
    table["source"] = np.where(table["area"] == "Trust", "SWAST trust", "SWAST areas")
    return table, estimates


def ambsys_checks(n_paths: int, seed: int) -> tuple[pd.DataFrame, TrendUncertainty, float]:
    """One year ahead for each AmbSYS trust, 2018 -> 2019."""
    estimate = estimate_trend_uncertainty(growth_table(swast_through=2018, ambsys=False))
    swast_trust = growth_table(swast_through=2018, ambsys=False)
    swast_trust = swast_trust[swast_trust["source"] == "swast-trust"]["growth"]
    trend, trend_se = float(swast_trust.mean()), float(swast_trust.std(ddof=1) / np.sqrt(len(swast_trust)))
    weights = weighted_population(england(2018), rate_ratio())
    trusts = ambsys_annual().pivot(index="unit", columns="year", values="calls").dropna()
    rng = np.random.default_rng(seed)
    dev = estimate.parameters.log_deviation(rng, n_paths, 1)[:, 0] + rng.normal(0, trend_se, n_paths)
    population_growth = float(np.log(weights[2019] / weights[2018]))
    rows = []
    for unit, row in trusts.iterrows():
        paths = row[2018] * np.exp(population_growth + trend + dev)
        rows.append(
            {
                "area": unit,
                "year": 2019,
                "origin": 2018,
                "horizon": 1,
                "mean": float(paths.mean()),
                "p10": float(np.quantile(paths, 0.1)),
                "p90": float(np.quantile(paths, 0.9)),
                "actual": float(row[2019]),
                "uncertainty": "estimated",
                "source": "AmbSYS trusts",
            }
        )
    return pd.DataFrame(rows), estimate.parameters, trend


def ambsys_miss(checks: pd.DataFrame, trend: float) -> str:
    """What the AmbSYS checks share: England's 2018 -> 2019 growth against the projected growth."""
    annual = ambsys_annual().pivot(index="unit", columns="year", values="calls").loc[checks["area"]]
    national = float(np.log(annual[2019].sum() / annual[2018].sum()))
    by_trust = np.log(annual[2019] / annual[2018])
    weights = weighted_population(england(2018), rate_ratio())
    projected = float(np.log(weights[2019] / weights[2018])) + trend
    above = int((checks["actual"] > checks["p90"]).sum())
    below = int((checks["actual"] < checks["p10"]).sum())
    half = 100 * float(np.mean(np.log(checks["p90"] / checks["p10"]))) / 2
    miss = 100 * (national - projected)
    return f"""AmbSYS: the {len(checks)} trusts' incidents together grew {100 * national:.1f} % (log)
from 2018 to 2019; the projection gave each {100 * projected:.1f} % (England's age-weighted population
and SWAST's per-capita trend). All {len(checks)} checks share that one national miss of {miss:.1f} points,
while the trusts' own growth scattered around it with sd {100 * float(by_trust.std(ddof=1)):.1f} points.
The one-year fan reaches about +-{half:.1f} % (log) from its centre (a normal sd of {half / 1.2816:.1f}),
so the national miss alone is {miss / (half / 1.2816):.1f} sds out: {above} trusts fell above P90 and
{below} below P10. One national draw decides all {len(checks)} checks: it is one independent check, not
{len(checks)}. The uncertainty was estimated from SWAST up to 2018 (AmbSYS 2019 is what is scored)."""


def cluster_interval(table: pd.DataFrame, seed: int, draws: int = 2000) -> tuple[float, float, int]:
    """95 % bootstrap interval of coverage, resampling clusters that share one error (source group x
    test year) rather than single checks."""
    inside = (table["actual"] >= table["p10"]) & (table["actual"] <= table["p90"])
    group = np.where(table["source"] == "AmbSYS trusts", "AmbSYS", "SWAST")
    clusters = pd.DataFrame(
        {"inside": inside, "cluster": pd.Series(group, index=table.index) + table["year"].astype(str)}
    )
    sums = clusters.groupby("cluster")["inside"].agg(["sum", "size"])
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(sums), size=(draws, len(sums)))
    rates = sums["sum"].to_numpy()[picks].sum(axis=1) / sums["size"].to_numpy()[picks].sum(axis=1)
    return 100 * float(np.quantile(rates, 0.025)), 100 * float(np.quantile(rates, 0.975)), len(sums)


def coverage_table(table: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    inside = (table["actual"] >= table["p10"]) & (table["actual"] <= table["p90"])
    grouped = table.assign(inside=inside, error=100 * (table["mean"] / table["actual"] - 1)).groupby(by)
    out = grouped.agg(checks=("inside", "size"), coverage=("inside", "mean"), bias=("error", "mean"))
    out["coverage"] *= 100
    return out.reset_index()


def run(workdir: Path, n_paths: int, seed: int) -> BenchmarkReport:
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    population_sd = population_spread()
    swast, estimates = swast_checks(n_paths, seed, population_sd)
    ambsys, ambsys_params, ambsys_trend = ambsys_checks(n_paths, seed)
    every = pd.concat([swast, ambsys], ignore_index=True)
    estimated = every[every["uncertainty"] == "estimated"]
    by_source = coverage_table(every, ["uncertainty", "source"])
    by_horizon = coverage_table(estimated, ["horizon"])
    overall = coverage_table(estimated.assign(all="all real checks"), ["all"])
    swast_estimated = swast[swast["uncertainty"] == "estimated"]
    trust3 = swast_estimated[(swast_estimated["area"] == "Trust") & (swast_estimated["origin"] == 2016)]
    trust3 = trust3.assign(
        projection=100 * (trust3["mean"] / trust3["actual"] - 1),
        log_linear_error=100 * (trust3["log_linear"] / trust3["actual"] - 1),
    )[["year", "horizon", "actual", "p10", "mean", "p90", "projection", "log_linear_error"]]
    width = estimated.assign(width=100 * (estimated["p90"] / estimated["p10"] - 1))
    width = width.groupby(["source", "horizon"])["width"].mean()
    params = pd.DataFrame(
        [{"estimated for": f"SWAST origin {o}", **vars(p)} for o, p in estimates.items()]
        + [{"estimated for": "AmbSYS 2019", **vars(ambsys_params)}]
    )
    coverage = float(overall["coverage"].iloc[0])
    est_by_source = by_source[by_source["uncertainty"] == "estimated"].set_index("source")
    area_cover = float(est_by_source.loc["SWAST areas", "coverage"])
    trust_cover = float(est_by_source.loc["SWAST trust", "coverage"])
    trust_checks = int(est_by_source.loc["SWAST trust", "checks"])
    low, high, n_clusters = cluster_interval(estimated, seed)
    error3 = float(trust3[trust3["horizon"] == 3]["projection"].iloc[0])
    loglin3 = float(trust3[trust3["horizon"] == 3]["log_linear_error"].iloc[0])
    verdict = "met" if abs(error3) <= abs(loglin3) else "NOT met"
    mean_gap = 100 * ((1 + error3 / 100) / (1 + loglin3 / 100) - 1)
    last = trust3.iloc[-1]
    inside_2019 = "contains" if last["p10"] <= last["actual"] <= last["p90"] else "misses"
    daily = swast_daily()
    diagnosis = trust_gap_diagnosis(daily)
    method_gap = diagnosis.iloc[0]
    development = development_check(daily).iloc[0]
    gap_column = next(c for c in diagnosis.columns if c.startswith("point "))
    shortfall_column = next(c for c in diagnosis.columns if " vs its " in c)
    ambsys_story = ambsys_miss(ambsys, ambsys_trend)
    total_slope = float(diagnosis[f"log-linear trend {FIRST}-2016 (%/yr)"].iloc[0])
    elapsed = time.perf_counter() - started
    text = f"""# Calibration of the projection's P10-P90 on real histories

Produced by `python -m experiments.bench benchmark={NAME}` ({elapsed:.0f} s, {n_paths} paths),
logged to the MLflow experiment `benchmark-{NAME}`. Script: `experiments/projection/real_backtest.py`.

## Protocol (no tuning on the years scored)

- **SWAST** (7 areas and the trust): fit 2014 to the origin (2016, 2017, 2018), project to 2019 with
  the planner's method (England's age structure, a level per area), the trust as the sum of its
  areas path by path. The long-range uncertainty is re-estimated for each origin from SWAST's own
  years up to the origin and the AmbSYS trusts other than SWAST (leave-one-trust-out).
- **AmbSYS** (10 trusts): 2018 -> 2019 only (the complete pre-pandemic years): 2018 level, England's
  age-weighted population growth, the SWAST trust's per-capita trend 2014-2018
  ({100 * ambsys_trend:+.2f} % a year; with one year of its own history a trust has no trend of
  its own), uncertainty estimated from SWAST up to 2018 alone.

Parameters used:

{markdown_table(params, "{:.4f}")}

## Coverage of the actual values by P10-P90 (nominal 80 %)

{markdown_table(overall, "{:.1f}")}

By source (`none` = the fitted model's own uncertainty only, the method before this change):

{markdown_table(by_source, "{:.1f}")}

By horizon (years after the last fitted year, estimated uncertainty):

{markdown_table(by_horizon, "{:.1f}")}

**Independent checks.** The {int(overall["checks"].iloc[0])} checks are far fewer independent ones. Areas of a
trust, and trusts in one year, share one national error; SWAST's origins overlap. The common
(trust-level) error is checked by about 4 independent cases: SWAST 2017, 2018, 2019 (overlapping
origins reuse them) and England's 2019; between-unit departures by about 17 (7 SWAST areas,
10 AmbSYS trusts). Resampling the {n_clusters} clusters that share an error (source x test year:
SWAST 2017, 2018, 2019 and AmbSYS 2019) with replacement, 2,000 times, gives a 95 % interval of
{low:.0f} % to {high:.0f} % for the coverage: with so few independent checks it shows only that the
ranges are not grossly narrow or wide.

Mean P90/P10 width (%), by source and horizon:

{markdown_table(width.reset_index(), "{:.1f}")}

## Trust-level error three years out (SWAST, fitted 2014-2016)

{markdown_table(trust3, "{:,.1f}")}

Projection {error3:+.1f} % in 2019 against {loglin3:+.1f} % for an age-blind log-linear trend of the
trust's total: the target "no worse than a log-linear trend" is {verdict}. The P10-P90 of 2019
({last["p10"]:,.0f}-{last["p90"]:,.0f}) {inside_2019} the actual
{last["actual"]:,.0f}.

**Why the planner's point is lower than the log-linear one** (from the fitted years 2014-2016 and
the population tables only; no year after 2016 is read):

{markdown_table(diagnosis.set_index("population").T.rename_axis("measure").reset_index(), "{:.2f}")}

Both methods fit the same three years and SWAST's total grew
{total_slope:.2f} % a year. The log-linear trend carries that forward. The planner
splits it into population growth ({method_gap.iloc[2]:.2f} % a year, England's age-weighted
population) and a per-capita trend ({method_gap.iloc[1]:+.2f} % a year), then applies the
population's own change. England's population grew more slowly after 2016 than before, so its 2019 value is
{method_gap[shortfall_column]:+.2f} % off its 2014-2016 trend, and the planner's central point for 2019 is
{method_gap[gap_column]:+.2f} % off the log-linear one: the whole gap. (The page's projection column is the
mean of the paths, which the fan's right skew lifts above the central point: the mean is
{mean_gap:+.2f} % off the log-linear point, the gap in the table above.) So:

- not the trend window: both use the same three years; at the 2016 origin there are no more.
- not age weighting: without it the gap is larger ({diagnosis.iloc[1][gap_column]:+.2f} %), since
  residents slowed down more than the age-weighted population.
- per-capita against total: the whole difference. The planner's method says that slower population
  growth slows demand; SWAST's demand instead sped up after 2016 (both methods fall about
  {abs(loglin3):.0f} % short). The backtest also gives the method England's population as later
  estimated and projected (2017 mid-year, 2018-based projection), not the projection a planner had
  in 2016, nor the South West's own.

**Decision on development data: no change.** The one trust-level check that scores none of
2017-2019 (fitted {development["fitted"]}, scored on {development["year"]:.0f}) has the planner's point at
{development["projection error (%)"]:+.2f} % and the log-linear trend at
{development["log-linear error (%)"]:+.2f} %: no evidence for either. A change that closed the
gap (dropping the population's change, or damping the per-capita trend) would be chosen on 2019 itself,
the year it is scored on; the target stays NOT met, by {abs(error3) - abs(loglin3):.1f} points on one
independent check, where the fan's P10-P90 is {last["p10"] / last["mean"] * 100 - 100:+.0f} % to
{last["p90"] / last["mean"] * 100 - 100:+.0f} %.

## Why coverage is {coverage:.1f} % (target 70-90 %) and only 30 % for AmbSYS

{ambsys_story}

The overall {coverage:.1f} % is {70 - coverage:.1f} points below the target band and inside the cluster
bootstrap's 95 % interval ({low:.0f}-{high:.0f} %), which also contains 80 %. The SWAST checks are at
{area_cover:.1f} % (areas) and {trust_cover:.0f} % (trust, {trust_checks} checks): the shortfall is the one
AmbSYS year. The fan's parameters are estimated from earlier years and other trusts, never set by
coverage. The development years (before 2017) give no coverage check to choose a different fan
with (one year-pair of SWAST areas), and widening it until the total reached 70 % would be tuning
on the years scored. The method is unchanged and the target is missed by {70 - coverage:.1f} points.

## Limits

- AmbSYS gives one year-pair before the pandemic; a one-year check says little about ten years,
  where the fan is dominated by the drift and random-walk parts estimated from five SWAST years.
- England's age structure stands in for every unit (no area populations in these sources).
- Wall time on a shared 2-core machine (load average {load_before:.1f} before, {os.getloadavg()[0]:.1f}
  after).
"""
    metrics = {
        "coverage_p10_p90": coverage,
        "checks": float(overall["checks"].iloc[0]),
        "coverage_cluster_low": low,
        "coverage_cluster_high": high,
        "trust_error_2019_pct": error3,
        "log_linear_trust_error_2019_pct": loglin3,
        "seconds": elapsed,
    }
    for row in by_source.itertuples():
        metrics[f"coverage.{row.uncertainty}.{row.source.replace(' ', '_')}"] = float(row.coverage)
    for row in by_horizon.itertuples():
        metrics[f"coverage_h{row.horizon}"] = float(row.coverage)
    return BenchmarkReport(
        markdown=text,
        metrics=metrics,
        tables={"": every, "by_horizon": by_horizon, "by_source": by_source},
    )
