"""Fixtures for the projection tests: the synthetic world's history, fitted once, and small scenarios."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.projection.daily_shape import DailyShape
from forecasting.projection.history import annual_history
from forecasting.projection.population import validate_population
from forecasting.projection.rates import AgeRateModel
from forecasting.projection.scenario import Scenario
from tests.conftest import ROOT, compose_config

ONS_2020 = ROOT / "data" / "external" / "ons_population" / "england_npp2020_principal_5yr.csv"
SYNTHETIC_POPULATION = ROOT / "data" / "synthetic" / "population.csv"


@pytest.fixture(scope="session")
def rate_ratio() -> dict[str, float]:
    cfg = compose_config("project", [])
    return {str(k): float(v) for k, v in cfg.rates.rate_ratio.items()}


@pytest.fixture(scope="session")
def synthetic_daily(synthetic_counts) -> pd.DataFrame:
    """Calls per area and day with the truth: ``area, ds, y, y_expected``."""
    return synthetic_counts.groupby(["area", "ds"], as_index=False)[["y", "y_expected"]].sum()


@pytest.fixture(scope="session")
def synthetic_population() -> pd.DataFrame:
    return validate_population(pd.read_csv(SYNTHETIC_POPULATION))


@pytest.fixture(scope="session")
def ons_population() -> pd.DataFrame:
    return validate_population(pd.read_csv(ONS_2020))


@pytest.fixture(scope="session")
def fitted(synthetic_daily, synthetic_population, rate_ratio) -> tuple[AgeRateModel, DailyShape]:
    """Rates and daily shape fitted on the whole synthetic world (the trust total for the shape)."""
    rates = AgeRateModel(rate_ratio).fit(annual_history(synthetic_daily), synthetic_population)
    total = synthetic_daily.groupby("ds", as_index=False)["y"].sum().assign(area="total")
    return rates, DailyShape().fit(total)


def scenario(name: str = "principal", **changes) -> Scenario:
    """A scenario with the principal's shares and the given changes."""
    spec = {
        "name": name,
        "description": "test",
        "ageing": {},
        "rate_trend_per_year": None,
        "category_mix": {"C1": 0.094, "C2": 0.623, "C3": 0.26, "C4": 0.023},
        "remote_closure": {"start_share": 0.2, "end_share": 0.2, "end_year": 2025},
        "attended_split": {"see_and_treat": 0.32, "conveyed": 0.68},
    }
    spec.update(changes)
    return Scenario.from_dict(spec)


def tiny_population(values: dict[str, float], years=(2020, 2021), area: str = "A") -> pd.DataFrame:
    """A population table with the given bands and values, repeated for each year."""
    rows = [(area, year, band, value) for year in years for band, value in values.items()]
    return pd.DataFrame(rows, columns=["area", "year", "age_band", "population"])


def poisson_calls(expected: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return expected.assign(calls=rng.poisson(expected["expected"].to_numpy()))
