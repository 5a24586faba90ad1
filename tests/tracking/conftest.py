"""Real MLflow stores (SQLite in a temporary folder) holding real models: the shipped `full` one, `fast` ones."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from building_energy.config import get_config
from building_energy.models.compare_pipelines import recorded_split
from building_energy.models.train import TARGET_COLUMNS, TrainingResult, prepare_xy, train_model
from building_energy.tracking.record import TrainingRecord, record_training
from tests.tracking.helpers import sqlite_uri


@pytest.fixture(scope="session")
def held_out_inputs(trained: TrainingResult, data_path: Path) -> pd.DataFrame:
    """The raw test rows of the session model (signature and input example of a logged model)."""
    _, test_rows = recorded_split(trained.metadata, data_path, get_config())
    return prepare_xy(test_rows, TARGET_COLUMNS[trained.metadata["target"]])[0]


@pytest.fixture(scope="session")
def recorded_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``artifacts/`` (the shipped model, its reports and plots) and ``store/`` (its MLflow store)."""
    return tmp_path_factory.mktemp("recorded")


@pytest.fixture(scope="session")
def shipped(data_path: Path, recorded_folder: Path) -> TrainingResult:
    """The model `make train` ships (profile `full`): the one the comparison with the notebook is about.

    The session's `fast` model is a cheaper stand-in elsewhere; against the notebook it would measure the
    stand-in, not the package.
    """
    return train_model(data_path=data_path, output_dir=recorded_folder / "artifacts", profile="full")


@pytest.fixture(scope="session")
def recorded(shipped: TrainingResult, recorded_folder: Path) -> TrainingRecord:
    """What `building-energy train` does after training, for the shipped model, into a fresh store."""
    record = record_training(shipped, tracking_uri=sqlite_uri(recorded_folder / "store"))
    assert record.problems == []
    return record
