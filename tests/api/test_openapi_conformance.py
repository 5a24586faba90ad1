"""Schemathesis against the API's own OpenAPI schema, in process (ASGI): no 5xx, every response as documented."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection

from building_energy.api import create_app
from building_energy.data.schema import MAX_USE_AREA_TO_TOTAL, PART_AREAS, TOTAL_AREA
from building_energy.models.train import TrainingResult
from building_energy.preprocessing.preprocessor import is_residential_building_type, is_residential_property_type
from tests.api.conftest import api_settings

pytestmark = pytest.mark.slow

ADMIN_TOKEN = SecretStr("schemathesis-token")
# Per operation and generation mode. Fixed derivation so that CI replays the same requests.
EXAMPLES = 30
# Read from a schema that does not depend on the model (the app is built, not started). Schema-violating
# requests only exist for an operation with a body: the others have nothing to get wrong.
_PATHS = create_app(api_settings("not-loaded", admin_token=ADMIN_TOKEN)).openapi()["paths"]
OPERATIONS = [
    pytest.param(method.upper(), path, mode, id=f"{method.upper()} {path} {mode.value}")
    for path, methods in _PATHS.items()
    for method, spec in methods.items()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or "requestBody" in spec
]
# A batch answers 200 with per-building errors by design: one bad building must not fail the others, so a
# schema-violating building inside a valid batch is accepted (and reported in its item), not refused.
PER_ITEM_ERRORS = {"/predict/batch": [negative_data_rejection]}


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def within_use_area_rule(case: schemathesis.Case) -> schemathesis.Case:
    """No JSON Schema keyword relates two fields, so a schema-valid building may break the one rule that does
    (each part of the floor area, building(s), parking or a use, at most ``MAX_USE_AREA_TO_TOTAL`` times the
    total, documented on those fields and tested on its own): a generated valid building is brought within it
    instead of refused by it."""
    body = case.body
    if isinstance(body, dict) and _number(body.get(TOTAL_AREA)):
        for field in PART_AREAS:
            if _number(body.get(field)):
                body[field] = min(body[field], body[TOTAL_AREA] * MAX_USE_AREA_TO_TOTAL)
    return case


def within_scope(case: schemathesis.Case) -> schemathesis.Case:
    """The residential rule reads a type's letters, whatever their spelling, which no JSON Schema pattern can
    (documented on both fields, tested on its own): a generated valid building of a residential type is given
    a non-residential one instead of refused. Hypothesis draws such words from the rule's own source."""
    body = case.body
    if isinstance(body, dict):
        for field, is_residential, replacement in (
            ("BuildingType", is_residential_building_type, "NonResidential"),
            ("PrimaryPropertyType", is_residential_property_type, "Hotel"),
        ):
            if isinstance(body.get(field), str) and is_residential(body[field]):
                body[field] = replacement
    return case


@pytest.fixture(scope="module")
def api_schema(trained: TrainingResult) -> Iterator[schemathesis.BaseSchema]:
    """The real app serving the session model, admin route on, started (its lifespan loaded the model)."""
    app: FastAPI = create_app(api_settings(trained.model_path, admin_token=ADMIN_TOKEN))
    with TestClient(app):
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.parametrize(("method", "path", "mode"), OPERATIONS)
def test_every_operation_answers_as_documented(
    api_schema: schemathesis.BaseSchema, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]
    excluded = PER_ITEM_ERRORS.get(path, [])

    strategy = operation.as_strategy(generation_mode=mode)
    if mode is GenerationMode.POSITIVE:
        strategy = strategy.map(within_use_area_rule).map(within_scope)

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )
    def conforms(case: schemathesis.Case) -> None:
        case.call_and_validate(excluded_checks=excluded)

    conforms()
