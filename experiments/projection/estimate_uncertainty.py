"""Estimating the long-range uncertainty of per-capita use from real variation (issue 14).

Sources, each as yearly log growth of calls per age-weighted resident (the literature rate ratios
weight England's population by age; the areas have no populations of their own):

- AmbSYS (NHS England, OGL): incidents of the 10 English ambulance trusts with complete calendar
  years, 2018 -> 2019 (pre-2020: the pandemic year is left out), against England's 2018-based
  projection: between-trust dispersion of growth in one year.
- SWAST (Monks et al. 2023, MIT): dispatches of its 7 areas and of the trust, 2014 -> 2019, against
  England's back-cast population: between-area dispersion and year-to-year variation.
- ONS: the 2018- and 2020-based principal projections of England: how much the projected change of
  the age-weighted population moved between two vintages (``population_sd``).

The shipped defaults in ``conf/uncertainty/estimated.yaml`` and ``population_sd`` in
``conf/project.yaml`` are :func:`shipped_estimate` (all the data above); a test checks they match.
The backtests (``real_backtest.py``) re-estimate without the data they score: the trust left out,
or only earlier years.

Run: ``python -m experiments.bench benchmark=projection_uncertainty``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.harness import BenchmarkReport
from experiments.projection.common import (
    ambsys_annual,
    england,
    england_back_cast,
    markdown_table,
    rate_ratio,
    swast_annual,
    weighted_population,
)
from forecasting.projection.uncertainty import (
    UncertaintyEstimate,
    estimate_trend_uncertainty,
    per_capita_growth,
    vintage_population_sd,
)

NAME = "projection_uncertainty"
SWAST_YEARS = (2014, 2019)
AMBSYS_YEARS = (2018, 2019)  # complete calendar years before the pandemic
VINTAGE_FROM, VINTAGE_HORIZONS = 2020, range(1, 21)


def growth_table(
    swast_through: int = SWAST_YEARS[1], ambsys: bool = True, exclude: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Per-capita log growth: SWAST areas and trust up to ``swast_through``, AmbSYS trusts 2018->2019.

    ``exclude``: AmbSYS trust codes to leave out (``RYF`` is SWAST); ``"SWAST"`` leaves SWAST out.
    """
    ratio = rate_ratio()
    parts = []
    if "SWAST" not in exclude:
        swast = swast_annual()
        swast = swast[swast["year"].between(SWAST_YEARS[0], swast_through)]
        weights = weighted_population(england_back_cast(SWAST_YEARS[0]), ratio)
        is_trust = swast["unit"] == "Trust"
        parts.append(per_capita_growth(swast[~is_trust], weights, "swast-areas"))
        parts.append(per_capita_growth(swast[is_trust], weights, "swast-trust"))
    if ambsys:
        trusts = ambsys_annual(range(AMBSYS_YEARS[0], AMBSYS_YEARS[1] + 1))
        trusts = trusts[~trusts["unit"].isin(exclude)]
        parts.append(per_capita_growth(trusts, weighted_population(england(2018), ratio), "ambsys-trusts"))
    return pd.concat(parts, ignore_index=True)


def population_spread() -> float:
    """Relative spread of the projected age-weighted population change between ONS vintages."""
    ratio = rate_ratio()
    vintages = {str(v): weighted_population(england(v), ratio) for v in (2018, 2020)}
    return vintage_population_sd(vintages, VINTAGE_FROM, VINTAGE_HORIZONS)


def shipped_estimate() -> tuple[UncertaintyEstimate, float]:
    """The estimate the shipped defaults come from: all sources, and the vintage spread."""
    return estimate_trend_uncertainty(growth_table()), population_spread()


def config_text(estimate: UncertaintyEstimate) -> str:
    """``conf/uncertainty/estimated.yaml`` for this estimate (values rounded to 4 decimals)."""
    p, d = estimate.parameters, estimate.details
    return f"""# Long-range uncertainty of per-capita use around the fitted trend, ESTIMATED from real
# variation by experiments/projection/estimate_uncertainty.py (python -m experiments.bench
# benchmark=projection_uncertainty; results: experiments/results/projection_uncertainty.md).
# Sources: AmbSYS incidents of 10 trusts 2018->2019 (NHS England, OGL), SWAST dispatches of 7 areas
# and the trust 2014->2019 (Monks et al. 2023, MIT), per age-weighted resident of England.
# dev(h) = drift error x h + random-walk innovations + level shifts (forecasting/projection/uncertainty.py).
# uncertainty=none keeps only the fitted model's own uncertainty (the behaviour before issue 14).
name: estimated
# Between-unit sd of per-capita growth beyond year-to-year noise ({d["drift_df"]} degrees of freedom).
drift_sd: {p.drift_sd:.4f}
# Within-unit sd of yearly growth around its mean, level shifts left out ({d["innovation_df"]} df).
innovation_sd: {p.innovation_sd:.4f}
# Level shifts: {d["shifts_detected"]} of {d["unit_years"]} unit-years beyond 3.5 robust sds (Jeffreys
# estimate (k+0.5)/(n+1)); size: their rms (or the 3.5-sd threshold when none).
shift_probability: {p.shift_probability:.4f}
shift_sd: {p.shift_sd:.4f}
"""


