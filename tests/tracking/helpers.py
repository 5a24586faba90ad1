"""Helpers shared by the tracking tests."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from building_energy.models.train import TrainingResult

# Whichever test first uses `recorded` (or `worse_training`) pays for its trainings, the comparison's refit
# and the MLflow runs on top of its own work; on a shared 2-core machine that can pass the default limit.
TRAINING_FIXTURE_TIMEOUT = pytest.mark.timeout(1800)
# What a tracked training writes beside the model, spelled out: the files are the contract, not the constants.
TRAINING_OUTPUTS = frozenset(
    {
        "model.joblib",
        "model.joblib.sha256",
        "best_params.joblib",
        "metrics.json",
        "compare_report.json",
        "compare_report.joblib",
    }
)


def sqlite_uri(folder: Path) -> str:
    """A real MLflow store of the test's own: a SQLite file (artifacts land beside it)."""
    return f"sqlite:///{folder / 'mlflow.db'}"


def copy_of(trained: TrainingResult, folder: Path) -> TrainingResult:
    """``trained`` with its artifacts copied to ``folder``: tracking writes reports and plots beside the model."""
    shutil.copytree(trained.model_path.parent, folder, dirs_exist_ok=True)
    return replace(trained, model_path=folder / trained.model_path.name)
