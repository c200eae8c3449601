"""Projecting every area under every scenario: the tables a report, a registry model and a planner use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.projection.daily_shape import DailyShape
from forecasting.projection.population import apply_ageing
from forecasting.projection.rates import AgeRateModel
from forecasting.projection.scenario import Scenario
from forecasting.projection.simulate import Simulation, add_simulations, simulate_area
from forecasting.projection.splits import quantile_label, shares_by_year, split_table
from forecasting.projection.summaries import annual_fan, daily_fan, growth_ratios, peak_days
from forecasting.projection.uncertainty import TrendUncertainty
from mlops.errors import ConfigError

GROWTH_MEASURES = ("calls", "needs_ambulance", "needs_ambulance_no_change")


@dataclass(frozen=True)
class ProjectionSettings:
    """How far and how finely to project.

    Parameters
    ----------
    base_year : int
        The year growth is measured from ("today"); must follow the history.
    horizon_years : int
        Years projected after ``base_year`` (the final year is ``base_year + horizon_years``).
    n_paths : int
        Monte Carlo paths per area and scenario.
    quantiles : sequence of float
        Fan quantiles, e.g. (0.1, 0.5, 0.9) for P10/P50/P90.
    population_sd : float
        Uncertainty of the projected population change, as a fraction of that change.
    peak_quantile : float
        Which day counts as a "peak day" (0.95: busier than 95 % of days).
    seed : int
        Seed; every scenario uses the same random numbers so their differences are not noise.
    uncertainty : TrendUncertainty
        How far per-capita use can wander from the fitted trend (drift, innovations, level shifts),
        estimated from real variation (``conf/uncertainty/``); zero keeps only the fit's own.
    """

    base_year: int
    horizon_years: int = 10
    n_paths: int = 1000
    quantiles: Sequence[float] = (0.1, 0.5, 0.9)
    population_sd: float = 0.1
    peak_quantile: float = 0.95
    seed: int = 0
    uncertainty: TrendUncertainty = TrendUncertainty()

    @property
    def final_year(self) -> int:
        return self.base_year + self.horizon_years

    @property
    def labels(self) -> list[str]:
        return [quantile_label(q) for q in self.quantiles]

    def validate(self, last_history_year: int) -> None:
        """Raise :class:`ConfigError` for impossible settings, naming the value to change."""
        if not 1 <= self.horizon_years <= 30:
            raise ConfigError(f"horizon_years must be 1-30 years, got {self.horizon_years}")
        if self.base_year <= last_history_year:
            raise ConfigError(
                f"base_year {self.base_year} must be after the history's last full year ({last_history_year})"
            )
        if self.n_paths < 50:
            raise ConfigError(f"n_paths must be at least 50 for stable quantiles, got {self.n_paths}")
        qs = list(self.quantiles)
        if len(qs) < 2 or any(not 0 < q < 1 for q in qs) or qs != sorted(set(qs)):
            raise ConfigError(f"quantiles must be two or more increasing values between 0 and 1, got {qs}")
        if not 0.5 <= self.peak_quantile < 1:
            raise ConfigError(f"peak_quantile must be in [0.5, 1), e.g. 0.95, got {self.peak_quantile}")
        if not 0 <= self.population_sd <= 1:
            raise ConfigError(f"population_sd must be between 0 and 1, got {self.population_sd}")


@dataclass(frozen=True)
class Projection:
    """Everything projected, as long tables keyed by ``area`` and ``scenario``.

    Attributes
    ----------
    annual : DataFrame
        ``area, scenario, year, measure, mean, sd, p..``: calls, categories and dispositions.
    daily : DataFrame
        ``area, scenario, ds, year, mean, sd, p..`` for all calls (splits follow from the scenario).
    peaks : DataFrame
        ``area, scenario, year, statistic, mean, p..``.
    growth : DataFrame
        ``area, scenario, measure, mean, p..``: change from the base year to the final year.
    by_band : DataFrame
        ``area, scenario, year, age_band, calls`` at the central estimates.
    population : DataFrame
        ``area, scenario, year, age_band, population``: each scenario's population.
    scenarios : list of Scenario
    settings : ProjectionSettings
    first_year : int
        First projected year (the year after the history).
    """

    annual: pd.DataFrame
    daily: pd.DataFrame
    peaks: pd.DataFrame
    growth: pd.DataFrame
    by_band: pd.DataFrame
    population: pd.DataFrame
    scenarios: list[Scenario]
    settings: ProjectionSettings
    first_year: int


def project_scenarios(
    rates: AgeRateModel,
    shape: DailyShape,
    population: pd.DataFrame,
    scenarios: Sequence[Scenario],
    settings: ProjectionSettings,
    total_name: str | None = "total",
) -> Projection:
    """Simulate each area of ``population`` under each scenario and summarise.

    ``population`` is the validated table for the projection areas (before any scenario), covering
    the history's last year to the final year. With several areas, their sum is added as the area
    ``total_name`` (path by path, so its range is that of the sum, not a sum of ranges); ``None``
    leaves it out.
    """
    settings.validate(rates.last_year_)
    years = np.arange(rates.last_year_ + 1, settings.final_year + 1)
    quantiles = list(settings.quantiles)
    labels = settings.labels
    # One draw of the long-range departure from trend, shared by every area and scenario: the
    # causes (national policy, a pandemic, a counting change) are common to a trust's areas.
    deviation = settings.uncertainty.log_deviation(
        np.random.default_rng([settings.seed, 7_919]), settings.n_paths, len(years)
    )
    parts: dict[str, list[pd.DataFrame]] = {
        name: [] for name in ("annual", "daily", "peaks", "growth", "band", "pop")
    }

    def summarise(sim: Simulation, aged: pd.DataFrame, area: str, scenario: Scenario) -> None:
        keys = {"area": area, "scenario": scenario.name}
        shares = shares_by_year(scenario, years, settings.base_year)
        parts["annual"].append(split_table(annual_fan(sim, quantiles), shares, labels).assign(**keys))
        parts["daily"].append(daily_fan(sim, quantiles).assign(**keys))
        parts["peaks"].append(peak_days(sim, quantiles, settings.peak_quantile).assign(**keys))
        parts["band"].append(sim.annual_by_band.assign(**keys))
        parts["pop"].append(aged[aged["year"].isin(years)].assign(**keys))
        ratio = growth_ratios(sim, settings.base_year)
        base_mean = sim.annual_expected[:, years == settings.base_year].mean()
        final_mean = sim.annual_expected[:, -1].mean()
        for measure in GROWTH_MEASURES:
            factor = shares.loc[settings.final_year, measure] / shares.loc[settings.base_year, measure]
            row = {**keys, "measure": measure, "mean": final_mean / base_mean * factor - 1}
            row.update(dict(zip(labels, np.quantile(ratio * factor, quantiles) - 1, strict=True)))
            parts["growth"].append(pd.DataFrame([row]))

    areas = sorted(population["area"].unique())
    with_total = total_name is not None and len(areas) > 1
    if with_total and total_name in areas:
        raise ConfigError(
            f"total_area={total_name!r} is also the name of an area; rename the area or the total"
        )
    totals: dict[str, tuple[Simulation, pd.DataFrame]] = {}
    for area_index, (area, area_population) in enumerate(population.groupby("area", sort=True)):
        for scenario in scenarios:
            aged = apply_ageing(area_population, scenario.ageing, from_year=rates.last_year_)
            rng = np.random.default_rng([settings.seed, area_index])  # same draws in every scenario
            sim = simulate_area(
                rates,
                shape,
                str(area),
                aged,
                years,
                scenario.rate_trend_per_year,
                settings.n_paths,
                rng,
                settings.population_sd,
                deviation,
            )
            summarise(sim, aged, str(area), scenario)
            if with_total:  # path by path: the areas' paths share the trend draws
                previous = totals.get(scenario.name)
                totals[scenario.name] = (
                    (sim, aged) if previous is None else add_simulations(previous, sim, aged)
                )
    for scenario in scenarios if with_total else []:
        sim, aged = totals[scenario.name]
        summed = aged.groupby(["year", "age_band"], as_index=False, sort=False)["population"].sum()
        summarise(sim, summed.assign(area=total_name), str(total_name), scenario)

    def stacked(name: str, first: list[str]) -> pd.DataFrame:
        frame = pd.concat(parts[name], ignore_index=True)
        return frame[first + [c for c in frame.columns if c not in first]]

    return Projection(
        annual=stacked("annual", ["area", "scenario", "year", "measure"]),
        daily=stacked("daily", ["area", "scenario", "ds", "year"]),
        peaks=stacked("peaks", ["area", "scenario", "year", "statistic"]),
        growth=stacked("growth", ["area", "scenario", "measure"]),
        by_band=stacked("band", ["area", "scenario", "year", "age_band"]),
        population=stacked("pop", ["area", "scenario", "year", "age_band"]),
        scenarios=list(scenarios),
        settings=settings,
        first_year=int(years[0]),
    )
