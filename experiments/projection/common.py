"""Inputs shared by the projection experiments: the synthetic world, SWAST, and England's population.

Each experiment is a benchmark run, e.g. ``python -m experiments.bench benchmark=projection_speed``,
logged to MLflow and written to ``experiments/results/<name>.md``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from forecasting.projection.backtest import truth_daily
from forecasting.projection.history import daily_history
from forecasting.projection.population import validate_population
from forecasting.projection.scenario import Scenario

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CONF = ROOT / "conf"
SWAST_AREAS = ["BNSSG", "Cornwall", "Devon", "Dorset", "Gloucestershire", "Somerset", "Wiltshire"]
# ONS mid-year estimates, England, persons (quoted for scaling the back-cast, not shipped as data).
# The 2018 value equals the base of the 2018-based projection in data/external/ons_population.
ENGLAND_MID_YEAR = {2014: 54_316_618, 2015: 54_786_327, 2016: 55_268_067, 2017: 55_619_430}


def project_config():
    """``conf/project.yaml`` as plain OmegaConf (without Hydra composition)."""
    return OmegaConf.load(CONF / "project.yaml")


def rate_ratio() -> dict[str, float]:
    """The literature rate ratios the planner's command uses by default."""
    return {str(k): float(v) for k, v in project_config().rates.rate_ratio.items()}


def principal(**changes) -> Scenario:
    """The shipped principal scenario with ``changes`` (its ``end_year`` interpolation resolved)."""
    spec = OmegaConf.to_container(OmegaConf.load(CONF / "scenario" / "principal.yaml"))
    spec["remote_closure"]["end_year"] = 2025
    spec.update(changes)
    return Scenario.from_dict(spec)


def synthetic_world() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily calls per area with the truth, and the world's population by area."""
    daily = truth_daily(pd.read_csv(ROOT / "data" / "synthetic" / "daily_counts.csv"))
    population = validate_population(pd.read_csv(ROOT / "data" / "synthetic" / "population.csv"))
    return daily, population


def swast_daily() -> pd.DataFrame:
    """SWAST daily calls leading to a dispatch, per area (Monks et al. 2023, MIT)."""
    raw = pd.read_csv(ROOT / "data" / "external" / "swast" / "Daily_Responses_5_Years_2019_full.csv")
    columns = {"area": "ORA", "ds": "Actual_dt", "y": "Actual_Value"}
    return daily_history(raw, columns, SWAST_AREAS, source="swast")


def england(vintage: int = 2020) -> pd.DataFrame:
    """ONS national population projection for England (2018- or 2020-based)."""
    path = ROOT / "data" / "external" / "ons_population" / f"england_npp{vintage}_principal_5yr.csv"
    return validate_population(pd.read_csv(path))


def england_back_cast(first_year: int = 2014, scale_to_mid_year: bool = True) -> pd.DataFrame:
    """England by age band from ``first_year``: the 2018-based projection, extended backwards.

    The repository holds projections from 2018 only. Each band is carried back at its average
    yearly change over 2018-2021 (log-linear); with ``scale_to_mid_year`` each year is then scaled to
    the published mid-year total, so the level is right and only the age mix is approximate.
    """
    national = england(2018)
    table = national.pivot(index="age_band", columns="year", values="population")
    bands = list(dict.fromkeys(national["age_band"]))
    change = np.log(table[2021] / table[2018]) / 3
    rows = []
    for year in range(first_year, 2018):
        values = table[2018] * np.exp(-change * (2018 - year))
        if scale_to_mid_year:
            values *= ENGLAND_MID_YEAR[year] / values.sum()
        rows.append(
            pd.DataFrame({"area": "England", "year": year, "age_band": bands, "population": values[bands]})
        )
    return validate_population(pd.concat([*rows, national], ignore_index=True))


def markdown_table(frame: pd.DataFrame, floatfmt: str = "{:,.1f}") -> str:
    """A small DataFrame as a GitHub markdown table (no extra dependency)."""

    def cell(value) -> str:
        if isinstance(value, float | np.floating):
            return floatfmt.format(value)
        return str(value)

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


AMBSYS = ROOT / "data" / "external" / "ambsys" / "ambsys_tidy.csv"
# Isle of Wight (R1F) reports from April 2018 only and is a fraction of a trust's size.
AMBSYS_EXCLUDE = ("R1F",)


def ambsys_annual(years: range = range(2018, 2020)) -> pd.DataFrame:
    """AmbSYS incidents per ambulance trust and complete calendar year: ``unit, year, calls``."""
    raw = pd.read_csv(AMBSYS)
    trusts = raw[(raw["org_level"] == "Ambulance trust") & ~raw["org_code"].isin(AMBSYS_EXCLUDE)]
    trusts = trusts[trusts["year"].isin(list(years))]
    months = trusts.groupby(["org_code", "year"])["month"].nunique()
    complete = months[months == 12].index
    annual = trusts.groupby(["org_code", "year"])["incidents"].sum().loc[complete]
    return annual.rename("calls").reset_index().rename(columns={"org_code": "unit"})


def weighted_population(population: pd.DataFrame, ratio: dict[str, float]) -> pd.Series:
    """Age-weighted population by year (residents x relative call rate of their band)."""
    return (population["population"] * population["age_band"].map(ratio)).groupby(population["year"]).sum()


def swast_annual(with_trust: bool = True) -> pd.DataFrame:
    """SWAST dispatches per area (and the trust) and complete year: ``unit, year, calls``."""
    from forecasting.projection.history import annual_history

    annual = annual_history(swast_daily()).rename(columns={"area": "unit"})[["unit", "year", "calls"]]
    if with_trust:
        trust = annual.groupby("year", as_index=False)["calls"].sum().assign(unit="Trust")
        annual = pd.concat([annual, trust[["unit", "year", "calls"]]], ignore_index=True)
    return annual
