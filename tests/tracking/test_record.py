"""What follows a training never touches files that belong to another training."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from building_energy.models.artifacts import training_lock
from building_energy.models.compare_pipelines import REPORT_JSON
from building_energy.models.train import TrainingResult
from building_energy.tracking.plots import PLOTS_SUBDIR
from building_energy.tracking.record import record_training
from tests.tracking.helpers import TRAINING_FIXTURE_TIMEOUT, copy_of, sqlite_uri

pytestmark = [pytest.mark.slow, TRAINING_FIXTURE_TIMEOUT]


def _untouched(folder: Path, store: Path) -> bool:
    return not (folder / REPORT_JSON).exists() and not (folder / PLOTS_SUBDIR).exists() and not store.exists()


def test_a_training_in_progress_in_the_directory_is_left_alone(trained: TrainingResult, tmp_path: Path) -> None:
    result = copy_of(trained, tmp_path / "artifacts")
    with training_lock(result.model_path.parent):
        record = record_training(result, tracking_uri=sqlite_uri(tmp_path / "store"))
    assert record.tracked is None
    assert record.comparison is None
    assert any("another training is writing" in problem for problem in record.problems)
    assert _untouched(result.model_path.parent, tmp_path / "store")


def test_a_model_replaced_since_training_is_not_recorded_as_this_one(trained: TrainingResult, tmp_path: Path) -> None:
    result = copy_of(trained, tmp_path / "artifacts")
    earlier = replace(result, metadata={**result.metadata, "trained_at": "2016-01-01T00:00:00+00:00"})
    record = record_training(earlier, tracking_uri=sqlite_uri(tmp_path / "store"))
    assert record.tracked is None
    assert any("no longer this training's model" in problem for problem in record.problems)
    assert _untouched(result.model_path.parent, tmp_path / "store")
