"""Backtesting the projection method where the truth is known: fit early years, project the later ones.

On the synthetic world every day carries its true expected calls, so the projection's expected
values can be scored against the truth itself, free of the noise in any one year's counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.projection.daily_shape import DailyShape, spread_over_days
from forecasting.projection.history import annual_history
from forecasting.projection.rates import AgeRateModel
from forecasting.projection.simulate import central_by_band
from mlops.errors import ConfigError


@dataclass(frozen=True)
class BacktestResult:
    """Projected against true expected calls in the held-out years.

    Attributes
    ----------
    annual : DataFrame
        ``area, year, projected, truth, actual, error`` (error = projected / truth - 1).
    annual_mape : float
        Mean absolute percentage error of annual expected calls against the truth, over areas and
        held-out years (the number the registry's champion policy compares).
    daily_mape : float
        The same for expected calls per day: level and daily shape together.
    """

    annual: pd.DataFrame
    annual_mape: float
    daily_mape: float


def backtest_on_truth(
    daily: pd.DataFrame,
    population: pd.DataFrame,
    fit_through: int,
    rate_ratio: Mapping[str, float] | None,
    area_effects: bool = False,
    nation: str = "england",
    annual_order: int = 4,
) -> BacktestResult:
    """Fit rates and daily shape on years up to ``fit_through`` and project each later year.

    Parameters
    ----------
    daily : DataFrame
        ``area, ds, y, y_expected``: daily calls with their true expected values.
    population : DataFrame
        Validated population of the history areas for every year.
    """
    train = daily[daily["ds"].dt.year <= fit_through]
    test = daily[daily["ds"].dt.year > fit_through]
    if train.empty or test.empty:
        years = sorted(int(y) for y in daily["ds"].dt.year.unique())
        covers = f"{years[0]}-{years[-1]}" if years else "no years"
        raise ConfigError(
            f"backtest.fit_through={fit_through}: must leave history years on both sides; the backtest data "
            f"covers {covers}, so use a year before its last"
        )
    rates = AgeRateModel(rate_ratio, area_effects=area_effects).fit(annual_history(train), population)
    shape = DailyShape(nation, annual_order).fit(train)
    years = np.array(sorted(test["ds"].dt.year.unique()))
    days = pd.date_range(f"{years[0]}-01-01", f"{years[-1]}-12-31", freq="D")
    multiplier = shape.multiplier(days)
    annual_rows, daily_errors = [], []
    for area, rows in test.groupby("area"):
        area_pop = population[population["area"] == area]
        projected = central_by_band(rates, str(area), area_pop, years, None).groupby("year")["calls"].sum()
        per_day = pd.Series(spread_over_days(projected, multiplier, days), index=days)
        truth_daily = rows.set_index("ds")["y_expected"]
        daily_errors.append(np.abs(per_day.reindex(truth_daily.index) / truth_daily - 1))
        by_year = rows.groupby(rows["ds"].dt.year)[["y_expected", "y"]].sum()
        annual_rows.append(
            pd.DataFrame(
                {
                    "area": str(area),
                    "year": years,
                    "projected": projected.reindex(years).to_numpy(),
                    "truth": by_year["y_expected"].reindex(years).to_numpy(),
                    "actual": by_year["y"].reindex(years).to_numpy(),
                }
            )
        )
    annual = pd.concat(annual_rows, ignore_index=True)
    annual["error"] = annual["projected"] / annual["truth"] - 1
    return BacktestResult(
        annual=annual,
        annual_mape=float(100 * annual["error"].abs().mean()),
        daily_mape=float(100 * pd.concat(daily_errors).mean()),
    )


def truth_daily(raw: pd.DataFrame) -> pd.DataFrame:
    """The synthetic world's table (one row per area, category and day) as ``area, ds, y, y_expected``."""
    frame = raw.assign(ds=pd.to_datetime(raw["ds"]))
    return frame.groupby(["area", "ds"], as_index=False)[["y", "y_expected"]].sum()
