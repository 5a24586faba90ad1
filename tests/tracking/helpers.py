"""Helpers shared by the tracking tests."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from building_energy.models.train import TrainingResult

# Whichever test first uses `recorded` pays for the session model's comparison (one refit of the stack) and
# its MLflow run on top of the test's own work; on a shared 2-core machine that can pass the default limit.
RECORDED_TIMEOUT = pytest.mark.timeout(1800)


def sqlite_uri(folder: Path) -> str:
    """A real MLflow store of the test's own: a SQLite file (artifacts land beside it)."""
    return f"sqlite:///{folder / 'mlflow.db'}"


def copy_of(trained: TrainingResult, folder: Path) -> TrainingResult:
    """``trained`` with its artifacts copied to ``folder``: tracking writes reports and plots beside the model."""
    shutil.copytree(trained.model_path.parent, folder, dirs_exist_ok=True)
    return replace(trained, model_path=folder / trained.model_path.name)
