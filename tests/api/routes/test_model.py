"""GET /model: the served model's metadata and recorded metrics."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from building_energy.models.train import TrainingResult

pytestmark = pytest.mark.slow


def test_model_reports_the_metrics_recorded_at_training(client: TestClient, trained: TrainingResult) -> None:
    response = client.get("/model")
    assert response.status_code == 200
    body = response.json()
    assert body["source"] == str(trained.model_path)
    assert body["target"] == "energy"
    assert body["unit"] == "kBtu"
    assert body["profile"] == "fast"
    assert body["n_train"] == trained.metadata["n_train"]
    assert body["n_test"] == trained.metadata["n_test"]
    assert body["data_sha256"] == trained.metadata["data_sha256"]
    assert body["git_commit"] == trained.metadata["git_commit"]
    assert body["input_features"] == trained.metadata["input_features"]
    for key in ("mape", "r2", "rmse", "mae"):
        assert body["metrics"]["test"][key] == pytest.approx(trained.metrics["test"][key])
    assert (
        body["metrics"]["test"]["mape_by_property_type"].keys()
        == trained.metrics["test"]["mape_by_property_type"].keys()
    )
    assert body["versions"]["scikit-learn"] == trained.metadata["versions"]["scikit-learn"]
    assert body["registry"] is None
