"""Dependencies of the routes: the settings, the serving state and the model (503 when there is none)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from building_energy.api.serving import ServedModel, ServingState
from building_energy.config import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_serving(request: Request) -> ServingState:
    serving: ServingState = request.app.state.serving
    return serving


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServingDep = Annotated[ServingState, Depends(get_serving)]


def require_model(serving: ServingDep) -> ServedModel:
    """The served model; without one the request gets 503 and the reason."""
    if serving.model is None:
        raise HTTPException(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"no model is served: {serving.reason}"
        )
    return serving.model


ModelDep = Annotated[ServedModel, Depends(require_model)]
