"""Real MLflow stores (SQLite in a temporary folder) holding the session's real `fast` model."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from building_energy.config import get_config
from building_energy.models.compare_pipelines import recorded_split
from building_energy.models.train import TARGET_COLUMNS, TrainingResult, prepare_xy
from building_energy.tracking.record import TrainingRecord, record_training
from building_energy.tracking.runs import TrackedRun, track_training


def sqlite_uri(folder: Path) -> str:
    return f"sqlite:///{folder / 'mlflow.db'}"


def copy_of(trained: TrainingResult, folder: Path) -> TrainingResult:
    """``trained`` with its artifacts copied to ``folder``: tracking writes reports and plots beside the model."""
    shutil.copytree(trained.model_path.parent, folder, dirs_exist_ok=True)
    return replace(trained, model_path=folder / trained.model_path.name)


@pytest.fixture(scope="session")
def test_inputs(trained: TrainingResult, data_path: Path) -> pd.DataFrame:
    """The raw test rows of the session model (signature and input example of a logged model)."""
    _, test_rows = recorded_split(trained.metadata, data_path, get_config())
    return prepare_xy(test_rows, TARGET_COLUMNS[trained.metadata["target"]])[0]


@pytest.fixture(scope="session")
def recorded(trained: TrainingResult, tmp_path_factory: pytest.TempPathFactory) -> TrainingRecord:
    """What `building-energy train` does after training, for the session model, into a fresh store."""
    folder = tmp_path_factory.mktemp("recorded")
    record = record_training(copy_of(trained, folder / "artifacts"), tracking_uri=sqlite_uri(folder / "store"))
    assert record.problems == []
    return record


@pytest.fixture
def champion_store(trained: TrainingResult, test_inputs: pd.DataFrame, tmp_path: Path) -> TrackedRun:
    """A store of this test's own whose first (and champion) version is the session model."""
    return track_training(
        copy_of(trained, tmp_path / "champion"), test_inputs, tracking_uri=sqlite_uri(tmp_path / "store")
    )
