"""Which store tracking uses, where its artifacts go, and that a scoped store leaves no global trace."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pytest

from building_energy.config import get_config
from building_energy.tracking.store import (
    bounded_http,
    local_artifact_location,
    resolve_tracking_uri,
    sqlite_path,
    using_store,
)


def test_default_store_is_the_projects_sqlite_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = get_config()
    assert resolve_tracking_uri(config) == config.tracking.uri == "sqlite:///mlflow.db"
    assert sqlite_path(config.tracking.uri) == Path("mlflow.db")


def test_environment_then_argument_override_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert resolve_tracking_uri(get_config()) == "http://127.0.0.1:5999"
    assert resolve_tracking_uri(get_config(), "sqlite:////x/y.db") == "sqlite:////x/y.db"


def test_artifacts_live_beside_the_database(tmp_path: Path) -> None:
    config = get_config()
    location = local_artifact_location(f"sqlite:///{tmp_path}/sub/mlflow.db", config)
    assert location == (tmp_path / "sub" / config.tracking.artifact_location).as_uri()
    assert local_artifact_location("http://127.0.0.1:5000", config) is None


def test_scoped_store_restores_the_global_uri_and_http_bounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outer = f"sqlite:///{tmp_path}/outer.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", outer)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    inner = f"sqlite:///{tmp_path}/inner.db"
    with using_store(inner):
        assert mlflow.get_tracking_uri() == inner
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == str(get_config().tracking.http_max_retries)
    assert os.environ["MLFLOW_TRACKING_URI"] == outer
    assert mlflow.get_tracking_uri() == outer
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


def test_http_bounds_never_override_the_users_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "77")
    with bounded_http():
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "77"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "77"
