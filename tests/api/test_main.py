"""The app factory and its lifespan: one model loaded at start, 503 without one, no start with a bad one."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from building_energy.api import create_app
from building_energy.api.main import model_source
from building_energy.api.schemas import EXAMPLE_BUILDING
from building_energy.config import get_config
from building_energy.models.artifacts import CHECKSUM_FILE, MODEL_FILE, ModelIntegrityError
from building_energy.models.train import TrainingResult
from tests.api.conftest import api_settings

pytestmark = pytest.mark.slow


def test_without_a_model_the_app_starts_and_every_model_route_answers_503(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / MODEL_FILE
    with TestClient(create_app(api_settings(missing))) as client:
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["model_loaded"] is False
        assert health.json()["status"] == "unavailable"
        assert str(missing) in health.json()["reason"]
        for method, path, body in (
            ("POST", "/predict", EXAMPLE_BUILDING),
            ("POST", "/predict/batch", {"buildings": [EXAMPLE_BUILDING]}),
            ("GET", "/model", None),
        ):
            response = client.request(method, path, json=body)
            assert response.status_code == 503, path
            assert "no model is served" in response.json()["detail"]
            assert str(missing) in response.json()["detail"]


def test_a_tampered_model_file_stops_the_start(tampered_model: Path) -> None:
    app = create_app(api_settings(tampered_model))
    with pytest.raises(ModelIntegrityError, match="does not match the recorded"), TestClient(app):
        pass
    assert app.state.serving.model is None


def test_a_model_without_its_recorded_checksum_stops_the_start(trained: TrainingResult, tmp_path: Path) -> None:
    folder = tmp_path / "no-checksum"
    folder.mkdir()
    (folder / MODEL_FILE).write_bytes(trained.model_path.read_bytes())
    assert not (folder / CHECKSUM_FILE).exists()
    with (
        pytest.raises(ModelIntegrityError, match="no recorded SHA-256"),
        TestClient(create_app(api_settings(folder / MODEL_FILE))),
    ):
        pass


def test_the_default_model_is_the_one_make_train_writes() -> None:
    config = get_config()
    assert config.api.model_source is None
    assert model_source(config) == str(config.paths.artifacts / MODEL_FILE)


def test_the_docs_examples_return_200_as_they_are(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    single = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    batch = spec["paths"]["/predict/batch"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert single and batch
    for example in single.values():
        response = client.post("/predict", json=example["value"])
        assert response.status_code == 200, response.text
        assert response.json()["prediction"] > 0
    for example in batch.values():
        response = client.post("/predict/batch", json=example["value"])
        assert response.status_code == 200, response.text
    schema_example = spec["components"]["schemas"]["BuildingIn"]["examples"][0]
    assert client.post("/predict", json=schema_example).status_code == 200
