"""``building-energy ui``: the MLflow UI (tracking server) on the project's store, on loopback by default."""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from building_energy.config import Settings, get_config
from building_energy.loopback import check_port_free, stop_process
from building_energy.tracking.store import (
    TrackingError,
    check_sqlite_access,
    local_artifact_location,
    resolve_tracking_uri,
    sqlite_path,
)

logger = logging.getLogger(__name__)

STOP_SECONDS = 30  # for the server's group to stop on SIGTERM before it is killed


def ui_command(
    config: Settings | None = None, host: str | None = None, port: int | None = None, tracking_uri: str | None = None
) -> list[str]:
    """The ``mlflow server`` command line serving the store (and its artifacts) at ``host:port``."""
    config = config or get_config()
    uri = resolve_tracking_uri(config, tracking_uri)
    # Browsing needs only reading: MLflow serves a read-only store, refusing just the UI's own edits.
    check_sqlite_access(uri, "read")
    database = sqlite_path(uri)
    if database is not None and not database.is_file():
        # mlflow server would create an empty store here, and show no run: most likely the wrong folder.
        raise TrackingError(
            f"no MLflow store at {database.resolve()}; run from the repository root, or train a model first"
        )
    artifacts = local_artifact_location(uri, config)
    if artifacts is None:
        raise TrackingError(f"{uri} is a tracking server: open it in a browser, it serves its own UI")
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or shutil.which("mlflow")
    if mlflow is None:
        raise TrackingError("the mlflow command is not installed in this environment; run `make setup`")
    return [
        mlflow,
        "server",
        "--backend-store-uri",
        uri,
        # Only used for experiments the UI creates; ours record their own location.
        "--default-artifact-root",
        artifacts,
        "--host",
        host or config.tracking.ui_host,
        "--port",
        str(port or config.tracking.ui_port),
        "--workers",
        str(config.tracking.ui_workers),
    ]


class ServerExitedError(TrackingError):
    """The MLflow server stopped by itself (it exits 0 even when it could not bind its port)."""


class _TerminatedError(Exception):
    """SIGTERM reached the command: stop the server as Ctrl-C does."""


def _terminated(*_: object) -> None:
    raise _TerminatedError


def run_ui(
    config: Settings | None = None, host: str | None = None, port: int | None = None, tracking_uri: str | None = None
) -> int:
    """Serve the UI until interrupted (Ctrl-C or SIGTERM: 0). A port in use raises ``PortUnavailableError``
    before anything starts; a server that stops by itself raises ``ServerExitedError``."""
    config = config or get_config()
    command = ui_command(config, host, port, tracking_uri)
    bound_host, bound_port = command[command.index("--host") + 1], command[command.index("--port") + 1]
    check_port_free(bound_host, int(bound_port))
    address = f"http://{bound_host}:{bound_port}"
    logger.info("MLflow UI for %s at %s (Ctrl-C stops it)", command[command.index("--backend-store-uri") + 1], address)
    # Its own session: `mlflow server` starts uvicorn and its job runner's huey consumers, which outlive it
    # unless the whole group is stopped. Ctrl-C at the terminal now reaches this process alone, which stops
    # the group; so does SIGTERM (a service manager, `kill`).
    process = subprocess.Popen(command, start_new_session=True)  # noqa: S603  # our own argv, no shell
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        code = process.wait()
    except (KeyboardInterrupt, _TerminatedError):
        logger.info("stopping the MLflow UI at %s", address)
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the stop short
        try:
            stop_process(process, signal.SIGTERM, timeout=STOP_SECONDS, group=True)
        finally:
            signal.signal(signal.SIGTERM, previous)
    raise ServerExitedError(f"the MLflow server for {address} stopped by itself (exit code {code}); see its log above")
