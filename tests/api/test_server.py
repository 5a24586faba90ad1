"""``building-energy serve``: a live uvicorn on a loopback port, and no start with a tampered model."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from building_energy.api.schemas import EXAMPLE_BUILDING
from building_energy.config import get_config
from building_energy.loopback import free_port, stop_process, wait_until_ready
from tests.api.conftest import STARTUP_SECONDS, serve_subprocess

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_the_live_server_predicts_over_real_http(live_server: tuple[str, subprocess.Popen[str]]) -> None:
    url, _ = live_server
    with httpx.Client(base_url=url, timeout=60) as client:
        response = client.post("/predict", json=EXAMPLE_BUILDING)
        assert response.status_code == 200, response.text
        assert response.json()["prediction"] > 0
        batch = client.post("/predict/batch", json={"buildings": [EXAMPLE_BUILDING] * 10})
        assert batch.status_code == 200
        assert {item["prediction"]["prediction"] for item in batch.json()["items"]} == {response.json()["prediction"]}
        assert client.post("/predict", json={"PrimaryPropertyType": "Hotel"}).status_code == 422


def test_the_live_server_refuses_an_oversized_streamed_body(live_server: tuple[str, subprocess.Popen[str]]) -> None:
    url, _ = live_server
    limit = 1_048_576

    def chunks() -> Iterator[bytes]:  # chunked: the server only learns the size by reading
        for _ in range(limit // 65_536 + 2):
            yield b" " * 65_536

    with httpx.Client(base_url=url, timeout=60) as client:
        response = client.post("/predict", content=chunks(), headers={"Content-Type": "application/json"})
        assert response.status_code == 413
        declared = client.post("/predict", content=b" " * (limit + 1), headers={"Content-Type": "application/json"})
        assert declared.status_code == 413
        assert client.get("/health").status_code == 200  # and the server is still up


def test_the_live_server_answers_a_declared_oversize_without_waiting_for_the_body(
    live_server: tuple[str, subprocess.Popen[str]],
) -> None:
    url, _ = live_server
    host, port = url.removeprefix("http://").split(":")
    declared = get_config().api.refused_body_drain_bytes + 1  # too large to be worth reading to its end
    request = (
        f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n{{}}"
    )
    # Two bytes of a body declared at 16 MB: a server reading before checking would wait here until the timeout.
    with socket.create_connection((host, int(port)), timeout=60) as connection:
        connection.sendall(request.encode())
        answer = b""
        while chunk := connection.recv(65_536):  # the server closes the connection after the 413
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert b"connection: close" in head.lower()
    assert "exceeds the limit" in json.loads(body)["detail"]


def test_the_live_server_logs_each_request_and_stops_on_sigint(live_server: tuple[str, subprocess.Popen[str]]) -> None:
    url, process = live_server
    httpx.get(f"{url}/model", timeout=60)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    lines = [json.loads(line.split(": ", 1)[1]) for line in output.splitlines() if "building_energy.api.access" in line]
    assert {"method": "GET", "path": "/model", "status": 200} in [
        {k: line[k] for k in ("method", "path", "status")} for line in lines
    ]
    assert all(line["model_version"].startswith("sha256:") and isinstance(line["latency_ms"], float) for line in lines)


def test_serve_refuses_to_start_on_a_tampered_model(tampered_model: Path) -> None:
    process = serve_subprocess(tampered_model, free_port())
    output, _ = process.communicate(timeout=STARTUP_SECONDS)
    assert process.returncode == 2, output
    assert "Uvicorn running" not in output
    # One line saying why, not uvicorn's traceback of a failed start and the reason three times over.
    assert "Traceback" not in output
    assert [line for line in output.splitlines() if "does not match the recorded" in line] == [
        line for line in output.splitlines() if line.startswith("error: ")
    ]
    assert len([line for line in output.splitlines() if line.startswith("error: ")]) == 1


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_on_a_port_in_use_exits_2_with_one_line_naming_it(tmp_path: Path, workers: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = int(holder.getsockname()[1])
        # No model needed: the port is checked first (without one, the API would start and answer 503).
        process = serve_subprocess(tmp_path / "no-model.joblib", port, "--workers", workers)
        try:
            output, _ = process.communicate(timeout=STARTUP_SECONDS)
        finally:
            stop_process(process)
    assert process.returncode == 2, output
    assert "Uvicorn running" not in output
    assert "Traceback" not in output
    assert [line for line in output.splitlines() if line.startswith("error: ")] == [
        f"error: cannot listen on 127.0.0.1:{port}: the port is already in use; stop what listens there or "
        "choose another --port"
    ], output


def test_serve_without_a_model_answers_503_having_looked_for_it_once(tmp_path: Path) -> None:
    port = free_port()
    process = serve_subprocess(tmp_path / "no-model.joblib", port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, lambda: _status(f"{url}/health") is not None, STARTUP_SECONDS)
        health = httpx.get(f"{url}/health", timeout=60)
        assert health.status_code == 503
        assert "no-model.joblib" in health.json()["reason"]
    finally:
        stop_process(process)
    output = process.stdout.read() if process.stdout else ""
    assert len([line for line in output.splitlines() if "no model served" in line]) == 1, output


def _status(url: str) -> int | None:
    """The status of a GET of ``url``, or ``None`` while nothing listens there."""
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.TransportError:
        return None
