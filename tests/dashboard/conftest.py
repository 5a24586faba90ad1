"""The dashboard under test: the real app file, pointed at the session's real `fast` model and the City's data."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from building_energy.config import get_config
from building_energy.models.loading import LoadedModel, load_model
from building_energy.models.train import TrainingResult
from tests.dashboard.helpers import configure


@pytest.fixture
def dashboard_env(
    trained: TrainingResult, data_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TrainingResult]:
    """The app's configuration: the session model and the City's CSV (config paths.data may not exist here)."""
    configure(monkeypatch, BE_DASHBOARD__MODEL_SOURCE=str(trained.model_path), BE_PATHS__DATA=str(data_path))
    yield trained
    get_config.cache_clear()  # monkeypatch restores the environment next; the cache must not outlive it


@pytest.fixture
def app_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set ``BE_*`` variables for the app; the configuration is re-read after the test."""
    yield functools.partial(configure, monkeypatch)
    get_config.cache_clear()


@pytest.fixture(scope="session")
def loaded(trained: TrainingResult) -> LoadedModel:
    """The session model through the one loader the CLI and the dashboard use."""
    return load_model(trained.model_path)
