"""POST /predict and /predict/batch: the pipeline's own answers, strict inputs, per-item batch errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from building_energy.api import create_app
from building_energy.api.schemas import EXAMPLE_BUILDING, BuildingIn
from building_energy.data.columns import MODEL_INPUTS
from building_energy.models.loading import LoadedModel
from building_energy.models.train import TrainingResult
from tests.api.conftest import api_settings, building_payload
from tests.injected_fault import FAULTY_YEAR, INJECTED_MESSAGE, save_with_fault

pytestmark = pytest.mark.slow


def _predict(client: TestClient, building: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/predict", json=building)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_one_building_gets_kbtu_an_interval_and_the_model_version(client: TestClient, loaded: LoadedModel) -> None:
    body = _predict(client, EXAMPLE_BUILDING)
    # The record as a CSV with the model's columns would give it (absent values blank).
    expected = float(loaded.predict(pd.DataFrame([EXAMPLE_BUILDING]).reindex(columns=list(MODEL_INPUTS)))[0])
    assert body["prediction"] == expected
    assert body["unit"] == "kBtu"
    assert body["target"] == "energy"
    assert body["building_id"] == EXAMPLE_BUILDING["OSEBuildingID"]
    assert body["lower"] < body["prediction"] < body["upper"]
    assert 0 < body["interval_level"] < 1
    assert body["model_version"] == client.get("/health").json()["model_version"]
    assert body["warnings"] == []


def test_100_real_buildings_over_http_equal_the_pipeline(
    client: TestClient, loaded: LoadedModel, sample_buildings: pd.DataFrame
) -> None:
    """Training/serving skew would show here: the API must answer exactly what the pipeline answers."""
    expected = np.asarray(loaded.model.predict(sample_buildings), dtype=float)
    payloads = [building_payload(row) for _, row in sample_buildings.iterrows()]
    single = np.array([_predict(client, payload)["prediction"] for payload in payloads])
    batch = client.post("/predict/batch", json={"buildings": payloads})
    assert batch.status_code == 200, batch.text
    assert batch.json()["n_failed"] == 0
    batched = np.array([item["prediction"]["prediction"] for item in batch.json()["items"]])
    # One row at a time or 100 at once, JSON round trip included: the same floats up to the last bits.
    np.testing.assert_allclose(single, expected, rtol=1e-12, atol=0)
    np.testing.assert_allclose(batched, expected, rtol=1e-12, atol=0)
    ids = [item["prediction"]["building_id"] for item in batch.json()["items"]]
    assert ids == sample_buildings["OSEBuildingID"].astype(int).tolist()


def test_snake_case_names_and_city_names_are_the_same_building(client: TestClient) -> None:
    by_name = BuildingIn.model_validate(EXAMPLE_BUILDING).model_dump(by_alias=False, exclude_none=True)
    assert "property_gfa_buildings" in by_name
    assert _predict(client, by_name)["prediction"] == _predict(client, EXAMPLE_BUILDING)["prediction"]


def test_a_category_in_another_spelling_is_the_same_category(client: TestClient) -> None:
    shouted = {**EXAMPLE_BUILDING, "PrimaryPropertyType": "  hotel ", "Neighborhood": "Downtown"}
    body = _predict(client, shouted)
    assert body["prediction"] == _predict(client, EXAMPLE_BUILDING)["prediction"]
    assert body["warnings"] == []


def test_an_unseen_category_is_answered_with_a_warning(client: TestClient) -> None:
    body = _predict(client, {**EXAMPLE_BUILDING, "LargestPropertyUseType": "Spaceport"})
    assert body["prediction"] > 0
    assert len(body["warnings"]) == 1
    assert "LargestPropertyUseType 'Spaceport'" in body["warnings"][0]
    assert "not a category the model was trained on" in body["warnings"][0]


def test_only_the_three_required_fields_suffice(client: TestClient) -> None:
    body = _predict(client, {"PrimaryPropertyType": "Hotel", "YearBuilt": 1927, "PropertyGFATotal": 88434})
    assert body["prediction"] > 0
    assert body["building_id"] is None


# (body change, field the 422 must name, pydantic error type)
INVALID: list[tuple[dict[str, Any], str, str]] = [
    ({"PrimaryPropertyType": None}, "PrimaryPropertyType", "string_type"),
    ({"PrimaryPropertyType": "   "}, "PrimaryPropertyType", "string_too_short"),
    ({"PrimaryPropertyType": 5}, "PrimaryPropertyType", "string_type"),
    ({"YearBuilt": 1700}, "YearBuilt", "greater_than_equal"),
    ({"YearBuilt": 2100}, "YearBuilt", "less_than_equal"),
    ({"YearBuilt": 1927.5}, "YearBuilt", "int_from_float"),
    ({"YearBuilt": "old"}, "YearBuilt", "int_type"),
    ({"YearBuilt": "1927"}, "YearBuilt", "int_type"),
    ({"NumberofFloors": True}, "NumberofFloors", "int_type"),
    ({"PropertyGFATotal": 0}, "PropertyGFATotal", "greater_than"),
    ({"PropertyGFATotal": -88434}, "PropertyGFATotal", "greater_than"),
    ({"PropertyGFATotal": 2e8}, "PropertyGFATotal", "less_than_equal"),
    ({"PropertyGFATotal": "big"}, "PropertyGFATotal", "float_type"),
    ({"PropertyGFATotal": "88434"}, "PropertyGFATotal", "float_type"),
    ({"PropertyGFABuilding(s)": True}, "PropertyGFABuilding(s)", "float_type"),
    ({"ENERGYSTARScore": False}, "ENERGYSTARScore", "float_type"),
    ({"PropertyGFABuilding(s)": 0}, "PropertyGFABuilding(s)", "greater_than"),
    ({"PropertyGFAParking": -1}, "PropertyGFAParking", "greater_than_equal"),
    ({"LargestPropertyUseTypeGFA": 0}, "LargestPropertyUseTypeGFA", "greater_than"),
    ({"SecondLargestPropertyUseTypeGFA": -5}, "SecondLargestPropertyUseTypeGFA", "greater_than_equal"),
    ({"ThirdLargestPropertyUseTypeGFA": -5}, "ThirdLargestPropertyUseTypeGFA", "greater_than_equal"),
    ({"ENERGYSTARScore": -1}, "ENERGYSTARScore", "greater_than_equal"),
    ({"ENERGYSTARScore": 101}, "ENERGYSTARScore", "less_than_equal"),
    ({"Latitude": 40.7}, "Latitude", "greater_than_equal"),
    ({"Longitude": -74.0}, "Longitude", "less_than_equal"),
    ({"CouncilDistrictCode": 8}, "CouncilDistrictCode", "less_than_equal"),
    ({"NumberofFloors": -1}, "NumberofFloors", "greater_than_equal"),
    ({"NumberofFloors": 500}, "NumberofFloors", "less_than_equal"),
    ({"NumberofBuildings": -1}, "NumberofBuildings", "greater_than_equal"),
    ({"OSEBuildingID": 0}, "OSEBuildingID", "greater_than"),
    ({"OSEBuildingID": 2**53 + 1}, "OSEBuildingID", "less_than_equal"),
    ({"OSEBuildingID": 10**400}, "OSEBuildingID", "less_than_equal"),  # beyond float64: once a 500
    ({"Neighborhood": "x" * 201}, "Neighborhood", "string_too_long"),
    ({"BuildingType": "Multifamily LR (1-4)"}, "BuildingType", "out_of_scope"),
    ({"BuildingType": " multifamily  hr (10+) "}, "BuildingType", "out_of_scope"),
    ({"BuildingType": "Multi-family"}, "BuildingType", "out_of_scope"),
    ({"BuildingType": None, "PrimaryPropertyType": "Apartment"}, "PrimaryPropertyType", "out_of_scope"),
    ({"BuildingType": None, "PrimaryPropertyType": "Low-Rise Multifamily"}, "PrimaryPropertyType", "out_of_scope"),
    ({"YearBuit": 1927}, "YearBuit", "extra_forbidden"),
    ({"SiteEnergyUse(kBtu)": 7226362.5}, "SiteEnergyUse(kBtu)", "extra_forbidden"),
]


@pytest.mark.parametrize(("change", "field", "error_type"), INVALID, ids=[f"{f}-{t}" for _, f, t in INVALID])
def test_an_invalid_field_is_refused_with_422_naming_it(
    client: TestClient, change: dict[str, Any], field: str, error_type: str
) -> None:
    response = client.post("/predict", json={**EXAMPLE_BUILDING, **change})
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert {(e["field"], e["type"]) for e in errors} == {(field, error_type)}
    assert all(e["message"] for e in errors)


def test_a_multifamily_property_type_of_a_non_residential_building_is_scored(client: TestClient) -> None:
    # Three buildings of the City's training data are like this one: the building type settles it.
    body = {**EXAMPLE_BUILDING, "BuildingType": "Campus", "PrimaryPropertyType": "Low-Rise Multifamily"}
    assert _predict(client, body)["prediction"] > 0


@pytest.mark.parametrize("required", ["PrimaryPropertyType", "YearBuilt", "PropertyGFATotal"])
def test_a_missing_required_field_is_named(client: TestClient, required: str) -> None:
    body = {k: v for k, v in EXAMPLE_BUILDING.items() if k != required}
    response = client.post("/predict", json=body)
    assert response.status_code == 422
    assert response.json()["detail"] == [{"field": required, "message": "Field required", "type": "missing"}]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused_and_never_echoed(client: TestClient, literal: str) -> None:
    # Python's JSON parser accepts these literals; JSON itself has no NaN, so the answer must not contain one.
    raw = f'{{"PrimaryPropertyType": "Hotel", "YearBuilt": 1927, "PropertyGFATotal": {literal}}}'
    response = client.post("/predict", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "NaN" not in response.text and "Infinity" not in response.text
    assert response.json()["detail"][0]["field"] == "PropertyGFATotal"
    assert response.json()["detail"][0]["type"] == "finite_number"


@pytest.mark.parametrize(
    ("raw", "error_type"),
    [("{not json", "json_invalid"), ("[1, 2]", "model_attributes_type"), ('"Hotel"', "model_attributes_type")],
)
def test_a_body_that_is_not_one_building_is_refused(client: TestClient, raw: str, error_type: str) -> None:
    response = client.post("/predict", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == error_type


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/json", None], ids=["form", "text-json", "none"]
)
def test_a_json_body_sent_under_another_content_type_is_told_to_say_json(
    client: TestClient, content_type: str | None
) -> None:
    """What ``curl -d`` does without ``-H 'Content-Type: application/json'``: FastAPI reads no JSON at all."""
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/predict", content=json.dumps(EXAMPLE_BUILDING), headers=headers)
    assert response.status_code == 422
    ((error),) = response.json()["detail"]
    assert (error["field"], error["type"]) == (None, "content_type")
    assert error["message"].startswith("send the body as JSON with Content-Type: application/json (got ")


def test_a_batch_with_bad_items_answers_the_good_ones(client: TestClient) -> None:
    good = EXAMPLE_BUILDING
    unseen = {**EXAMPLE_BUILDING, "Neighborhood": "ATLANTIS"}
    batch = [good, {**good, "PropertyGFATotal": -5}, "not a building", unseen, {**good, "Colour": "red"}]
    response = client.post("/predict/batch", json={"buildings": batch})
    assert response.status_code == 200, response.text
    body = response.json()
    items = body["items"]
    assert [item["index"] for item in items] == [0, 1, 2, 3, 4]
    assert (body["n_predicted"], body["n_failed"]) == (2, 3)
    single = _predict(client, good)
    assert items[0]["prediction"] == single
    assert items[0]["errors"] == []
    assert items[1]["prediction"] is None
    assert [(e["field"], e["type"]) for e in items[1]["errors"]] == [("PropertyGFATotal", "greater_than")]
    assert items[2]["prediction"] is None
    assert items[2]["errors"][0]["type"] == "model_type"
    assert items[3]["prediction"] == _predict(client, unseen)
    assert "Neighborhood 'ATLANTIS'" in items[3]["prediction"]["warnings"][0]
    assert [(e["field"], e["type"]) for e in items[4]["errors"]] == [("Colour", "extra_forbidden")]
    assert body["model_version"] == single["model_version"]


def test_an_id_beyond_float64_fails_its_own_item_only(client: TestClient) -> None:
    batch = [EXAMPLE_BUILDING, {**EXAMPLE_BUILDING, "OSEBuildingID": 10**400}]
    response = client.post("/predict/batch", json={"buildings": batch})
    assert response.status_code == 200, response.text
    first, second = response.json()["items"]
    assert first["prediction"] == _predict(client, EXAMPLE_BUILDING)
    assert [(e["field"], e["type"]) for e in second["errors"]] == [("OSEBuildingID", "less_than_equal")]


def test_a_batch_of_only_bad_items_is_still_answered(client: TestClient) -> None:
    response = client.post("/predict/batch", json={"buildings": [{"YearBuilt": 1927}]})
    assert response.status_code == 200
    assert response.json()["n_failed"] == 1
    assert {e["field"] for e in response.json()["items"][0]["errors"]} == {"PrimaryPropertyType", "PropertyGFATotal"}


@pytest.fixture(scope="module")
def faulty_client(trained: TrainingResult, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The session's model with a planted fault: it raises on any building built in ``FAULTY_YEAR``."""
    model = save_with_fault(trained.model_path, tmp_path_factory.mktemp("faulty"))
    with TestClient(create_app(api_settings(model))) as client:
        yield client


