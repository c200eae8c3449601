"""Monte Carlo projection of daily calls in one area: rate, trend, population and daily noise.

Each path draws the rate parameters (level by age band and trend) from the rate model's
uncertainty, scales the scenario's projected population change by a random factor, adds a
year-to-year shock of the size seen in history, spreads each year over its days with the fitted
daily shape, and draws the day's calls from a negative binomial (a gamma-Poisson mixture).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.projection.daily_shape import DailyShape, spread_over_days
from forecasting.projection.rates import AgeRateModel


@dataclass(frozen=True)
class Simulation:
    """Simulated paths for one area and scenario.

    Attributes
    ----------
    days : DatetimeIndex
        Every day of the projection years.
    years : ndarray of int
        The projection years.
    counts : ndarray, shape (n_paths, n_days)
        Simulated calls per day.
    expected_daily : ndarray, shape (n_days,)
        Expected calls per day (mean over the paths' expected values, free of daily noise).
    annual_expected : ndarray, shape (n_paths, n_years)
        Each path's expected calls per year, before daily noise.
    annual_by_band : DataFrame
        Expected calls by year and age band at the central parameter estimates.
    """

    days: pd.DatetimeIndex
    years: np.ndarray
    counts: np.ndarray
    expected_daily: np.ndarray
    annual_expected: np.ndarray
    annual_by_band: pd.DataFrame

    @property
    def annual_counts(self) -> np.ndarray:
        """Simulated calls per path and year, shape (n_paths, n_years)."""
        return np.add.reduceat(self.counts, year_starts(self.days), axis=1)


def population_matrix(population: pd.DataFrame, bands: list[str], years: np.ndarray) -> np.ndarray:
    """One area's population as an array of shape (n_bands, n_years)."""
    table = population.pivot_table(index="age_band", columns="year", values="population", aggfunc="sum")
    return table.reindex(index=bands, columns=list(years)).to_numpy(dtype=float)


def central_by_band(
    rates: AgeRateModel, area: str, population: pd.DataFrame, years: np.ndarray, scenario_trend: float | None
) -> pd.DataFrame:
    """Expected calls by year and age band at the central estimates: ``year, age_band, calls``."""
    years = np.asarray(years, dtype=int)
    central = rates.draw(area, 1)
    factor = rates.trend_factor(central.trend, years, scenario_trend)
    calls = np.exp(central.log_rate[0])[:, None] * population_matrix(population, rates.bands_, years) * factor
    table = pd.DataFrame(calls, index=pd.Index(rates.bands_, name="age_band"), columns=years)
    long = table.reset_index().melt(id_vars="age_band", var_name="year", value_name="calls")
    return long.astype({"year": int})[["year", "age_band", "calls"]]


def simulate_area(
    rates: AgeRateModel,
    shape: DailyShape,
    area: str,
    population: pd.DataFrame,
    years: np.ndarray,
    scenario_trend: float | None,
    n_paths: int,
    rng: np.random.Generator,
    population_sd: float = 0.1,
    trend_deviation: np.ndarray | None = None,
) -> Simulation:
    """Simulate daily calls in ``area`` for every day of ``years``.

    Parameters
    ----------
    rates : AgeRateModel
        Fitted rates; their last history year is where the projection starts from.
    shape : DailyShape
        Fitted daily shape and noise.
    population : DataFrame
        The area's scenario population (``year, age_band, population``) for the history's last year
        and every projection year.
    years : ndarray of int
        Projection years, all after the history.
    scenario_trend : float or None
        Per-capita change a year after the history (0.005 = +0.5 %); None keeps the fitted trend.
    n_paths : int
        Monte Carlo paths.
    population_sd : float
        Standard deviation of the random factor on the projected population change (0.1: the
        change since the history's last year is uncertain by about a tenth).
    trend_deviation : ndarray, shape (n_paths, n_years), optional
        Each path's log departure of per-capita use from the fitted trend in each projection year
        (:meth:`TrendUncertainty.log_deviation`); drawn once and shared by areas and scenarios, so
        a trust's total carries it in full and scenario differences are not noise.
    """
    years = np.asarray(years, dtype=int)
    last = rates.last_year_
    if years.min() <= last:
        raise ValueError(f"projection years must follow the history (last year {last}), got {years.min()}")
    central_pop = population_matrix(population, rates.bands_, years)
    start_pop = population_matrix(population, rates.bands_, np.array([last]))[:, 0]
    change = central_pop - start_pop[:, None]

    draws = rates.draw(area, n_paths, rng)
    level = np.exp(draws.log_rate)  # calls per resident a year at the reference year, by band
    trend = rates.trend_factor(draws.trend, years, scenario_trend)
    growth = np.maximum(rng.normal(1.0, population_sd, size=(n_paths, 1)), 0.0)
    annual = trend * (level @ start_pop[:, None] + growth * (level @ change))
    if trend_deviation is not None:
        annual = annual * np.exp(trend_deviation)
    if rates.year_sd_ > 0:
        sd = rates.year_sd_
        annual = annual * np.exp(rng.normal(-(sd**2) / 2, sd, size=annual.shape))

    annual_by_band = central_by_band(rates, area, population, years, scenario_trend)
    central_annual = annual_by_band.groupby("year")["calls"].sum()

    days = pd.date_range(f"{years.min()}-01-01", f"{years.max()}-12-31", freq="D")
    central_daily = spread_over_days(central_annual, shape.multiplier(days), days)
    weight = central_daily / central_annual.reindex(days.year).to_numpy()  # share of its year, per day
    year_index = days.year.to_numpy() - years.min()
    mu = annual[:, year_index] * weight[None, :]
    k = shape.dispersion_shape_
    rate = mu if np.isinf(k) else mu * rng.gamma(k, 1 / k, size=mu.shape)
    counts = rng.poisson(rate).astype(np.int32)
    return Simulation(
        days=days,
        years=years,
        counts=counts,
        expected_daily=mu.mean(axis=0),
        annual_expected=annual,
        annual_by_band=annual_by_band,
    )


def add_simulations(
    total: tuple[Simulation, pd.DataFrame], sim: Simulation, population: pd.DataFrame
) -> tuple[Simulation, pd.DataFrame]:
    """A running sum of areas' simulations path by path, with their populations stacked."""
    first, pop = total
    by_band = pd.concat([first.annual_by_band, sim.annual_by_band])
    summed = Simulation(
        days=first.days,
        years=first.years,
        counts=first.counts + sim.counts,
        expected_daily=first.expected_daily + sim.expected_daily,
        annual_expected=first.annual_expected + sim.annual_expected,
        annual_by_band=by_band.groupby(["year", "age_band"], as_index=False, sort=False)["calls"].sum(),
    )
    return summed, pd.concat([pop, population], ignore_index=True)


def year_starts(days: pd.DatetimeIndex) -> np.ndarray:
    """Index of the first day of each year in a run of consecutive days."""
    year = days.year.to_numpy()
    return np.flatnonzero(np.r_[True, year[1:] != year[:-1]])
