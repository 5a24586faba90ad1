"""Start the dashboard: ``streamlit run`` on the app file, with the model source passed through the environment."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

from building_energy.config import Settings, get_config
from building_energy.dashboard import APP_FILE
from building_energy.loopback import check_port_free

logger = logging.getLogger(__name__)

MODEL_SOURCE_ENV = "BE_DASHBOARD__MODEL_SOURCE"


def streamlit_command(address: str, port: int, max_upload_mb: int) -> list[str]:
    """The ``streamlit run`` command line: headless, no usage statistics, no file watching, no deploy button."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_FILE),
        "--server.address",
        address,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--server.maxUploadSize",
        str(max_upload_mb),
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
    ]


def dashboard_environment(model_source: str | None, base: dict[str, str] | None = None) -> dict[str, str]:
    """The app's environment: ``model_source`` (when given) overrides the configured one."""
    env = dict(os.environ if base is None else base)
    if model_source:
        env[MODEL_SOURCE_ENV] = str(model_source)
    return env


def run_dashboard(
    model_source: str | None = None,
    address: str | None = None,
    port: int | None = None,
    config: Settings | None = None,
) -> int:
    """Serve the dashboard until interrupted; return streamlit's exit code. A port in use raises
    ``PortUnavailableError`` before streamlit starts."""
    config = config or get_config()
    settings = config.dashboard
    # Checked as `serve` and `ui` check theirs: streamlit would say "Port N is not available" and exit 1.
    check_port_free(address or settings.address, port or settings.port)
    command = streamlit_command(address or settings.address, port or settings.port, settings.max_upload_mb)
    env = dashboard_environment(model_source)
    source = env.get(MODEL_SOURCE_ENV) or "the configured model"
    logger.info("dashboard on http://%s:%s with %s", address or settings.address, port or settings.port, source)
    process = subprocess.Popen(command, env=env)  # noqa: S603 (our own interpreter and app)
    # A service manager stops us with SIGTERM: pass it on, or streamlit would outlive this process.
    previous = signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    try:
        return process.wait()
    except KeyboardInterrupt:  # Ctrl-C reached streamlit too (same process group): let it shut down
        return process.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
