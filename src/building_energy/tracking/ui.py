"""``building-energy ui``: the MLflow UI (tracking server) on the project's store, on loopback by default."""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from building_energy.config import Settings, get_config
from building_energy.tracking.store import (
    TrackingError,
    check_sqlite_access,
    local_artifact_location,
    resolve_tracking_uri,
    sqlite_path,
)

logger = logging.getLogger(__name__)


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


def run_ui(
    config: Settings | None = None, host: str | None = None, port: int | None = None, tracking_uri: str | None = None
) -> int:
    """Serve the UI until interrupted; the server's exit code."""
    command = ui_command(config, host, port, tracking_uri)
    address = f"http://{command[command.index('--host') + 1]}:{command[command.index('--port') + 1]}"
    logger.info("MLflow UI for %s at %s (Ctrl-C stops it)", command[command.index("--backend-store-uri") + 1], address)
    process = subprocess.Popen(command)  # noqa: S603  # our own argv, no shell
    # A service manager (or `kill`) stops us with SIGTERM: pass it on, or the server would outlive this
    # process and keep the port.
    previous = signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    try:
        return process.wait()
    except KeyboardInterrupt:  # Ctrl-C reached the server too (same process group), which may not stop on it
        process.terminate()
        process.wait()
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
