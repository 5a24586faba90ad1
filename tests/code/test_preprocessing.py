"""Cleaning rules and category spellings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from building_energy.data.columns import METER_COLUMNS, MODEL_INPUTS, TARGET_GHG, TARGET_LOG
from building_energy.data.schema import DataValidationError
from building_energy.models.train import prepare_xy
from building_energy.preprocessing.categories import normalise_category, split_use_types
from building_energy.preprocessing.preprocessor import preprocess_data, remove_outliers


def test_clean_buildings_are_non_residential_with_positive_target(clean_buildings: pd.DataFrame) -> None:
    assert not clean_buildings["BuildingType"].str.startswith("Multifamily").any()
    assert (clean_buildings["SiteEnergyUse(kBtu)"] > 0).all()
    assert clean_buildings["OSEBuildingID"].is_unique
    assert 1600 < len(clean_buildings) < 1700


def test_log_target_is_present_and_finite(clean_buildings: pd.DataFrame) -> None:
    expected = np.log1p(clean_buildings["SiteEnergyUse(kBtu)"])
    np.testing.assert_allclose(clean_buildings[TARGET_LOG], expected)
    assert np.isfinite(clean_buildings[TARGET_LOG]).all()


def test_model_inputs_hold_no_meter_reading(clean_buildings: pd.DataFrame) -> None:
    X, y = prepare_xy(clean_buildings)
    assert not set(X.columns) & set(METER_COLUMNS)
    assert set(X.columns) - {"OSEBuildingID"} <= set(MODEL_INPUTS)
    assert y.name == "SiteEnergyUse(kBtu)"


def test_remove_outliers_only_drops_rows(clean_buildings: pd.DataFrame) -> None:
    kept = remove_outliers(clean_buildings)
    assert kept.index.isin(clean_buildings.index).all()
    assert kept["Outlier"].isna().all()
    assert len(kept) == clean_buildings["Outlier"].isna().sum()


def test_category_spellings_collapse() -> None:
    values = pd.Series(
        ["DOWNTOWN", "Downtown ", "Delridge", "DELRIDGE NEIGHBORHOODS", "Supermarket / Grocery Store", None, ""]
    )
    normalised = normalise_category(values)
    assert normalised.tolist()[:5] == ["DOWNTOWN", "DOWNTOWN", "DELRIDGE", "DELRIDGE", "SUPERMARKET/GROCERY STORE"]
    assert normalised.iloc[5:].isna().all()


def test_use_type_list_keeps_commas_inside_parentheses() -> None:
    listing = "Office, Personal Services (Health/Beauty, Dry Cleaning, etc), Parking"
    assert split_use_types(listing) == ["Office", "Personal Services (Health/Beauty, Dry Cleaning, etc)", "Parking"]
    assert split_use_types(np.nan) == []


def test_a_file_without_the_chosen_target_is_refused_naming_it(data_path: Path, tmp_path: Path) -> None:
    without_ghg = tmp_path / "no_ghg.csv"
    pd.read_csv(data_path).drop(columns=TARGET_GHG).to_csv(without_ghg, index=False)
    assert len(preprocess_data(without_ghg)) > 0  # the energy model does not need it
    with pytest.raises(DataValidationError, match=r"no_ghg.csv: missing the target column 'TotalGHGEmissions'"):
        preprocess_data(without_ghg, target=TARGET_GHG)


def test_residential_buildings_are_out_of_scope_by_type_or_by_property_type_alone() -> None:
    from building_energy.preprocessing.preprocessor import scope_errors

    property_types = ["Low-Rise Multifamily", "mid-rise  multifamily", "High-Rise Multifamily", "Low-Rise Multifamily"]
    rows = pd.DataFrame(
        {
            "BuildingType": ["Multifamily LR (1-4)", None, "", "Campus", "NonResidential", None],
            "PrimaryPropertyType": [*property_types, "Hotel", "Hotel"],
        }
    )
    residential = "is residential: the model covers non-residential buildings only"
    alone = "without a BuildingType " + residential
    assert scope_errors(rows) == {
        0: [f"BuildingType 'Multifamily LR (1-4)' {residential}"],
        1: [f"PrimaryPropertyType 'mid-rise  multifamily' {alone}"],
        2: [f"PrimaryPropertyType 'High-Rise Multifamily' {alone}"],
    }
    # Without the column every multifamily property type is out, the Campus one too: nothing says otherwise.
    without_types = {row: [f"PrimaryPropertyType {kind!r} {alone}"] for row, kind in enumerate(property_types)}
    assert scope_errors(rows.drop(columns="BuildingType")) == without_types


def test_hand_typed_residential_spellings_are_out_of_scope_and_non_residential_ones_are_not() -> None:
    from building_energy.preprocessing.preprocessor import scope_errors

    residential_types = ["Multifamily", "Multi-family", "MultifamilyLR(1-4)", "Multifamily HR (10 +)", "Residential"]
    residential_uses = ["Multifamily", "Apartment", "Low Rise Multifamily", "Single Family Home", "residential"]
    non_residential_types = ["NonResidential", "Non-Residential", "Residential Care Facility", "Campus", "Not resid."]
    non_residential_uses = ["Residence Hall", "Residential Care Facility", "Other - Lodging/Residential", "Hotel"]
    rows = pd.DataFrame(
        {
            "BuildingType": [*residential_types, *[None] * 5, *non_residential_types, *[None] * 4],
            "PrimaryPropertyType": [*["Hotel"] * 5, *residential_uses, *["Hotel"] * 5, *non_residential_uses],
        }
    )
    assert sorted(scope_errors(rows)) == list(range(len(residential_types) + len(residential_uses)))
