"""A fault injected into a real trained model, for the paths that must survive a model failing on valid input.

No valid building makes the project's model raise (the hostile-input tests check that), so the code that
isolates such a failure can only be exercised by planting one: a pipeline step that raises on one
``YearBuilt``, inserted at the head of the real fitted pipeline and saved as a real, checksummed artifact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from building_energy.models.artifacts import load_artifact, save_artifacts

FAULTY_YEAR = 1913
INJECTED_MESSAGE = "injected fault"


class RaiseOnYear(TransformerMixin, BaseEstimator):
    """Passes records through unchanged, and raises ``error`` on any batch holding a building of ``year``."""

    def __init__(self, year: int = FAULTY_YEAR, error: type[Exception] = ValueError) -> None:
        self.year = year
        self.error = error

    def fit(self, X: pd.DataFrame, y: Any = None) -> Self:
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        if (pd.to_numeric(X["YearBuilt"], errors="coerce") == self.year).any():
            raise self.error(f"{INJECTED_MESSAGE} (YearBuilt {self.year})")
        return X


def save_with_fault(
    model_path: Path, output_dir: Path, year: int = FAULTY_YEAR, error: type[Exception] = ValueError
) -> Path:
    """A copy of the model at ``model_path``, with ``RaiseOnYear(year, error)`` first in its pipeline, saved in
    ``output_dir``; returns the new model file."""
    artifact = load_artifact(model_path)
    artifact["metadata"].pop("model_sha256", None)  # set by the load; the copy gets its own
    pipeline = artifact["model"].regressor_
    pipeline.steps.insert(0, ("fault", RaiseOnYear(year, error)))
    return save_artifacts(output_dir, artifact, metrics={})
