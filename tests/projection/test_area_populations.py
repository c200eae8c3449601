"""Per-area populations: areas set in one override, a user's local-authority table by single year
of age added up into areas and bands, older areas growing faster, and the trust total served."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.projection.config_checks import check_config
from forecasting.projection.pipeline import load_projection_population
from forecasting.projection.population import scale_to_areas
from forecasting.projection.projector import ProjectionSettings, project_scenarios
from forecasting.projection.serving import answer_requests
from mlops.errors import DataValidationError
from tests.conftest import compose_config
from tests.projection.conftest import scenario


def test_one_override_sets_several_areas_and_replaces_the_default():
    cfg = compose_config("project", ["population.areas={north: 750000, south: 1200000}"])
    check_config(cfg)
    assert dict(cfg.population.areas) == {"north": 750000, "south": 1200000}


def _local_authorities(ons_population: pd.DataFrame, path) -> None:
    """Three local authorities by single year of age (each 5-year band spread evenly), one older."""
    rows = []
    for la, scale, old_factor in (("Plymouth", 0.3, 1.0), ("Torbay", 0.2, 2.5), ("Bristol", 0.5, 1.0)):
        for row in ons_population[ons_population["year"].between(2023, 2035)].itertuples():
            low = int(row.age_band.split("-")[0].rstrip("+"))
            ages = [str(low)] if row.age_band.endswith("+") else [str(a) for a in range(low, low + 5)]
            factor = old_factor if low >= 65 else 1.0
            for age in ages:
                label = "90+" if row.age_band.endswith("+") else age
                rows.append((la, row.year, label, row.population * scale * factor / len(ages) / 50))
    pd.DataFrame(rows, columns=["la_name", "year", "age", "persons"]).to_csv(path, index=False)


def test_local_authorities_by_single_age_become_areas_in_the_rate_bands(tmp_path, ons_population):
    path = tmp_path / "snpp.csv"
    _local_authorities(ons_population, path)
    overrides = [
        "population=csv",
        f"population.path={path}",
        "population.columns={area: la_name, year: year, age_band: age, population: persons}",
        "population.area_of={Plymouth: west, Torbay: west, Bristol: north}",
    ]
    cfg = compose_config("project", overrides)
    check_config(cfg)
    table = load_projection_population(cfg, range(2023, 2036))
    assert sorted(table["area"].unique()) == ["north", "west"]
    assert list(dict.fromkeys(table["age_band"])) == list(cfg.rates.rate_ratio)
    source = pd.read_csv(path)
    west = source[source["la_name"].isin(["Plymouth", "Torbay"]) & (source["year"] == 2030)]["persons"].sum()
    got = table[(table["area"] == "west") & (table["year"] == 2030)]["population"].sum()
    assert got == pytest.approx(west)

    unmapped = compose_config("project", [*overrides[:3], "population.area_of={Plymouth: west}"])
    with pytest.raises(DataValidationError, match=r"not in population.area_of, e.g. \['Bristol', 'Torbay'\]"):
        load_projection_population(unmapped, range(2023, 2036))


def test_older_area_grows_faster_and_the_total_is_served(fitted, ons_population):
    rates, shape = fitted
    young = scale_to_areas(ons_population, {"young": 1_000_000}, 2025)
    old = scale_to_areas(ons_population, {"old": 1_000_000}, 2025)
    older = old["age_band"].isin(["75-79", "80-84", "85-89", "90+"])
    old.loc[older, "population"] *= 2.0  # twice England's share of over-75s in every year
    population = pd.concat([young, old], ignore_index=True)
    settings = ProjectionSettings(base_year=2025, horizon_years=10, n_paths=100, seed=2)
    projection = project_scenarios(rates, shape, population, [scenario()], settings)
    growth = projection.growth[projection.growth["measure"] == "calls"].set_index("area")["mean"]
    assert growth["old"] > growth["young"] + 0.02
    assert growth["young"] < growth["total"] < growth["old"]

    daily = projection.daily
    answer = answer_requests(
        daily,
        {"principal": scenario()},
        settings.base_year,
        settings.labels,
        pd.DataFrame(
            {"area": ["total", "young", "old"], "date": ["2035-01-01"] * 3, "scenario": ["principal"] * 3}
        ),
    )
    assert answer.loc[0, "calls_mean"] == pytest.approx(answer.loc[1:, "calls_mean"].sum(), rel=1e-9)
    assert np.isfinite(answer[["calls_p10", "calls_p90"]].to_numpy()).all()