def test_a_valid_building_the_model_fails_on_gets_a_500_that_keeps_the_cause_in_the_log(
    faulty_client: TestClient, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    assert EXAMPLE_BUILDING["YearBuilt"] != FAULTY_YEAR
    doomed = {**EXAMPLE_BUILDING, "YearBuilt": FAULTY_YEAR}
    assert client.post("/predict", json=doomed).status_code == 200  # a valid building for the intact model

    for route in ("/predict", "/predict/explain"):
        response = faulty_client.post(route, json=doomed)
        # Not a 422: nothing the client could change in a valid building would help.
        assert response.status_code == 500, response.text
        assert [(e["field"], e["type"]) for e in response.json()["detail"]] == [(None, "model_error")]
        assert INJECTED_MESSAGE not in response.text
    assert INJECTED_MESSAGE in caplog.text
    assert faulty_client.post("/predict", json=EXAMPLE_BUILDING).json() | {"model_version": None} == _predict(
        client, EXAMPLE_BUILDING
    ) | {"model_version": None}


def test_a_batch_answers_around_a_building_the_model_fails_on(faulty_client: TestClient, client: TestClient) -> None:
    doomed, invalid = {**EXAMPLE_BUILDING, "YearBuilt": FAULTY_YEAR}, {**EXAMPLE_BUILDING, "NumberofFloors": -1}
    batch = [EXAMPLE_BUILDING, doomed, invalid]
    response = faulty_client.post("/predict/batch", json={"buildings": batch})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["n_predicted"], body["n_failed"]) == (1, 2)
    good_item, doomed_item, invalid_item = body["items"]
    assert good_item["prediction"]["prediction"] == _predict(client, EXAMPLE_BUILDING)["prediction"]
    assert [(e["field"], e["type"]) for e in doomed_item["errors"]] == [(None, "model_error")]
    assert INJECTED_MESSAGE not in response.text
    assert [e["field"] for e in invalid_item["errors"]] == ["NumberofFloors"]


