"""The served model's metadata and the metrics recorded when it was trained."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, status

from building_energy.api.deps import ModelDep
from building_energy.api.schemas import ErrorOut, ModelOut

router = APIRouter(tags=["model"])


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (JSON has neither NaN nor infinity)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@router.get("/model", response_model=ModelOut, responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"model": ErrorOut}})
def model_info(model: ModelDep) -> ModelOut:
    """Where the model comes from, how it was trained, and its train/test/CV metrics as recorded."""
    metadata = model.metadata
    return ModelOut(
        source=model.loaded.source,
        version=model.version,
        target=model.target,
        unit=model.unit,
        model_sha256=metadata.get("model_sha256"),
        data_sha256=metadata.get("data_sha256"),
        git_commit=metadata.get("git_commit"),
        trained_at=metadata.get("trained_at"),
        profile=metadata.get("profile"),
        use_energy_star=metadata.get("use_energy_star"),
        n_train=metadata.get("n_train"),
        n_test=metadata.get("n_test"),
        interval_level=model.interval_level,
        input_features=[str(f) for f in metadata.get("input_features", [])],
        metrics=json_safe(metadata.get("metrics", {})),
        versions={str(k): str(v) for k, v in metadata.get("versions", {}).items()},
        registry=json_safe(metadata.get("registry")),
    )
