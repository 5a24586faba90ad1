"""Shared fixtures: the real City data and one real `fast` model, trained once per test session."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from building_energy.config import get_config
from building_energy.data.io import read_buildings_csv
from building_energy.models.train import TrainingResult, train_model
from building_energy.preprocessing.preprocessor import preprocess_data

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_NAME = "2016_Building_Energy_Benchmarking.csv"


@pytest.fixture(scope="session", autouse=True)
def _own_mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test writes the project's mlflow.db: by default MLflow tracks into a store of the session's own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db")
        yield


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder any user may enter and write, for tests that act as ``nobody`` (root ignores permissions, and
    pytest's own temporary folders are root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="building-energy-shared-"))
    folder.chmod(0o777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def data_path() -> Path:
    """The City's CSV as setup placed it (data/raw), else the shared archive."""
    for candidate in (REPO_ROOT / get_config().paths.data, REPO_ROOT.parent / "shared" / "data" / DATA_NAME):
        if candidate.is_file():
            return candidate
    pytest.fail(f"{DATA_NAME} not found: run `make data` first")


@pytest.fixture(scope="session")
def raw_buildings(data_path: Path) -> pd.DataFrame:
    frame, problems = read_buildings_csv(data_path)
    assert problems == {}
    return frame


@pytest.fixture(scope="session")
def clean_buildings(data_path: Path) -> pd.DataFrame:
    return preprocess_data(data_path)


@pytest.fixture(scope="session")
def train_fast(data_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., TrainingResult]:
    """Train a `fast` model into a fresh directory."""

    def _train(**kwargs: object) -> TrainingResult:
        output = tmp_path_factory.mktemp("artifacts")
        return train_model(data_path=data_path, output_dir=output, profile="fast", **kwargs)  # type: ignore[arg-type]

    return _train


@pytest.fixture(scope="session")
def trained(train_fast: Callable[..., TrainingResult]) -> TrainingResult:
    """One real `fast` model for every test that needs a trained model."""
    return train_fast()


@pytest.fixture(scope="session")
def trained_without_score(train_fast: Callable[..., TrainingResult]) -> TrainingResult:
    """One real `fast` model trained without the ENERGY STAR score."""
    return train_fast(use_energy_star=False)


@pytest.fixture(scope="session")
def sample_buildings(clean_buildings: pd.DataFrame) -> pd.DataFrame:
    """100 real buildings, all columns as the City writes them."""
    return clean_buildings.sample(100, random_state=0).reset_index(drop=True)
