"""Which MLflow store the project uses, and a scoped connection to it."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote, urlparse

from building_energy.config import Settings, get_config

if TYPE_CHECKING:
    from mlflow import MlflowClient

logger = logging.getLogger(__name__)

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
REGISTRY_URI_ENV = "MLFLOW_REGISTRY_URI"
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


def check_sqlite_access(uri: str, access: Literal["read", "write", "create"]) -> None:
    """Raise ``TrackingError`` naming the file if this process cannot ``read`` a ``sqlite:///`` store, ``write``
    it, or ``create`` it (write it, or make it where it is missing); nothing for a server.

    A missing database passes ``read`` and ``write``: the callers that need one say so, each naming what to do.

    MLflow retries a SQLite file it cannot open ten times with back-off, about 100 s of warnings before it
    gives up, and a permission problem does not go away by waiting. Writing needs the folder too: SQLite
    creates its journal beside the database. MLflow creates a new database's missing folders, so the nearest
    existing one must take them.
    """
    database = sqlite_path(uri)
    if database is None:
        return
    database = database.absolute()
    # The file is opened with the effective ids (a set-uid process's real ones are someone else's).
    effective = os.access in os.supports_effective_ids
    write = access != "read"
    try:
        database.stat()
    except FileNotFoundError:
        pass
    except OSError as error:  # a folder on the way that may not be searched, or is a file
        raise TrackingError(f"MLflow store {database}: {error.strerror}") from error
    else:
        if not os.access(database, os.R_OK, effective_ids=effective):
            raise TrackingError(f"MLflow store {database}: permission denied (the file is not readable)")
        if write and not os.access(database, os.W_OK, effective_ids=effective):
            raise TrackingError(f"MLflow store {database}: permission denied (the file is read-only)")
        if write and not os.access(database.parent, os.W_OK | os.X_OK, effective_ids=effective):
            raise TrackingError(
                f"MLflow store {database}: permission denied (its folder is read-only; SQLite writes a journal there)"
            )
        return
    if access != "create":
        return
    existing = next(folder for folder in database.parents if folder.exists())
    if not os.access(existing, os.W_OK | os.X_OK, effective_ids=effective):
        raise TrackingError(f"MLflow store {database} cannot be created: permission denied in {existing}")


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
    """Point MLflow's fluent API (runs, ``log_model`` and its registration) at ``uri`` for the duration, then restore.

    The registry is pointed there too: ``log_model(registered_model_name=...)`` registers in MLflow's global
    registry, which follows ``MLFLOW_REGISTRY_URI`` when that is set, whereas ``client`` (promotion, loading)
    always uses the tracking store; a version registered elsewhere would be invisible to them, or an unrelated
    one with the same number would be promoted instead.

    ``mlflow.set_tracking_uri`` and ``mlflow.set_registry_uri`` are process-global and export their variables;
    restoring the previous values keeps one caller's store from leaking into the next.
    """
    import mlflow

    previous = {name: os.environ.get(name) for name in (TRACKING_URI_ENV, REGISTRY_URI_ENV)}
    with bounded_http(config):
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            yield
        finally:
            # None clears MLflow's globals (and the tracking variable, though not the registry one); then the
            # caller's variables come back as they were.
            mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
            mlflow.set_registry_uri(None)  # type: ignore[arg-type]
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def client(uri: str) -> MlflowClient:
    """An ``MlflowClient`` on ``uri`` for both tracking and registry, independent of global state."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(mlflow_client: MlflowClient, uri: str, config: Settings | None = None) -> str:
    """The id of config ``tracking.experiment``: created (with the local artifact location) if missing,
    restored if deleted."""
    from mlflow.entities import LifecycleStage

    config = config or get_config()
    name = config.tracking.experiment
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == LifecycleStage.DELETED:
            # A deleted experiment keeps its name (a new one cannot take it) and refuses new runs: without
            # this, deleting it in the UI would break every later training.
            logger.warning(
                "MLflow experiment %r (id %s) in %s was deleted; restoring it to record this run",
                name,
                experiment.experiment_id,
                uri,
            )
            mlflow_client.restore_experiment(experiment.experiment_id)
        return str(experiment.experiment_id)
    location = local_artifact_location(uri, config)
    logger.info("creating MLflow experiment %r in %s (artifacts: %s)", name, uri, location or "server default")
    return str(mlflow_client.create_experiment(name, artifact_location=location))
