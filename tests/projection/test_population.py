"""Population tables: each mistake in a user's file is one clear error; scaling and ageing are exact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.projection.bands import bands_in_range, ordered_bands, parse_band
from forecasting.projection.population import apply_ageing, scale_to_areas, validate_population
from mlops.errors import ConfigError, DataValidationError
from tests.projection.conftest import tiny_population

BANDS = {"0-64": 900.0, "65-84": 80.0, "85+": 20.0}


def test_band_labels_parse_and_sort_by_age():
    assert parse_band("85-89") == (85, 89.0) and parse_band("90+") == (90, float("inf"))
    assert ordered_bands(["90+", "5-9", "0-4", "10-89"]) == ["0-4", "5-9", "10-89", "90+"]


@pytest.mark.parametrize(
    "bands, message",
    [
        (["0-4", "3-9", "10+"], "'0-4' and '3-9' overlap"),
        (["0-4", "10+"], "ages 5-9 are in no band"),
        (["5-9", "10+"], "must start at age 0"),
        (["0-4", "5-89"], "must be open-ended"),
        (["0-4", "5 to 9", "10+"], "unknown age band '5 to 9'"),
        (["0-4", "9-5", "10+"], "unknown age band '9-5'"),
    ],
)
def test_bands_that_do_not_tile_the_ages_are_refused(bands, message):
    with pytest.raises(DataValidationError, match=message):
        validate_population(tiny_population(dict.fromkeys(bands, 1.0)), source="pop.csv")


def test_negative_population_is_named():
    table = tiny_population(BANDS)
    table.loc[4, "population"] = -5
    with pytest.raises(
        DataValidationError, match=r"pop.csv: negative population \(-5\) for A 2021 65-84 at line\(s\) 6"
    ):
        validate_population(table, source="pop.csv")


def test_missing_years_are_listed_as_spans():
    table = tiny_population(BANDS, years=(2020, 2021, 2025))
    with pytest.raises(DataValidationError, match=r"area 'A' has no rows for year\(s\) 2022-2024, 2026"):
        validate_population(table, years=range(2020, 2027), source="pop.csv")


def test_missing_band_duplicates_and_columns_are_refused():
    table = tiny_population(BANDS)
    with pytest.raises(DataValidationError, match=r"A 2021 lacks age band\(s\) \['85\+'\]"):
        validate_population(table.drop(index=5))
    with pytest.raises(DataValidationError, match="more than one row for A 2020 0-64"):
        validate_population(pd.concat([table, table.head(1)]))
    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['age_band'\]"):
        validate_population(table.drop(columns="age_band"))
    with pytest.raises(DataValidationError, match="not a number"):
        validate_population(table.assign(population=["x", *table["population"][1:]]))
    with pytest.raises(DataValidationError, match="whole number"):
        validate_population(table.assign(year=2020.5))


def test_valid_table_comes_back_sorted_by_age(ons_population):
    assert list(ons_population["age_band"].head(3)) == ["0-4", "5-9", "10-14"]
    assert ons_population["year"].min() == 2020 and ons_population["year"].max() == 2050


def test_scaling_keeps_the_national_structure(ons_population):
    scaled = scale_to_areas(ons_population, {"north": 1_000_000, "south": 500_000}, 2025)
    in_2025 = scaled[scaled["year"] == 2025].groupby("area")["population"].sum()
    assert in_2025.to_dict() == pytest.approx({"north": 1e6, "south": 5e5})
    north = scaled[scaled["area"] == "north"].set_index(["year", "age_band"])["population"]
    national = ons_population.set_index(["year", "age_band"])["population"]
    ratio = north / national
    assert np.allclose(ratio, ratio.iloc[0])  # same shape and change, different size
    assert scale_to_areas(ons_population, None, 2025) is ons_population
    with pytest.raises(ConfigError, match="positive number of residents"):
        scale_to_areas(ons_population, {"x": 0}, 2025)
    two_areas = pd.concat([tiny_population(BANDS, area="A"), tiny_population(BANDS, area="B")])
    with pytest.raises(ConfigError, match="single-area table"):
        scale_to_areas(validate_population(two_areas), {"x": 10}, 2020)


def test_ageing_scales_only_the_change_after_the_start_year():
    table = validate_population(tiny_population(BANDS, years=(2020, 2021, 2022)))
    table.loc[table["year"] == 2022, "population"] *= 2  # every band doubles by 2022
    aged = apply_ageing(table, {"85+": 1.5}, from_year=2021)
    old = aged[aged["age_band"] == "85+"].set_index("year")["population"]
    assert old.to_dict() == {2020: 20.0, 2021: 20.0, 2022: 20.0 + 1.5 * 20.0}
    young = aged[aged["age_band"] == "0-64"].set_index("year")["population"]
    assert young[2022] == 1800.0
    with pytest.raises(DataValidationError, match="splits band '65-84'"):
        apply_ageing(table, {"80+": 1.5}, from_year=2021)


def test_age_ranges_are_made_of_whole_bands():
    bands = ["0-4", "5-84", "85-89", "90+"]
    assert bands_in_range(bands, "85+") == ["85-89", "90+"]
    with pytest.raises(DataValidationError, match="age range '100\\+' splits band '90\\+'"):
        bands_in_range(bands, "100+")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0.0, r"pop.csv: population 0 for A 2021 65-84 at line\(s\) 6; every band needs residents"),
        (float("inf"), r"pop.csv: population inf for A 2021 65-84 at line\(s\) 6 is not a finite number"),
        ("lots", r"not a number for A 2021 65-84 \('lots' at line\(s\) 6\)"),
    ],
    ids=["zero", "infinite", "text"],
)
def test_implausible_populations_name_area_year_band_and_line(value, message):
    table = tiny_population(BANDS).astype({"population": object})
    table.loc[4, "population"] = value
    with pytest.raises(DataValidationError, match=message):
        validate_population(table, source="pop.csv")


def test_an_all_zero_population_is_refused():
    with pytest.raises(DataValidationError, match=r"every population is 0 \(6 rows\).*population.columns"):
        validate_population(tiny_population(dict.fromkeys(BANDS, 0.0)), source="pop.csv")


def test_population_file_read_with_options_and_checked(tmp_path):
    from forecasting.io import read_population

    path = tmp_path / "pop.csv"
    path.write_text("year;age_band;population\n2020;0-64;1.000,5\n2020;65+;0\n")
    with pytest.raises(
        DataValidationError, match=r"population 0 for 2020 65\+ at line\(s\) 3 is not a positive"
    ):
        read_population(path, {"sep": ";", "decimal": ",", "thousands": "."})
    path.write_text("year;age_band;population\n2020;0-64;1.000,5\n2020;65+;20\n")
    table = read_population(path, {"sep": ";", "decimal": ",", "thousands": "."})
    assert table["population"].tolist() == [1000.5, 20.0]


def test_a_band_far_from_its_other_years_is_refused_with_its_line():
    table = tiny_population(BANDS, years=(2020, 2021, 2022))
    table.loc[7, "population"] = 1e12  # A 2022 65-84
    with pytest.raises(
        DataValidationError, match=r"implausible population 1e\+12 for A 2022 65-84 at line\(s\) 9"
    ):
        validate_population(table, source="pop.csv")
    single_year = tiny_population({"0-64": 900.0, "65+": 1e12}, years=(2020,))
    with pytest.raises(DataValidationError, match="more than everyone alive"):
        validate_population(single_year, source="pop.csv")
    ageing = tiny_population(BANDS, years=(2020, 2021, 2022))
    ageing.loc[ageing["age_band"] == "85+", "population"] = [20.0, 40.0, 90.0]  # fast, but possible
    assert len(validate_population(ageing)) == 9


def test_duplicate_rows_and_bad_years_name_their_lines():
    table = tiny_population(BANDS)
    with pytest.raises(DataValidationError, match=r"duplicate rows: .*A 2021 65-84 at line\(s\) 6, 8"):
        validate_population(pd.concat([table, table.iloc[[4]]], ignore_index=True), source="pop.csv")
    with pytest.raises(DataValidationError, match=r"whole number, found 2020.5 at line\(s\) 2"):
        validate_population(table.assign(year=[2020.5, *table["year"][1:]]), source="pop.csv")


def test_populations_with_thousands_marks_name_the_option():
    table = tiny_population(BANDS).astype({"population": object})
    table.loc[0, "population"] = "1,900"
    with pytest.raises(
        DataValidationError, match=r"""not a number .*'1,900'.*set "population.read.thousands=','\""""
    ):
        validate_population(table, source="pop.csv")
