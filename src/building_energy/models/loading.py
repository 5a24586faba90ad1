"""Resolve where a model comes from: an artifact path or a ``models:/`` registry URI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from building_energy.models.artifacts import load_artifact

MODELS_URI_PREFIX = "models:/"


def is_models_uri(source: str | Path) -> TypeGuard[str]:
    """A registry URI (resolved through MLflow) rather than a model file's path."""
    return isinstance(source, str) and source.startswith(MODELS_URI_PREFIX)


@dataclass
class LoadedModel:
    model: Any
    metadata: dict[str, Any]
    source: str

    def predict(self, X: Any) -> Any:
        return self.model.predict(X)

    def explain(self, X: Any, top_k: int = 5) -> list[list[dict[str, float | str | bool]]]:
        """Per row, the ``top_k`` input fields that move the estimate most (SHAP, as factors)."""
        from building_energy.models.explain import explain

        explanation = explain(self.model, X)
        return [explanation.top(row, top_k) for row in range(len(X))]


def load_model(source: str | Path) -> LoadedModel:
    """Load a model from an artifact path or a registry URI (``models:/building-energy@champion``,
    ``models:/building-energy/3``); either way the ``model.joblib`` is checksum verified before unpickling."""
    if is_models_uri(source):
        # Imported here: MLflow is slow to import and only registry URIs need it.
        from building_energy.tracking.registry import load_registered_model

        return load_registered_model(source)
    artifact = load_artifact(Path(source))
    return LoadedModel(artifact["model"], artifact["metadata"], str(source))