def run(workdir: Path) -> BenchmarkReport:
    started = time.perf_counter()
    estimate, population_sd = shipped_estimate()
    p = estimate.parameters
    growth = estimate.growth
    summary = (
        growth.groupby("source")
        .agg(
            units=("unit", "nunique"),
            years=("year", "nunique"),
            mean=("growth", "mean"),
            sd=("growth", "std"),
        )
        .reset_index()
    )
    summary[["mean", "sd"]] *= 100
    horizons = np.array([1, 3, 5, 10])
    fan = pd.DataFrame(
        {
            "years ahead": horizons,
            "sd of log rate (%)": 100 * np.sqrt(p.variance(horizons)),
            "P10-P90 half-width (%)": 100 * (np.exp(1.2816 * np.sqrt(p.variance(horizons))) - 1),
        }
    )
    shifts = growth[growth["shift"]][["source", "unit", "year", "growth", "residual"]]
    d = estimate.details
    rows = pd.DataFrame(
        [
            (
                "drift_sd",
                p.drift_sd,
                "between-unit variance of mean growth minus innovation variance / years, "
                f"pooled over AmbSYS trusts and SWAST areas ({d['drift_df']} df)",
            ),
            (
                "innovation_sd",
                p.innovation_sd,
                "pooled within-unit variance of yearly growth, SWAST areas "
                f"and trust ({d['innovation_df']} df)",
            ),
            (
                "shift_probability",
                p.shift_probability,
                f"{d['shifts_detected']} of {d['unit_years']} "
                f"unit-years beyond 3.5 robust sds (robust sd {100 * d['robust_residual_sd']:.2f} %), "
                "Jeffreys (k+0.5)/(n+1)",
            ),
            ("shift_sd", p.shift_sd, "rms of the detected shifts (the 3.5-sd threshold when none)"),
            (
                "population_sd",
                population_sd,
                "ONS 2018- vs 2020-based principal projections: sd of the "
                f"projected change of England's age-weighted population from {VINTAGE_FROM}, relative to "
                "the change, mean over 1-20 years",
            ),
        ],
        columns=["parameter", "value", "from"],
    )
    elapsed = time.perf_counter() - started
    text = f"""# Long-range uncertainty of per-capita use, estimated from real variation

Produced by `python -m experiments.bench benchmark={NAME}` ({elapsed:.1f} s), logged to the MLflow
experiment `benchmark-{NAME}`. Method: `forecasting/projection/uncertainty.py`
(`estimate_trend_uncertainty`); script: `experiments/projection/estimate_uncertainty.py`.

Per-capita growth = yearly log growth of calls minus that of England's age-weighted population
(literature rate ratios; no source has area populations, so England's age structure stands in).

{markdown_table(summary, "{:.2f}")}

(mean and sd of yearly per-capita growth, in %.)

## Estimates (the shipped defaults)

{markdown_table(rows, "{:.4f}")}

Detected level shifts:

{markdown_table(shifts, "{:.4f}") if len(shifts) else "none"}

What these give around the fitted trend (before the fit's own uncertainty, the population and
yearly and daily noise, which the projection adds):

{markdown_table(fan, "{:.1f}")}

## Limits

- Few and short series: 10 AmbSYS trusts in one year pair, 7 SWAST areas (one trust) over five;
  the drift variance rests on {estimate.details["drift_df"]} degrees of freedom and could easily be half or
  double. Two ONS vintages give one difference, so `population_sd` is a rough scale.
- Between-unit dispersion stands in for how much one unit's future drift departs from its past:
  units differ for lasting reasons (demography, services), so it is a proxy, not a measurement.
- Area growth includes local year-to-year noise; used as innovations of a random walk at trust
  level it errs on the wide side.
- The deviation is shared by all areas and scenarios of a run (a national cause moves them together).

## Shipped config (`conf/uncertainty/estimated.yaml`)

```yaml
{config_text(estimate)}```
"""
    metrics = {k: float(v) for k, v in vars(p).items()}
    metrics.update({"population_sd": population_sd, "seconds": elapsed})
    return BenchmarkReport(markdown=text, metrics=metrics, tables={"": summary, "fan": fan})


if __name__ == "__main__":
    estimate, population_sd = shipped_estimate()
    print(config_text(estimate))
    print(f"population_sd: {population_sd:.4f}")