@pytest.fixture(scope="module")
def capped_client(trained: TrainingResult) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings(trained.model_path, max_batch=3))) as client:
        yield client


def test_a_batch_over_the_configured_length_is_refused_with_422(capped_client: TestClient) -> None:
    assert capped_client.post("/predict/batch", json={"buildings": [EXAMPLE_BUILDING] * 3}).status_code == 200
    response = capped_client.post("/predict/batch", json={"buildings": [EXAMPLE_BUILDING] * 4})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["field"] == "buildings"
    assert error["type"] == "too_long"
    assert "at most 3" in error["message"]


@pytest.mark.parametrize(
    ("body", "field", "error_type"),
    [
        ({"buildings": []}, "buildings", "too_short"),
        ({"buildings": EXAMPLE_BUILDING}, "buildings", "list_type"),
        ({}, "buildings", "missing"),
        ({"buildings": [EXAMPLE_BUILDING], "extra": 1}, "extra", "extra_forbidden"),
    ],
)
def test_a_malformed_batch_is_refused_with_422(
    client: TestClient, body: dict[str, Any], field: str, error_type: str
) -> None:
    response = client.post("/predict/batch", json=body)
    assert response.status_code == 422
    assert [(e["field"], e["type"]) for e in response.json()["detail"]] == [(field, error_type)]


