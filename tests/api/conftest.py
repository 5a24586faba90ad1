"""The API under test: the real app, serving the session's real `fast` model."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from building_energy.api import create_app
from building_energy.api.schemas import city_payload
from building_energy.api.server import with_model_source
from building_energy.config import Settings, get_config
from building_energy.loopback import answers, free_port, stop_process, wait_until_ready
from building_energy.models.artifacts import CHECKSUM_FILE, MODEL_FILE
from building_energy.models.loading import LoadedModel, load_model
from building_energy.models.train import TrainingResult


def api_settings(model_source: str | Path, **api: Any) -> Settings:
    """The project's configuration serving ``model_source``, with ``api`` fields overridden."""
    settings = with_model_source(get_config(), str(model_source))
    return settings.model_copy(update={"api": settings.api.model_copy(update=api)}) if api else settings


def building_payload(row: pd.Series) -> dict[str, Any]:
    """A City record as a client would post it: the model's input columns, unknown values left out."""
    return city_payload(row)


@pytest.fixture(scope="session")
def loaded(trained: TrainingResult) -> LoadedModel:
    return load_model(trained.model_path)


@pytest.fixture(scope="session")
def client(trained: TrainingResult) -> Iterator[TestClient]:
    """One app for the session (the model loads once, as in production)."""
    with TestClient(create_app(api_settings(trained.model_path))) as test_client:
        yield test_client


@pytest.fixture
def tampered_model(trained: TrainingResult, tmp_path: Path) -> Path:
    """A copy of the session's artifacts with one byte of the model file flipped (its checksum kept)."""
    folder = tmp_path / "tampered"
    shutil.copytree(trained.model_path.parent, folder)
    model = folder / MODEL_FILE
    payload = bytearray(model.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    model.write_bytes(bytes(payload))
    assert (folder / CHECKSUM_FILE).is_file()
    return model


STARTUP_SECONDS = 180  # importing the stack and loading the model on a busy CI machine


def serve_subprocess(model: Path, port: int, *options: str) -> subprocess.Popen[str]:
    """`building-energy serve` of ``model`` on a loopback ``port`` (and ``options``), its output piped."""
    command = [sys.executable, "-m", "building_energy.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(
        [*command, "--model", str(model), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.fixture(scope="module")
def live_server(trained: TrainingResult) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """The session model served by `building-energy serve`, one server per module: a test may stop it."""
    port = free_port()
    process = serve_subprocess(trained.model_path, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(
            process,
            lambda: answers(f"{url}/health"),
            STARTUP_SECONDS,
            details=lambda: process.stdout.read() if process.stdout and process.poll() is not None else "",
        )
        yield url, process
    finally:
        stop_process(process)
