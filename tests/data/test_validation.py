"""The declared schema: what a training file must be, and how failures are named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from building_energy.data.columns import TARGET_KBTU
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
    assert "'PropertyGFATotal' fails greater_than(1000.0) at CSV line(s) 5" in message
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


def test_no_real_building_is_refused_by_the_floor_area_rules(raw_buildings: pd.DataFrame) -> None:
    # The City's smallest total is 11,285 sq ft and its largest use area 6.4 times its total: both rules have room.
    assert raw_buildings["PropertyGFATotal"].min() > 1_000
    assert row_errors(raw_buildings.drop(columns=TARGET_KBTU)) == {}


def _office(total: float, largest: float, second: float = np.nan, third: float = np.nan) -> dict[str, object]:
    return {
        "PrimaryPropertyType": "Small- and Mid-Sized Office",
        "YearBuilt": 1985.0,
        "PropertyGFATotal": total,
        "LargestPropertyUseType": "Office",
        "LargestPropertyUseTypeGFA": largest,
        "SecondLargestPropertyUseTypeGFA": second,
        "ThirdLargestPropertyUseTypeGFA": third,
    }


def test_a_total_floor_area_no_building_has_is_refused_naming_the_field() -> None:
    rows = pd.DataFrame([_office(total, 72_000.0) for total in (5e-324, 1.0, 999.0, 1_000.0)])
    problems = row_errors(rows)
    assert set(problems) == {0, 1, 2, 3}
    for position, total in enumerate((5e-324, 1.0, 999.0, 1_000.0)):
        # Only the total's own rule: use areas are not compared with a total that is refused anyway.
        assert problems[position] == [f"PropertyGFATotal fails greater_than(1000.0) (value {total!r})"]


def test_a_use_area_far_beyond_the_total_is_refused_naming_the_field() -> None:
    rows = pd.DataFrame(
        [
            _office(5_000.0, 72_000.0),
            _office(5_000.0, 50_000.0, 50_000.5, 60_000.0),
            _office(7_200.0, 72_000.0, 0.0, 0.0),  # exactly ten times: the bound itself is allowed
            _office(45_700.0, 293_707.0),  # the City's own largest overshoot (6.4 times) is a real building
            _office(5_000.0, np.nan, np.nan, np.nan),  # unknown use areas break no rule
        ]
    )
    assert row_errors(rows) == {
        0: ["LargestPropertyUseTypeGFA fails less_than_or_equal_to(10 x PropertyGFATotal) (value 72000.0)"],
        1: [
            "SecondLargestPropertyUseTypeGFA fails less_than_or_equal_to(10 x PropertyGFATotal) (value 50000.5)",
            "ThirdLargestPropertyUseTypeGFA fails less_than_or_equal_to(10 x PropertyGFATotal) (value 60000.0)",
        ],
    }


def test_building_and_parking_areas_are_parts_of_the_total_and_a_building_has_some_area() -> None:
    rows = pd.DataFrame(
        [
            {**_office(5_000.0, 5_000.0), "PropertyGFABuilding(s)": 50_001.0, "PropertyGFAParking": 0.0},
            {**_office(5_000.0, 5_000.0), "PropertyGFABuilding(s)": 5_000.0, "PropertyGFAParking": 60_000.0},
            {**_office(50_000.0, 0.0), "PropertyGFABuilding(s)": 0.0, "PropertyGFAParking": 0.0},
            {**_office(50_000.0, 50_000.0), "PropertyGFABuilding(s)": 50_000.0, "PropertyGFAParking": 0.0},
        ]
    )
    # What the API refuses (gt=0, the ten-times rule) is refused in a CSV too, naming the field.
    assert row_errors(rows) == {
        0: ["PropertyGFABuilding(s) fails less_than_or_equal_to(10 x PropertyGFATotal) (value 50001.0)"],
        1: ["PropertyGFAParking fails less_than_or_equal_to(10 x PropertyGFATotal) (value 60000.0)"],
        2: [
            "PropertyGFABuilding(s) fails greater_than(0) (value 0.0)",
            "LargestPropertyUseTypeGFA fails greater_than(0) (value 0.0)",
        ],
    }


def test_a_training_file_breaking_a_floor_area_rule_is_refused_naming_column_rule_and_line(
    raw_buildings: pd.DataFrame,
) -> None:
    bad = raw_buildings.copy()
    bad.loc[3, "LargestPropertyUseTypeGFA"] = 11 * bad.loc[3, "PropertyGFATotal"]
    with pytest.raises(
        DataValidationError,
        match=r"^bad\.csv: column 'LargestPropertyUseTypeGFA' fails less_than_or_equal_to\(10 x PropertyGFATotal\) "
        r"at CSV line\(s\) 5 ",
    ):
        validate_raw_buildings(bad, for_training=True, source="bad.csv")
    bad.loc[7, "PropertyGFATotal"] = 500.0
    with pytest.raises(DataValidationError) as caught:
        validate_raw_buildings(bad, for_training=True, source="bad.csv")
    assert "'PropertyGFATotal' fails greater_than(1000.0) at CSV line(s) 9" in str(caught.value)
    assert "'LargestPropertyUseTypeGFA' fails less_than_or_equal_to(10 x PropertyGFATotal) at CSV line(s) 5" in str(
        caught.value
    )
