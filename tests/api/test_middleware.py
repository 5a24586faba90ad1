"""The body cap (413 before parsing, by declared and by streamed size) and the structured request log."""

from __future__ import annotations

import json
import logging
import time
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
    # A small valid body under a declared length over the cap: only the header check can refuse it (a body of
    # the declared size would also be refused by the count of what is read).
    body = _padded(LIMIT // 2)
    headers = {"Content-Type": "application/json", "Content-Length": str(LIMIT + 1)}
    response = small_client.post("/predict", content=body, headers=headers)
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
    round_trips_ms = []
    for body in (EXAMPLE_BUILDING, {"PrimaryPropertyType": "Hotel"}):
        started = time.perf_counter()
        client.post("/predict", json=body)
        round_trips_ms.append((time.perf_counter() - started) * 1000)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "building_energy.api.access"]
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [
        ("POST", "/predict", 200),
        ("POST", "/predict", 422),
    ]
    version = client.get("/health").json()["model_version"]
    for line, round_trip_ms in zip(lines, round_trips_ms, strict=True):
        assert line["event"] == "request"
        assert line["model_version"] == version
        # The request's own time, within what the client waited for it: no fixed or cumulative figure fits.
        assert 0 < line["latency_ms"] <= round_trip_ms
