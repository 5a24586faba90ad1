"""GET /health: readiness with the served model's identity."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from building_energy.models.train import TrainingResult

pytestmark = pytest.mark.slow


def test_health_names_the_model_and_its_training_data(client: TestClient, trained: TrainingResult) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["model_loaded"] is True
    assert body["model_source"] == str(trained.model_path)
    recorded = (trained.model_path.parent / "model.joblib.sha256").read_text().split()[0]
    assert body["model_sha256"] == recorded
    assert body["model_version"] == f"sha256:{recorded[:12]}"
    assert body["data_sha256"] == trained.metadata["data_sha256"]
    assert body["reason"] is None