@pytest.mark.parametrize("total", [5e-324, 1.0, 1000])
def test_a_total_floor_area_no_building_has_is_refused_naming_the_field(client: TestClient, total: float) -> None:
    for route in ("/predict", "/predict/explain"):
        response = client.post(route, json={**EXAMPLE_BUILDING, "PropertyGFATotal": total})
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == [
            {"field": "PropertyGFATotal", "message": "Input should be greater than 1000", "type": "greater_than"}
        ]


def test_a_use_area_far_beyond_the_total_is_refused_naming_the_field(client: TestClient, loaded: LoadedModel) -> None:
    from building_energy.models.predict import ERROR_COLUMN, predict_frame  # the one test here scoring without HTTP

    shed = {
        **EXAMPLE_BUILDING,
        "PropertyGFATotal": 5000,
        "PropertyGFABuilding(s)": 5000,
        "LargestPropertyUseTypeGFA": 72000,
    }
    response = client.post("/predict", json=shed)
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == [
        {
            "field": "LargestPropertyUseTypeGFA",
            "message": "Input should be at most 10 times PropertyGFATotal",
            "type": "use_area_over_total",
        }
    ]
    # The bound itself is a building; a batch refuses the other building alone.
    at_bound = {**shed, "LargestPropertyUseTypeGFA": 50000}
    assert _predict(client, at_bound)["prediction"] > 0
    third = {**at_bound, "ThirdLargestPropertyUseTypeGFA": 50001}
    batch = client.post("/predict/batch", json={"buildings": [at_bound, third]}).json()
    assert (batch["n_predicted"], batch["n_failed"]) == (1, 1)
    assert [(e["field"], e["type"]) for e in batch["items"][1]["errors"]] == [
        ("ThirdLargestPropertyUseTypeGFA", "use_area_over_total")
    ]
    # A CSV, the dashboard and the CLI score through predict_frame: the same building is refused there too.
    scored = predict_frame(loaded, pd.DataFrame([shed, at_bound]), allow_absent_columns=True)
    assert scored[ERROR_COLUMN].tolist() == [
        "LargestPropertyUseTypeGFA fails less_than_or_equal_to(10 x PropertyGFATotal) (value 72000.0)",
        "",
    ]
