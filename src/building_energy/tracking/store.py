"""Which MLflow store the project uses, and a scoped connection to it."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from building_energy.config import Settings, get_config

if TYPE_CHECKING:
    from mlflow import MlflowClient

logger = logging.getLogger(__name__)

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
_SQLITE_PREFIX = "sqlite:///"


class TrackingError(RuntimeError):
    """The tracking store refused or failed an operation the caller asked for explicitly."""


def resolve_tracking_uri(config: Settings | None = None, override: str | None = None) -> str:
    """``override``, else ``MLFLOW_TRACKING_URI``, else config ``tracking.uri`` (the project's SQLite file)."""
    config = config or get_config()
    return override or os.environ.get(TRACKING_URI_ENV) or config.tracking.uri


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative to the working directory), else ``None``."""
    if not uri.startswith(_SQLITE_PREFIX):
        return None
    return Path(unquote(uri[len(_SQLITE_PREFIX) :]))


def local_artifact_location(uri: str, config: Settings | None = None) -> str | None:
    """Where a local store keeps run artifacts: config ``tracking.artifact_location`` beside the database.

    ``None`` for a tracking server, which decides (and may proxy) artifact storage itself.
    """
    config = config or get_config()
    location = Path(config.tracking.artifact_location)
    database = sqlite_path(uri)
    if database is not None:
        folder = location if location.is_absolute() else database.absolute().parent / location
        return folder.resolve().as_uri()
    if urlparse(uri).scheme in ("", "file"):
        return location.resolve().as_uri()
    return None


@contextlib.contextmanager
def bounded_http(config: Settings | None = None) -> Iterator[None]:
    """Bound MLflow's HTTP retries and timeout (unless the environment sets them) for the duration.

    MLflow's defaults retry a dead server for minutes; a training must not wait that long to say so.
    """
    config = config or get_config()
    wanted = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(config.tracking.http_max_retries),
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(config.tracking.http_timeout_seconds),
    }
    added = [name for name in wanted if name not in os.environ]
    for name in added:
        os.environ[name] = wanted[name]
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@contextlib.contextmanager
def using_store(uri: str, config: Settings | None = None) -> Iterator[None]:
    """Point MLflow's fluent API (runs, ``log_model``) at ``uri`` for the duration, then restore.

    ``mlflow.set_tracking_uri`` is process-global and exports ``MLFLOW_TRACKING_URI``; restoring the
    previous value keeps one caller's store from leaking into the next.
    """
    import mlflow

    previous = os.environ.get(TRACKING_URI_ENV)
    with bounded_http(config):
        mlflow.set_tracking_uri(uri)
        try:
            yield
        finally:
            # None clears MLflow's global and the variable; then the caller's variable comes back as it was.
            mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
            if previous is not None:
                os.environ[TRACKING_URI_ENV] = previous


def client(uri: str) -> MlflowClient:
    """An ``MlflowClient`` on ``uri`` for both tracking and registry, independent of global state."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(mlflow_client: MlflowClient, uri: str, config: Settings | None = None) -> str:
    """The id of config ``tracking.experiment``, created (with the local artifact location) if missing."""
    config = config or get_config()
    name = config.tracking.experiment
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    location = local_artifact_location(uri, config)
    logger.info("creating MLflow experiment %r in %s (artifacts: %s)", name, uri, location or "server default")
    return str(mlflow_client.create_experiment(name, artifact_location=location))
