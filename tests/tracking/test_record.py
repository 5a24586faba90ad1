"""What follows a training never touches files that belong to another training."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from building_energy.config import get_config
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


@pytest.mark.integration
def test_a_model_whose_comparison_failed_is_tracked_but_not_promoted(trained: TrainingResult, tmp_path: Path) -> None:
    config = get_config()
    # A prototype LightGBM refuses to fit (num_leaves must exceed 1): the comparison fails for real.
    prototype = config.compare.prototype.model_copy(update={"num_leaves": 1})
    broken = config.model_copy(update={"compare": config.compare.model_copy(update={"prototype": prototype})})
    uri = sqlite_uri(tmp_path / "store")
    record = record_training(copy_of(trained, tmp_path / "artifacts"), config=broken, tracking_uri=uri)

    assert record.comparison is None
    assert any(problem.startswith("comparison failed: LightGBMError") for problem in record.problems)
    assert not any("MLflow tracking" in problem for problem in record.problems)
    assert record.tracked is not None and not record.tracked.decision.promote
    reason = record.tracked.decision.reason
    assert reason.startswith("reproducibility unknown: the comparison with the notebook prototype did not run")
    assert f"version {record.tracked.model_version}: challenger ({reason})" in "\n".join(record.summary())
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    # The store's first version, and still no champion.
    with pytest.raises(MlflowException, match="alias"):
        client.get_model_version_by_alias(config.tracking.registered_model, config.tracking.champion_alias)
    version = client.get_model_version(config.tracking.registered_model, record.tracked.model_version)
    assert version.tags["status"] == "challenger" and version.tags["promotion_reason"] == reason
    run = client.get_run(record.tracked.run_id)
    assert run.data.tags["reproducible"] == "unknown" and run.data.tags["status"] == "challenger"
    assert "prototype_mae_ratio" not in run.data.metrics
