"""Population tables ``area, year, age_band, population``: validation, scaling, ageing scenarios."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from forecasting.projection.bands import bands_in_range, ordered_bands, parse_band
from mlops.errors import ConfigError, DataValidationError
from mlops.tables import file_lines, near_misses, number_hint, separator_hint, shown

POPULATION_COLUMNS = ("area", "year", "age_band", "population")


def validate_population(
    table: pd.DataFrame, years: Iterable[int] = (), source: str = "population"
) -> pd.DataFrame:
    """Check a population table and return it clean, sorted by area, year and age.

    Parameters
    ----------
    table : DataFrame
        Columns ``area, year, age_band, population`` (others are ignored).
    years : iterable of int
        Years every area must cover (e.g. the history and projection years).
    source : str
        Name of the table in error messages (usually its file).

    Raises
    ------
    DataValidationError
        For a missing column, a year or population that is not a number, a population that is not
        positive and finite (a band without residents is a mistake in the file), duplicate rows,
        bands that are unknown, overlap or leave ages out, an area-year lacking a band, or a needed
        year that is missing.
    """
    missing = [column for column in POPULATION_COLUMNS if column not in table.columns]
    if missing:
        raise DataValidationError(
            f"{source}: missing column(s) {missing}; a population table needs {list(POPULATION_COLUMNS)}"
            f"{near_misses(missing, table.columns)}{separator_hint(table, 'population.read')}"
        )
    frame = table[list(POPULATION_COLUMNS)].copy()
    if not frame.index.is_unique:  # rows are named by index (= file line - 2): make them distinct
        frame = frame.reset_index(drop=True)
    frame["area"] = frame["area"].astype(str)
    frame["age_band"] = frame["age_band"].astype(str).str.strip()
    year = pd.to_numeric(frame["year"], errors="coerce")
    bad = frame.index[year.isna() | (year != year.round())]
    if len(bad):
        raise DataValidationError(
            f"{source}: `year` must be a whole number, found {shown(frame.loc[bad[0], 'year'])} at "
            f"{file_lines(bad)}"
        )
    frame["year"] = year.astype(int)
    population = pd.to_numeric(frame["population"], errors="coerce")
    if population.isna().any():
        bad = frame.index[population.isna()]
        row = frame.loc[bad[0]]
        raise DataValidationError(
            f"{source}: population is missing or not a number for "
            f"{row['area']} {row['year']} {row['age_band']} ({shown(row['population'])} at {file_lines(bad)})"
            f"{number_hint(row['population'], 'population.read')}"
        )
    if (population < 0).any():
        bad = frame.index[population < 0]
        row = frame.loc[bad[0]]
        raise DataValidationError(
            f"{source}: negative population ({population[bad[0]]:g}) for {row['area']} {row['year']} "
            f"{row['age_band']} at {file_lines(bad)}; populations must be > 0"
        )
    infinite = frame.index[~np.isfinite(population.to_numpy(dtype=float))]
    if len(infinite):
        row = frame.loc[infinite[0]]
        raise DataValidationError(
            f"{source}: population {shown(row['population'])} for {row['area']} {row['year']} "
            f"{row['age_band']} at {file_lines(infinite)} is not a finite number"
        )
    zero = population == 0
    if zero.all():
        raise DataValidationError(
            f"{source}: every population is 0 ({len(frame)} rows); the table has no residents to project "
            "(wrong column mapped as population.columns.population?)"
        )
    if zero.any():
        bad = frame.index[zero]
        row = frame.loc[bad[0]]
        raise DataValidationError(
            f"{source}: population 0 for {row['area']} {row['year']} {row['age_band']} at {file_lines(bad)}"
            f"{f' ({len(bad)} rows in all)' if len(bad) > 1 else ''}; every band needs residents (rates "
            "are calls per resident): fix the value or merge the band into its neighbour"
        )
    frame["population"] = population.astype(float)
    duplicated = frame.index[frame.duplicated(["area", "year", "age_band"], keep=False)]
    if len(duplicated):
        row = frame.loc[duplicated[0]]
        raise DataValidationError(
            f"{source}: duplicate rows: more than one row for {row['area']} {row['year']} {row['age_band']} "
            f"at {file_lines(duplicated)}; keep one row per band"
        )
    _screen_populations(frame, source)
    bands = ordered_bands(frame["age_band"], source)
    counts = frame.groupby(["area", "year"])["age_band"].nunique()
    if (counts != len(bands)).any():
        area, yr = counts[counts != len(bands)].index[0]
        have = set(frame.loc[(frame["area"] == area) & (frame["year"] == yr), "age_band"])
        raise DataValidationError(
            f"{source}: {area} {yr} lacks age band(s) {sorted(set(bands) - have)}; every area and year "
            "needs the same bands"
        )
    needed = sorted(set(int(y) for y in years))
    for area, rows in frame.groupby("area"):
        absent = sorted(set(needed) - set(rows["year"]))
        if absent:
            raise DataValidationError(
                f"{source}: area {area!r} has no rows for year(s) {_spans(absent)}; the projection needs "
                f"{needed[0]}-{needed[-1]}"
            )
    order = {band: i for i, band in enumerate(bands)}
    frame = frame.assign(_order=frame["age_band"].map(order))
    return frame.sort_values(["area", "year", "_order"]).drop(columns="_order").reset_index(drop=True)


def to_areas(
    table: pd.DataFrame, area_of: Mapping[str, str] | None, source: str = "population"
) -> pd.DataFrame:
    """Add up the file's units (e.g. local authorities) into the projection's areas.

    ``table`` is a validated table whose ``area`` holds the file's units; ``area_of`` maps each unit
    to an area (``{Cornwall: west, Plymouth: west, Bristol: north}``). None keeps the table as it is.

    Raises
    ------
    DataValidationError
        When a unit of the file is not mapped (every row must go somewhere or be dropped from the file).
    """
    if not area_of:
        return table
    mapping = {str(k): str(v) for k, v in area_of.items()}
    unknown = sorted(set(table["area"]) - set(mapping))
    if unknown:
        raise DataValidationError(
            f"{source}: {len(unknown)} area(s) of the file are not in population.area_of, "
            f"e.g. {unknown[:3]}; map each to one of your areas, or drop its rows from the file"
        )
    grouped = table.assign(area=table["area"].map(mapping))
    summed = grouped.groupby(["area", "year", "age_band"], as_index=False, sort=False)["population"].sum()
    return validate_population(summed, source=source)


def to_bands(table: pd.DataFrame, bands: Iterable[str], source: str = "population") -> pd.DataFrame:
    """Add up finer age bands (e.g. single years of age ``'0'`` ... ``'89'``, ``'90+'``) into ``bands``.

    A table already in ``bands`` is returned as it is; one whose bands do not all nest in ``bands``
    too (the rate model's) is returned unchanged for the usual band check to name the difference.
    """
    bands = list(bands)
    have = list(dict.fromkeys(table["age_band"]))
    if set(have) == set(bands):
        return table
    spans = {band: parse_band(band) for band in bands}
    target = {}
    for label in have:
        low, high = parse_band(label)
        inside = [band for band, (lo, hi) in spans.items() if lo <= low and high <= hi]
        if len(inside) != 1:
            return table
        target[label] = inside[0]
    regrouped = table.assign(age_band=table["age_band"].map(target))
    summed = regrouped.groupby(["area", "year", "age_band"], as_index=False, sort=False)["population"].sum()
    return validate_population(summed, source=source)


def scale_to_areas(national: pd.DataFrame, residents: Mapping[str, float] | None, year: int) -> pd.DataFrame:
    """Give each named area the age structure and change of a single-area table, scaled to its size.

    Parameters
    ----------
    national : DataFrame
        A validated table with one area (e.g. England).
    residents : mapping of str to float, or None
        Residents of each area in ``year``; None uses the table as it is.
    year : int
        The year the resident counts refer to.
    """
    if not residents:
        return national
    if national["area"].nunique() != 1:
        raise ConfigError(
            "population.areas scales a single-area table (e.g. England) to your areas, but this table has "
            f"{national['area'].nunique()} areas; set population.areas=null to use them as they are"
        )
    base = national.loc[national["year"] == year, "population"].sum()
    if base <= 0:
        raise DataValidationError(f"population has no residents in {year} to scale from")
    frames = []
    for area, size in residents.items():
        if not size or float(size) <= 0:
            raise ConfigError(f"population.areas.{area} must be a positive number of residents, got {size}")
        frames.append(national.assign(area=str(area), population=national["population"] * float(size) / base))
    return pd.concat(frames, ignore_index=True)


def apply_ageing(population: pd.DataFrame, growth_scale: Mapping[str, float], from_year: int) -> pd.DataFrame:
    """Scale the projected change of some age ranges after ``from_year``: an ageing scenario.

    For bands inside a range with scale ``s``, ``P'(y) = P(from_year) + s * (P(y) - P(from_year))`` for
    years after ``from_year``: ``s = 1`` keeps the projection, ``s = 1.5`` makes its growth half as
    large again (e.g. England's over-85 growth of about 41 % a decade to the South East's 60 %).

    Parameters
    ----------
    growth_scale : mapping of str to float
        Age range (``'85+'``, ``'65-84'``) to scale; ranges must start and end on band edges.
    """
    if not growth_scale:
        return population
    bands = population["age_band"].unique()
    scale = pd.Series(1.0, index=bands)
    for age_range, value in growth_scale.items():
        if value is None or float(value) < 0:
            raise ConfigError(f"scenario.ageing[{age_range!r}] must be a growth scale >= 0, got {value}")
        scale[bands_in_range(bands, str(age_range), source="scenario.ageing")] = float(value)
    base = population[population["year"] == from_year].set_index(["area", "age_band"])["population"]
    if base.empty:
        raise DataValidationError(
            f"population has no rows for {from_year}, the year ageing scenarios start from"
        )
    start = pd.MultiIndex.from_frame(population[["area", "age_band"]]).map(base.to_dict())
    start = np.asarray(start, dtype=float)
    later = population["year"].to_numpy() > from_year
    factor = population["age_band"].map(scale).to_numpy()
    change = population["population"].to_numpy() - start
    adjusted = np.where(later, start + factor * change, population["population"].to_numpy())
    return population.assign(population=np.maximum(adjusted, 0.0))


# An age band's population does not change twentyfold between years; more than everyone alive
# on Earth in one band is a typo whatever the table (a single year has no years to compare).
_MAX_RATIO_ACROSS_YEARS = 20.0
_MAX_BAND = 1e10


def _screen_populations(frame: pd.DataFrame, source: str) -> None:
    """Refuse a band far from the same area and band in other years (e.g. 1e12 among millions)."""
    population = frame["population"]
    median = frame.groupby(["area", "age_band"])["population"].transform("median")
    ratio = np.maximum(population / median, median / population)
    for bad, why in (
        (frame.index[population > _MAX_BAND], lambda i: f"more than everyone alive ({_MAX_BAND:g})"),
        (
            frame.index[ratio > _MAX_RATIO_ACROSS_YEARS],
            lambda i: (
                f"over {_MAX_RATIO_ACROSS_YEARS:g} times off the band's median over the years ({median[i]:g})"
            ),
        ),
    ):
        if len(bad):
            row = frame.loc[bad[0]]
            raise DataValidationError(
                f"{source}: implausible population {row['population']:g} for {row['area']} {row['year']} "
                f"{row['age_band']} at {file_lines(bad)}: {why(bad[0])}; fix the value (a unit or a typo?)"
            )


def _spans(years: list[int]) -> str:
    """``[2030, 2031, 2032, 2040]`` -> ``'2030-2032, 2040'``: short messages for long gaps."""
    runs = [[years[0], years[0]]]
    for year in years[1:]:
        if year == runs[-1][1] + 1:
            runs[-1][1] = year
        else:
            runs.append([year, year])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
