"""Real MLflow stores (SQLite in a temporary folder) holding the session's real `fast` model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from building_energy.config import get_config
from building_energy.models.compare_pipelines import recorded_split
from building_energy.models.train import TARGET_COLUMNS, TrainingResult, prepare_xy
from building_energy.tracking.record import TrainingRecord, record_training
from tests.tracking.helpers import copy_of, sqlite_uri


@pytest.fixture(scope="session")
def held_out_inputs(trained: TrainingResult, data_path: Path) -> pd.DataFrame:
    """The raw test rows of the session model (signature and input example of a logged model)."""
    _, test_rows = recorded_split(trained.metadata, data_path, get_config())
    return prepare_xy(test_rows, TARGET_COLUMNS[trained.metadata["target"]])[0]


@pytest.fixture(scope="session")
def recorded_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``artifacts/`` (a copy of the session model's, plus reports and plots) and ``store/`` (MLflow)."""
    return tmp_path_factory.mktemp("recorded")


@pytest.fixture(scope="session")
def recorded(trained: TrainingResult, recorded_folder: Path) -> TrainingRecord:
    """What `building-energy train` does after training, for the session model, into a fresh store."""
    artifacts, store = recorded_folder / "artifacts", recorded_folder / "store"
    record = record_training(copy_of(trained, artifacts), tracking_uri=sqlite_uri(store))
    assert record.problems == []
    return record
