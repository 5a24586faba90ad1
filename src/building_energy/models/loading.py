"""Resolve where a model comes from: an artifact path today, a registry URI once tracking lands."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from building_energy.models.artifacts import load_artifact


@dataclass
class LoadedModel:
    model: Any
    metadata: dict[str, Any]
    source: str

    def predict(self, X: Any) -> Any:
        return self.model.predict(X)


def load_model(source: str | Path) -> LoadedModel:
    """Load a model from an artifact path (checksum verified)."""
    artifact = load_artifact(Path(source))
    return LoadedModel(artifact["model"], artifact["metadata"], str(source))
