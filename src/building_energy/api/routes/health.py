"""Liveness and readiness: is a model served, which one, trained on which data."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from building_energy.api.deps import ServingDep
from building_energy.api.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthOut,
    responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"model": HealthOut, "description": "No model is served"}},
)
def health(serving: ServingDep) -> HealthOut | JSONResponse:
    """200 with the served model's version and checksums; 503 with the reason while there is none."""
    if serving.model is None:
        body = HealthOut(status="unavailable", model_loaded=False, model_source=serving.source, reason=serving.reason)
        return JSONResponse(body.model_dump(mode="json"), status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    metadata = serving.model.metadata
    return HealthOut(
        status="ok",
        model_loaded=True,
        model_source=serving.source,
        model_version=serving.model.version,
        model_sha256=metadata.get("model_sha256"),
        data_sha256=metadata.get("data_sha256"),
    )
