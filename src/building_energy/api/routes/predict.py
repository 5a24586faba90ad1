"""Predictions: one building, or a batch where every building gets its own answer or its own errors."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import APIRouter, Body, HTTPException, Query, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from building_energy.api.deps import ModelDep, ServingDep, SettingsDep
from building_energy.api.errors import field_errors
from building_energy.api.schemas import (
    EXAMPLE_BUILDING,
    SECOND_EXAMPLE_BUILDING,
    BatchIn,
    BatchItemOut,
    BatchOut,
    BuildingIn,
    ErrorOut,
    ExplanationOut,
    FieldError,
    PredictionOut,
)
from building_energy.api.serving import MODEL_ERROR

router = APIRouter(prefix="/predict", tags=["predict"])

ERRORS: dict[int | str, dict[str, object]] = {
    status.HTTP_413_CONTENT_TOO_LARGE: {"model": ErrorOut, "description": "Body over `api.max_body_bytes`"},
    status.HTTP_422_UNPROCESSABLE_CONTENT: {"model": ErrorOut, "description": "Invalid field(s), named"},
    status.HTTP_500_INTERNAL_SERVER_ERROR: {
        "model": ErrorOut,
        "description": f"The model failed on a valid building (error type `{MODEL_ERROR}`; the server logs why)",
    },
    status.HTTP_503_SERVICE_UNAVAILABLE: {"model": ErrorOut, "description": "No model is served"},
}


OneBuilding = Annotated[
    BuildingIn,
    Body(openapi_examples={"hotel": {"summary": "A downtown hotel (City data)", "value": EXAMPLE_BUILDING}}),
]


def refuse(errors: list[FieldError]) -> HTTPException:
    """A building that could not be scored: 422 with its errors, each naming its field; 500 if the building
    was valid and the model itself failed on it, since no change to the request would help."""
    failed_in_model = any(error.type == MODEL_ERROR for error in errors)
    return HTTPException(
        status_code=status.HTTP_500_INTERNAL_SERVER_ERROR if failed_in_model else status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[error.model_dump(mode="json") for error in errors],
    )


@router.post("", response_model=PredictionOut, responses=ERRORS)
async def predict(
    building: OneBuilding,
    model: ModelDep,
    serving: ServingDep,
) -> PredictionOut:
    """Annual site energy of one building, with its interval, the model version and any warnings."""
    (result,) = await serving.run(model.predict, [building])
    if isinstance(result, PredictionOut):
        return result
    raise refuse(result)


@router.post("/explain", response_model=ExplanationOut, responses=ERRORS)
async def explain(
    building: OneBuilding,
    model: ModelDep,
    serving: ServingDep,
    top: Annotated[int, Query(ge=1, le=12, description="How many drivers to return")] = 5,
) -> ExplanationOut:
    """One building's estimate and the input fields that move it most (SHAP on the fitted pipeline)."""
    result = await serving.run(model.explain, building, top)
    if isinstance(result, ExplanationOut):
        return result
    raise refuse(result)


# A building the model fails on is an item's error in a batch, never the batch's status.
BATCH_ERRORS = {code: spec for code, spec in ERRORS.items() if code != status.HTTP_500_INTERNAL_SERVER_ERROR}


@router.post("/batch", response_model=BatchOut, responses=BATCH_ERRORS)
async def predict_batch(
    batch: Annotated[
        BatchIn,
        Body(
            openapi_examples={
                "two": {
                    "summary": "Two buildings",
                    "value": {"buildings": [EXAMPLE_BUILDING, SECOND_EXAMPLE_BUILDING]},
                },
                "one_bad": {
                    "summary": "One good building, one with a negative floor area",
                    "value": {"buildings": [EXAMPLE_BUILDING, {**SECOND_EXAMPLE_BUILDING, "PropertyGFATotal": -5}]},
                },
            }
        ),
    ],
    model: ModelDep,
    serving: ServingDep,
    settings: SettingsDep,
) -> BatchOut:
    """Up to `api.max_batch` buildings in one call; items come back in request order, each with a
    prediction or the errors that kept it from one (type `model_error` where the model failed on a valid
    building: the others are still answered, so the batch itself succeeds)."""
    limit = settings.api.max_batch
    if len(batch.buildings) > limit:
        raise RequestValidationError(
            [
                {
                    "type": "too_long",
                    "loc": ("body", "buildings"),
                    "msg": f"at most {limit} buildings per request (api.max_batch), got {len(batch.buildings)}",
                }
            ]
        )
    errors: dict[int, list[FieldError]] = {}
    valid: list[tuple[int, BuildingIn]] = []
    # The items were left unvalidated by BatchIn so that each one fails on its own.
    for index, raw in enumerate(cast(list[object], batch.buildings)):
        try:
            valid.append((index, BuildingIn.model_validate(raw)))
        except ValidationError as error:
            errors[index] = field_errors(error.errors())
    results = await serving.run(model.predict, [building for _, building in valid])
    items = [BatchItemOut(index=index, errors=found) for index, found in errors.items()]
    for (index, _), result in zip(valid, results, strict=True):
        if isinstance(result, PredictionOut):
            items.append(BatchItemOut(index=index, prediction=result))
        else:
            items.append(BatchItemOut(index=index, errors=result))
    items.sort(key=lambda item: item.index)
    failed = sum(1 for item in items if item.prediction is None)
    return BatchOut(model_version=model.version, n_predicted=len(items) - failed, n_failed=failed, items=items)
