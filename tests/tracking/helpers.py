"""Helpers shared by the tracking tests."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from building_energy.models.train import TrainingResult


def sqlite_uri(folder: Path) -> str:
    """A real MLflow store of the test's own: a SQLite file (artifacts land beside it)."""
    return f"sqlite:///{folder / 'mlflow.db'}"


def copy_of(trained: TrainingResult, folder: Path) -> TrainingResult:
    """``trained`` with its artifacts copied to ``folder``: tracking writes reports and plots beside the model."""
    shutil.copytree(trained.model_path.parent, folder, dirs_exist_ok=True)
    return replace(trained, model_path=folder / trained.model_path.name)
