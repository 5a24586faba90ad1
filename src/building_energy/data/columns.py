"""Names of the City's columns, grouped by what they may be used for."""

from __future__ import annotations

TARGET_KBTU = "SiteEnergyUse(kBtu)"
TARGET_GHG = "TotalGHGEmissions"
TARGET_LOG = "SiteEnergyUse_log"
BUILDING_ID = "OSEBuildingID"

# Read by meters: the target and its twins. A model may never see them.
METER_COLUMNS: tuple[str, ...] = (
    "SiteEUI(kBtu/sf)",
    "SiteEUIWN(kBtu/sf)",
    "SourceEUI(kBtu/sf)",
    "SourceEUIWN(kBtu/sf)",
    TARGET_KBTU,
    "SiteEnergyUseWN(kBtu)",
    "SteamUse(kBtu)",
    "Electricity(kWh)",
    "Electricity(kBtu)",
    "NaturalGas(therms)",
    "NaturalGas(kBtu)",
    TARGET_GHG,
    "GHGEmissionsIntensity",
)
# Verdicts on the meter readings: they describe the target's quality, not the building.
QUALITY_COLUMNS: tuple[str, ...] = ("DefaultData", "ComplianceStatus", "Outlier", "Comments")

CATEGORICAL_INPUTS: tuple[str, ...] = (
    "BuildingType",
    "PrimaryPropertyType",
    "Neighborhood",
    "LargestPropertyUseType",
    "SecondLargestPropertyUseType",
    "ThirdLargestPropertyUseType",
)
NUMERIC_INPUTS: tuple[str, ...] = (
    "CouncilDistrictCode",
    "Latitude",
    "Longitude",
    "YearBuilt",
    "NumberofBuildings",
    "NumberofFloors",
    "PropertyGFATotal",
    "PropertyGFAParking",
    "PropertyGFABuilding(s)",
    "LargestPropertyUseTypeGFA",
    "SecondLargestPropertyUseTypeGFA",
    "ThirdLargestPropertyUseTypeGFA",
    "ENERGYSTARScore",
)
TEXT_INPUTS: tuple[str, ...] = ("ListOfAllPropertyUseTypes",)
# What a city knows about a building before any meter is read: the model's whole input.
MODEL_INPUTS: tuple[str, ...] = CATEGORICAL_INPUTS + NUMERIC_INPUTS + TEXT_INPUTS

# Without these a building cannot be scored at all.
PREDICTION_REQUIRED: tuple[str, ...] = ("PrimaryPropertyType", "PropertyGFATotal", "YearBuilt")
TRAINING_REQUIRED: tuple[str, ...] = (
    BUILDING_ID,
    "BuildingType",
    "PrimaryPropertyType",
    "Neighborhood",
    "Latitude",
    "Longitude",
    "YearBuilt",
    "NumberofFloors",
    "PropertyGFATotal",
    "PropertyGFAParking",
    "PropertyGFABuilding(s)",
    "LargestPropertyUseType",
    "LargestPropertyUseTypeGFA",
    "ENERGYSTARScore",
    TARGET_KBTU,
)

# Every column read as a number, whatever the export wrote (thousands separators, blanks).
NUMERIC_COLUMNS: tuple[str, ...] = (
    BUILDING_ID,
    "DataYear",
    "ZipCode",
    *NUMERIC_INPUTS,
    *METER_COLUMNS,
)

# The numbers scoring reads: the id it echoes and the model's inputs. A bad cell elsewhere (a ZIP+4 code, a meter
# export's "n.a.") says nothing about the building's estimate, so it is not that row's error.
SCORED_NUMERIC_COLUMNS: tuple[str, ...] = (BUILDING_ID, *NUMERIC_INPUTS)

MULTIFAMILY_BUILDING_TYPES: tuple[str, ...] = (
    "Multifamily LR (1-4)",
    "Multifamily MR (5-9)",
    "Multifamily HR (10+)",
)
