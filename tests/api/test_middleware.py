"""The body cap (413 before parsing, by declared and by streamed size) and the structured request log."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from building_energy.api import create_app
from building_energy.api.schemas import EXAMPLE_BUILDING
from building_energy.models.train import TrainingResult
from tests.api.conftest import api_settings

pytestmark = pytest.mark.slow

LIMIT = 4096


@pytest.fixture(scope="module")
def small_client(trained: TrainingResult) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings(trained.model_path, max_body_bytes=LIMIT))) as client:
        yield client


def _padded(size: int) -> bytes:
    """A valid building whose JSON is exactly ``size`` bytes (padding is whitespace, which JSON ignores)."""
    body = json.dumps(EXAMPLE_BUILDING).encode()
    assert len(body) <= size
    return body + b" " * (size - len(body))


def test_a_body_at_the_limit_is_accepted(small_client: TestClient) -> None:
    response = small_client.post("/predict", content=_padded(LIMIT), headers={"Content-Type": "application/json"})
    assert response.status_code == 200


def test_a_declared_length_over_the_limit_is_refused_with_413(small_client: TestClient) -> None:
    response = small_client.post("/predict", content=_padded(LIMIT + 1), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert str(LIMIT) in response.json()["detail"]


def test_a_streamed_body_over_the_limit_is_refused_with_413(small_client: TestClient) -> None:
    body = _padded(LIMIT + 1)

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
        yield body[:1000]
        yield body[1000:]

    response = small_client.post("/predict", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_a_streamed_body_under_the_limit_reaches_the_app(small_client: TestClient) -> None:
    body = _padded(LIMIT)

    def chunks() -> Iterator[bytes]:
        yield body[:100]
        yield body[100:]

    response = small_client.post("/predict", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 200


def test_a_malformed_content_length_is_refused(small_client: TestClient) -> None:
    response = small_client.post(
        "/predict",
        content=json.dumps(EXAMPLE_BUILDING),
        headers={"Content-Type": "application/json", "Content-Length": "x1"},
    )
    assert response.status_code == 400


def test_every_request_is_logged_as_one_json_line(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="building_energy.api.access")
    client.post("/predict", json=EXAMPLE_BUILDING)
    client.post("/predict", json={"PrimaryPropertyType": "Hotel"})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "building_energy.api.access"]
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [
        ("POST", "/predict", 200),
        ("POST", "/predict", 422),
    ]
    version = client.get("/health").json()["model_version"]
    for line in lines:
        assert line["event"] == "request"
        assert line["model_version"] == version
        assert line["latency_ms"] > 0
