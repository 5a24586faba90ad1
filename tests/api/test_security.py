"""Hostile clients: deep JSON, other origins, the admin reload, model sources in requests, an unreachable MLflow."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from building_energy.api import create_app
from building_energy.api.schemas import EXAMPLE_BUILDING
from building_energy.api.security import json_depth
from building_energy.config import get_config
from building_energy.loopback import answers, free_port, stop_process, wait_until_ready
from building_energy.models.artifacts import MODEL_FILE, load_artifact, save_artifacts
from building_energy.models.train import TrainingResult
from tests.api.conftest import api_settings

CLI = str(Path(sys.executable).parent / "building-energy")
TOKEN = "correct horse battery staple"  # noqa: S105 (a test's own token)
ORIGIN = "https://dashboard.example.org"


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        ("1", 0),
        ('{"a": "[[[[{{{{"}', 1),
        ('{"a": "\\"[[[[", "b": [1, {"c": []}]}', 4),
        (_nested(100_000), 100_000),
        ('{"buildings": [{}]}', 3),
        ('[1, {"a": "a string that never closes [[[[', 2),
    ],
)
def test_json_depth_counts_structure_not_text(body: str, depth: int) -> None:
    assert json_depth(body.encode()) == depth


# A string that never closes, escaped quotes all the way to the body cap: a pattern that backtracks takes
# hours on it (5 s at 32 KB, growing with the square of the size); the timeout only guards against a hang.
UNCLOSED_STRING = '"' + '\\"' * ((get_config().api.max_body_bytes - 16) // 2)


@pytest.mark.timeout(120)
def test_an_unclosed_string_of_escaped_quotes_is_read_once(client: TestClient) -> None:
    assert json_depth(UNCLOSED_STRING.encode()) == 0
    response = client.post("/predict", content=UNCLOSED_STRING, headers={"content-type": "application/json"})
    assert response.status_code == 422  # the parser's refusal, not the depth guard's
    assert response.json()["detail"][0]["type"] != "json_too_deep"


@pytest.mark.parametrize("path", ["/predict", "/predict/batch"])
@pytest.mark.parametrize(
    "body",
    [
        _nested(200_000),
        '{"buildings": [' + '{"a": ' * 5000 + "1" + "}" * 5000 + "]}",
        '{"PrimaryPropertyType": ' + _nested(get_config().api.max_json_depth) + ', "YearBuilt": 1990}',
    ],
    ids=["bare", "in a batch item", "one level too deep in a field"],
)
def test_deeply_nested_json_is_refused_with_422_before_parsing(client: TestClient, path: str, body: str) -> None:
    response = client.post(path, content=body, headers={"content-type": "application/json"})

    assert response.status_code == 422
    (error,) = response.json()["detail"]
    # Only the middleware answers with this type: the app (parser, validation, model) never saw the body.
    assert error["type"] == "json_too_deep"
    assert "api.max_json_depth" in error["message"]


def test_a_body_without_content_type_is_checked_too(client: TestClient) -> None:
    response = client.post("/predict", content=_nested(50))
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_too_deep"


def test_a_body_that_is_not_utf8_is_refused_with_422(client: TestClient) -> None:
    response = client.post(
        "/predict", content=b'{"PrimaryPropertyType": "\xff\xfe"}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_an_honest_batch_is_not_too_deep(client: TestClient) -> None:
    response = client.post("/predict/batch", json={"buildings": [EXAMPLE_BUILDING, EXAMPLE_BUILDING]})
    assert response.status_code == 200
    assert response.json()["n_predicted"] == 2


def test_cors_is_closed_by_default(client: TestClient) -> None:
    preflight = client.options("/predict", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    simple = client.get("/health", headers={"Origin": ORIGIN})

    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in simple.headers
    assert simple.status_code == 200


def test_cors_opens_to_configured_origins_only(trained: TrainingResult) -> None:
    with TestClient(create_app(api_settings(trained.model_path, cors_origins=[ORIGIN]))) as client:
        allowed = client.options("/predict", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
        other = client.options(
            "/predict", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        )
        simple = client.get("/health", headers={"Origin": ORIGIN})

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-credentials" not in allowed.headers
    assert "access-control-allow-origin" not in other.headers
    assert simple.headers["access-control-allow-origin"] == ORIGIN


def test_admin_routes_do_not_exist_without_a_token(client: TestClient) -> None:
    assert client.post("/admin/reload", headers={"Authorization": "Bearer anything"}).status_code == 404
    assert not [path for path in client.get("/openapi.json").json()["paths"] if path.startswith("/admin")]


def _model_sources_in(schema: dict[str, Any]) -> list[str]:
    """Every request parameter or body field whose name suggests a model, a file, a path or a URI."""
    suspicious = ("model", "path", "uri", "url", "file", "source")
    found = []
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if any(word in parameter["name"].lower() for word in suspicious):
                    found.append(f"{path} parameter {parameter['name']}")
    for name, component in schema["components"]["schemas"].items():
        if name.endswith("In"):
            found += [
                f"{name}.{field}"
                for field in component.get("properties", {})
                if any(word in field.lower() for word in suspicious)
            ]
    return found


def test_no_request_can_name_a_model_path_or_uri(trained: TrainingResult) -> None:
    settings = api_settings(trained.model_path, admin_token=SecretStr(TOKEN))
    with TestClient(create_app(settings)) as client:
        assert _model_sources_in(client.get("/openapi.json").json()) == []
        smuggled = {**EXAMPLE_BUILDING, "model_source": "/etc/passwd", "model": "models:/other@champion"}
        refused = client.post("/predict", json=smuggled)
        reload = client.post(
            "/admin/reload?source=/tmp/evil.joblib",
            json={"source": "/tmp/evil.joblib", "model": "models:/x@y"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )

    assert refused.status_code == 422
    assert {error["field"] for error in refused.json()["detail"]} == {"model_source", "model"}
    assert reload.status_code == 200
    assert reload.json()["source"] == str(trained.model_path)


@pytest.fixture
def own_artifacts(trained: TrainingResult, tmp_path: Path) -> Path:
    folder = tmp_path / "artifacts"
    shutil.copytree(trained.model_path.parent, folder)
    return folder / MODEL_FILE


def test_admin_reload_needs_the_token_and_serves_the_new_model(own_artifacts: Path) -> None:
    settings = api_settings(own_artifacts, admin_token=SecretStr(TOKEN))
    with TestClient(create_app(settings)) as client:
        before = client.get("/health").json()["model_version"]
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"X-Token": TOKEN}):
            denied = client.post("/admin/reload", headers=headers)
            assert denied.status_code == 401, headers
            assert denied.headers["www-authenticate"] == "Bearer"
        # A newer model at the configured path: same pipeline, other metadata, so another checksum.
        artifact = load_artifact(own_artifacts)
        artifact["metadata"] = {**artifact["metadata"], "trained_at": "a later training"}
        del artifact["metadata"]["model_sha256"]
        save_artifacts(own_artifacts.parent, artifact, artifact["metadata"]["metrics"])

        reloaded = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        after = client.get("/health").json()["model_version"]
        prediction = client.post("/predict", json=EXAMPLE_BUILDING)

    assert reloaded.status_code == 200
    assert reloaded.json()["previous_version"] == before
    assert reloaded.json()["version"] == after != before
    assert prediction.status_code == 200
    assert prediction.json()["model_version"] == after


def test_a_failed_reload_keeps_serving_the_previous_model(own_artifacts: Path) -> None:
    settings = api_settings(own_artifacts, admin_token=SecretStr(TOKEN))
    with TestClient(create_app(settings)) as client:
        before = client.get("/health").json()["model_version"]
        payload = bytearray(own_artifacts.read_bytes())
        payload[len(payload) // 3] ^= 0xFF
        own_artifacts.write_bytes(bytes(payload))

        reloaded = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        health = client.get("/health")
        prediction = client.post("/predict", json=EXAMPLE_BUILDING)

    assert reloaded.status_code == 409
    assert "does not match the recorded" in reloaded.json()["detail"]
    assert f"still serving {before}" in reloaded.json()["detail"]
    assert health.json()["model_version"] == before
    assert prediction.status_code == 200


def test_an_unreachable_mlflow_store_does_not_stop_a_path_model(
    trained: TrainingResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A tracking server that is not there: nothing listens on this loopback port.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    with TestClient(create_app(api_settings(trained.model_path))) as client:
        health = client.get("/health")
        prediction = client.post("/predict", json=EXAMPLE_BUILDING)

    assert health.status_code == 200
    assert prediction.status_code == 200
    assert prediction.json()["prediction"] > 0


def test_a_registry_model_on_an_unreachable_store_leaves_the_api_up_saying_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    with TestClient(create_app(api_settings("models:/building-energy@champion"))) as client:
        health = client.get("/health")
        prediction = client.post("/predict", json=EXAMPLE_BUILDING)

    assert health.status_code == 503
    assert "models:/building-energy@champion" in health.json()["reason"]
    assert prediction.status_code == 503


@pytest.fixture
def live_two_workers(trained: TrainingResult, tmp_path: Path) -> Iterator[str]:
    """`building-energy serve --workers 2` on a loopback port, with a 4 KiB body cap; its log in server.log."""
    port = free_port()
    environment = {**os.environ, "BE_API__MAX_BODY_BYTES": "4096"}
    command = [CLI, "serve", "--model", str(trained.model_path), "--port", str(port), "--workers", "2"]
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(
            process, lambda: answers(f"{base_url}/health"), 300, details=(tmp_path / "server.log").read_text
        )
        yield base_url
    finally:
        stop_process(process, signal.SIGTERM, timeout=60)


async def _post_oversized(base_url: str, count: int, size: int, concurrency: int) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    body = b"x" * size
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                try:
                    response = await client.post("/predict", content=body, headers={"content-type": "application/json"})
                    outcomes[str(response.status_code)] += 1
                except httpx.TransportError as error:
                    outcomes[type(error).__name__] += 1

        await asyncio.gather(*(one() for _ in range(count)))
    return outcomes


@pytest.mark.integration
def test_oversized_bodies_get_413_not_a_reset_connection(live_two_workers: str) -> None:
    """Without reading the refused body first, most of these clients (still sending) saw a connection reset."""
    outcomes = asyncio.run(_post_oversized(live_two_workers, count=32, size=4_000_000, concurrency=16))

    assert outcomes == Counter({"413": 32})
    assert httpx.post(f"{live_two_workers}/predict", json=EXAMPLE_BUILDING, timeout=60).status_code == 200


@pytest.mark.integration
def test_two_workers_log_every_request(live_two_workers: str, tmp_path: Path) -> None:
    """The workers are spawned processes: without the command's logging they logged no request at all."""
    for _ in range(3):
        assert httpx.post(f"{live_two_workers}/predict", json=EXAMPLE_BUILDING, timeout=60).status_code == 200

    def logged_posts() -> int:
        records = [
            json.loads(line.split(": ", 1)[1])
            for line in (tmp_path / "server.log").read_text().splitlines()
            if " INFO building_energy.api.access: " in line
        ]
        return [(r["method"], r["path"], r["status"]) for r in records].count(("POST", "/predict", 200))

    # A request is logged once its answer has gone: the last line may land just after the client has it.
    deadline = time.monotonic() + 60
    while logged_posts() < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert logged_posts() == 3
