"""The declared schema: what a training file must be, and how failures are named."""

from __future__ import annotations

import pandas as pd
import pytest

from building_energy.data.schema import DataValidationError, row_errors, validate_raw_buildings


def test_the_real_file_passes(raw_buildings: pd.DataFrame) -> None:
    validated = validate_raw_buildings(raw_buildings, for_training=True)
    assert len(validated) == len(raw_buildings)


def test_missing_required_column_is_named(raw_buildings: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match=r"missing required column\(s\) \['PropertyGFATotal'\]"):
        validate_raw_buildings(raw_buildings.drop(columns="PropertyGFATotal"), for_training=True)


def test_out_of_range_values_name_column_and_line(raw_buildings: pd.DataFrame) -> None:
    bad = raw_buildings.copy()
    bad.loc[3, "PropertyGFATotal"] = -5.0
    bad.loc[7, "ENERGYSTARScore"] = 140.0
    with pytest.raises(DataValidationError) as caught:
        validate_raw_buildings(bad, for_training=True, source="bad.csv")
    message = str(caught.value)
    assert message.startswith("bad.csv: ")
    assert "'PropertyGFATotal' fails greater_than(0) at CSV line(s) 5" in message
    assert "'ENERGYSTARScore' fails less_than_or_equal_to(100) at CSV line(s) 9" in message


def test_duplicate_building_ids_are_refused(raw_buildings: pd.DataFrame) -> None:
    bad = raw_buildings.copy()
    bad.loc[10, "OSEBuildingID"] = bad.loc[11, "OSEBuildingID"]
    with pytest.raises(DataValidationError, match="OSEBuildingID"):
        validate_raw_buildings(bad, for_training=True)


def test_prediction_rows_get_their_own_errors(raw_buildings: pd.DataFrame) -> None:
    rows = raw_buildings.head(4).drop(columns="SiteEnergyUse(kBtu)").copy()
    rows.loc[1, "YearBuilt"] = 1500.0
    rows.loc[2, "PrimaryPropertyType"] = None
    problems = row_errors(rows)
    assert set(problems) == {1, 2}
    assert "YearBuilt" in problems[1][0]
    assert problems[2] == ["PrimaryPropertyType is missing"]
