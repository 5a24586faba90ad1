"""What goes over the wire, named by direction: ``*In`` is a request body, ``*Out`` a response.

A building is described in the City's vocabulary. Every field has a snake_case name and accepts the City's
exact column name as an alias (``property_gfa_buildings`` or ``PropertyGFABuilding(s)``), so the model-input
columns of a row of the City's CSV can be posted as they are. Anything else, a meter reading included, is
rejected: the model never reads it, and a silently ignored key hides a typo.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, SkipValidation, StringConstraints, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from building_energy.data.columns import BUILDING_ID, NUMERIC_INPUTS
from building_energy.data.schema import MAX_USE_AREA_TO_TOTAL, MIN_TOTAL_AREA_SQFT, TOTAL_AREA, use_area_exceeds
from building_energy.preprocessing.preprocessor import residential_reason

# JSON has no NaN or infinity; inputs that are not finite are refused (send null for an unknown value).
Finite = Annotated[float, Field(allow_inf_nan=False)]
Category = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
UseTypeList = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
# Upper bounds are the data schema's: wider than any real Seattle building.
MAX_AREA_SQFT = 1e8
# The data schema's rule relating each use type's floor area to the total (no JSON Schema keyword can).
WITHIN_TOTAL = f", at most {MAX_USE_AREA_TO_TOTAL:g} times {TOTAL_AREA}"

# A real building of the City's 2016 data (OSEBuildingID 1, a downtown hotel).
EXAMPLE_BUILDING: dict[str, Any] = {
    "OSEBuildingID": 1,
    "BuildingType": "NonResidential",
    "PrimaryPropertyType": "Hotel",
    "Neighborhood": "DOWNTOWN",
    "CouncilDistrictCode": 7,
    "Latitude": 47.6122,
    "Longitude": -122.33799,
    "YearBuilt": 1927,
    "NumberofBuildings": 1,
    "NumberofFloors": 12,
    "PropertyGFATotal": 88434,
    "PropertyGFAParking": 0,
    "PropertyGFABuilding(s)": 88434,
    "ListOfAllPropertyUseTypes": "Hotel",
    "LargestPropertyUseType": "Hotel",
    "LargestPropertyUseTypeGFA": 88434,
    "ENERGYSTARScore": 60,
}
SECOND_EXAMPLE_BUILDING: dict[str, Any] = {
    "PrimaryPropertyType": "Small- and Mid-Sized Office",
    "BuildingType": "NonResidential",
    "Neighborhood": "LAKE UNION",
    "YearBuilt": 1985,
    "NumberofFloors": 4,
    "PropertyGFATotal": 52000,
    "PropertyGFABuilding(s)": 45000,
    "PropertyGFAParking": 7000,
    "LargestPropertyUseType": "Office",
    "LargestPropertyUseTypeGFA": 45000,
}


class BuildingIn(BaseModel):
    """One building, as the City describes it before any meter is read. Only the three required fields
    must be known; a missing optional value is imputed by the model like a blank cell of the City's CSV."""

    model_config = ConfigDict(
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        json_schema_extra={"examples": [EXAMPLE_BUILDING]},
    )

    # At most 2**53, like the City file's schema: the largest whole number a float64 column holds exactly.
    ose_building_id: int | None = Field(
        None, alias=BUILDING_ID, gt=0, le=2**53, description="The City's building id, echoed in the answer"
    )
    # Before PrimaryPropertyType, whose check reads it.
    building_type: Category | None = Field(
        None,
        alias="BuildingType",
        description="e.g. 'NonResidential', 'Campus'; not a multifamily, single-family or 'Residential' type in any "
        "spelling, which the model was not trained on (422 out_of_scope)",
    )
    primary_property_type: Category = Field(
        alias="PrimaryPropertyType",
        description="e.g. 'Hotel', 'Small- and Mid-Sized Office', 'K-12 School'; a multifamily, single-family, "
        "apartment or 'Residential' type only with the BuildingType of a non-residential building (else 422 "
        "out_of_scope)",
    )
    year_built: int = Field(alias="YearBuilt", ge=1800, le=2030)
    # The data schema's lower bound, so that the OpenAPI schema promises no total that scoring refuses.
    property_gfa_total: Finite = Field(
        alias="PropertyGFATotal",
        gt=MIN_TOTAL_AREA_SQFT,
        le=MAX_AREA_SQFT,
        description="Total floor area with parking (sq ft)",
    )
    neighborhood: Category | None = Field(None, alias="Neighborhood", description="e.g. 'DOWNTOWN', 'BALLARD'")
    council_district_code: int | None = Field(None, alias="CouncilDistrictCode", ge=1, le=7)
    latitude: Finite | None = Field(None, alias="Latitude", ge=47.0, le=48.5)
    longitude: Finite | None = Field(None, alias="Longitude", ge=-123.0, le=-121.5)
    number_of_buildings: int | None = Field(None, alias="NumberofBuildings", ge=0, le=1000)
    number_of_floors: int | None = Field(None, alias="NumberofFloors", ge=0, le=200)
    property_gfa_parking: Finite | None = Field(
        None,
        alias="PropertyGFAParking",
        ge=0,
        le=MAX_AREA_SQFT,
        description="Parking floor area (sq ft)" + WITHIN_TOTAL,
    )
    property_gfa_buildings: Finite | None = Field(
        None,
        alias="PropertyGFABuilding(s)",
        gt=0,
        le=MAX_AREA_SQFT,
        description="Floor area of the building(s), parking excluded (sq ft)" + WITHIN_TOTAL,
    )
    list_of_all_property_use_types: UseTypeList | None = Field(
        None, alias="ListOfAllPropertyUseTypes", description="Comma-separated, e.g. 'Office, Parking, Retail Store'"
    )
    largest_property_use_type: Category | None = Field(None, alias="LargestPropertyUseType")
    largest_property_use_type_gfa: Finite | None = Field(
        None,
        alias="LargestPropertyUseTypeGFA",
        gt=0,
        le=MAX_AREA_SQFT,
        description="Floor area of the largest use (sq ft)" + WITHIN_TOTAL,
    )
    second_largest_property_use_type: Category | None = Field(None, alias="SecondLargestPropertyUseType")
    second_largest_property_use_type_gfa: Finite | None = Field(
        None,
        alias="SecondLargestPropertyUseTypeGFA",
        ge=0,
        le=MAX_AREA_SQFT,
        description="Floor area of the second use (sq ft)" + WITHIN_TOTAL,
    )
    third_largest_property_use_type: Category | None = Field(None, alias="ThirdLargestPropertyUseType")
    third_largest_property_use_type_gfa: Finite | None = Field(
        None,
        alias="ThirdLargestPropertyUseTypeGFA",
        ge=0,
        le=MAX_AREA_SQFT,
        description="Floor area of the third use (sq ft)" + WITHIN_TOTAL,
    )
    energystar_score: Finite | None = Field(
        None, alias="ENERGYSTARScore", ge=0, le=100, description="Optional; the model imputes it when unknown"
    )

    @field_validator("*", mode="before")
    @classmethod
    def refuse_booleans_and_strings_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """pydantic's lax mode would read true as 1 and "1927" as 1927; the schema promises a JSON number, so
        they are refused like any other wrong type (88434 for a float and 7.0 for an integer stay accepted,
        as JSON Schema allows)."""
        kind = _NUMBER_KIND.get(str(info.field_name))
        if kind is not None and isinstance(value, bool | str):
            raise PydanticCustomError(
                f"{kind}_type",
                "Input should be a valid {kind}, not a JSON {got}",
                {
                    "kind": "integer" if kind == "int" else "number",
                    "got": "boolean" if isinstance(value, bool) else "string",
                },
            )
        return value

    @field_validator("building_type")
    @classmethod
    def refuse_a_residential_building(cls, value: str | None) -> str | None:
        """Multifamily buildings are left out of training: an estimate for one would look like any other."""
        if residential_reason(value, None) is not None:
            raise PydanticCustomError(
                "out_of_scope",
                "The model covers non-residential buildings only; '{value}' is residential",
                {"value": value},
            )
        return value

    @field_validator("primary_property_type")
    @classmethod
    def refuse_a_residential_property_type_alone(cls, value: str, info: ValidationInfo) -> str:
        """``residential_reason``'s second case, as for a CSV: a multifamily property type with no building type
        (a few campus and non-residential buildings have that property type, and say so by their type)."""
        if "building_type" in info.data and residential_reason(info.data["building_type"], value) is not None:
            raise PydanticCustomError(
                "out_of_scope",
                "The model covers non-residential buildings only; '{value}' without a BuildingType is residential",
                {"value": value},
            )
        return value

    @field_validator(
        "property_gfa_buildings",
        "property_gfa_parking",
        "largest_property_use_type_gfa",
        "second_largest_property_use_type_gfa",
        "third_largest_property_use_type_gfa",
    )
    @classmethod
    def refuse_a_use_area_far_beyond_the_total(cls, value: float | None, info: ValidationInfo) -> float | None:
        """The data schema's cross-field rule (``use_area_exceeds``), here so that the 422 names
        the field; a total that failed its own bounds is not in ``info.data`` and is not compared with."""
        total = info.data.get("property_gfa_total")
        if value is not None and total is not None and use_area_exceeds(value, total):
            raise PydanticCustomError(
                "use_area_over_total",
                "Input should be at most {ratio} times {total_field}",
                {"ratio": f"{MAX_USE_AREA_TO_TOTAL:g}", "total_field": TOTAL_AREA},
            )
        return value

    def city_record(self) -> dict[str, Any]:
        """The building under the City's column names (unknown values as ``None``)."""
        return self.model_dump(by_alias=True)


CITY_COLUMNS: tuple[str, ...] = tuple(field.alias or name for name, field in BuildingIn.model_fields.items())
_NUMERIC = frozenset({BUILDING_ID, *NUMERIC_INPUTS})
# Field name -> "int" or "float", for the numeric fields only.
_NUMBER_KIND: dict[str, str] = {
    name: "int" if int in (typing.get_args(field.annotation) or (field.annotation,)) else "float"
    for name, field in BuildingIn.model_fields.items()
    if (field.alias or name) in _NUMERIC
}


def city_payload(record: Mapping[str, Any] | pd.Series) -> dict[str, Any]:
    """The JSON body for a City record (a CSV row as a dict or Series): its model-input columns, blanks left out."""
    payload: dict[str, Any] = {}
    for column in CITY_COLUMNS:
        value = record.get(column)
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
            continue
        payload[column] = value.item() if isinstance(value, np.generic) else value
    return payload


def buildings_frame(buildings: list[BuildingIn]) -> pd.DataFrame:
    """Raw City records, one row per building, typed like ``read_buildings_csv`` types a CSV."""
    records = [b.city_record() for b in buildings]
    return pd.DataFrame(
        {
            column: pd.Series([r[column] for r in records], dtype="float64" if column in _NUMERIC else object)
            for column in CITY_COLUMNS
        }
    )


class PredictionOut(BaseModel):
    """One building's estimate. ``lower``/``upper`` bound it when the model provides an interval."""

    building_id: int | None = Field(None, description="OSEBuildingID when the request gave one")
    target: Literal["energy", "ghg"] = Field(description="What the model predicts")
    unit: str = Field(description="'kBtu' (annual site energy) or 'metric tons CO2e'")
    prediction: float = Field(description="Predicted annual value, in `unit`")
    lower: float | None = None
    upper: float | None = None
    interval_level: float | None = Field(None, description="Coverage of [lower, upper]")
    model_version: str
    warnings: list[str] = Field(default_factory=list, description="e.g. a category the model never saw")


class DriverOut(BaseModel):
    """One input field's share of an estimate (SHAP), as the factor it multiplies the estimate by."""

    field: str = Field(description="The City's field, or a group of them (e.g. location)")
    contribution_log: float = Field(description="Contribution to log(1 + prediction)")
    factor: float = Field(description="exp(contribution_log): >1 raises the estimate, <1 lowers it")
    unknown: bool = Field(
        False, description="The building did not give this field: the factor is the effect of its being unknown"
    )


class ExplanationOut(BaseModel):
    """An estimate and the input fields that move it most."""

    prediction: PredictionOut
    drivers: list[DriverOut]


class FieldError(BaseModel):
    """Why a value was refused: the field (the City's column name) and the rule it breaks."""

    field: str | None = Field(description="The offending field, None when the whole building is concerned")
    message: str
    type: str


class BatchIn(BaseModel):
    """Up to the configured ``api.max_batch`` buildings. Each is validated on its own, so one bad building
    gets its own errors and never fails the others."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"buildings": [EXAMPLE_BUILDING, SECOND_EXAMPLE_BUILDING]}]}
    )

    # Items are validated one by one in the route; the schema still documents them as buildings.
    buildings: list[SkipValidation[BuildingIn]] = Field(min_length=1)


class BatchItemOut(BaseModel):
    index: int = Field(description="Position of the building in the request")
    prediction: PredictionOut | None = None
    errors: list[FieldError] = Field(default_factory=list)


class BatchOut(BaseModel):
    model_version: str
    n_predicted: int
    n_failed: int
    items: list[BatchItemOut]


class HealthOut(BaseModel):
    status: Literal["ok", "unavailable"]
    model_loaded: bool
    model_source: str
    model_version: str | None = None
    model_sha256: str | None = None
    data_sha256: str | None = Field(None, description="SHA-256 of the data the model was trained on")
    reason: str | None = Field(None, description="Why no model is served")


class ModelOut(BaseModel):
    """The served model: where it comes from, how it was trained, and its recorded test metrics."""

    source: str
    version: str
    target: str
    unit: str
    model_sha256: str | None
    data_sha256: str | None
    git_commit: str | None
    trained_at: str | None
    profile: str | None
    use_energy_star: bool | None
    n_train: int | None
    n_test: int | None
    interval_level: float | None
    input_features: list[str]
    metrics: dict[str, Any] = Field(description="Recorded at training: train, test (kBtu and log scale), cv")
    versions: dict[str, str] = Field(description="Library versions at training")
    registry: dict[str, Any] | None = Field(None, description="Registry name/version/run when loaded by models:/ URI")


class ErrorOut(BaseModel):
    detail: str | list[FieldError]
