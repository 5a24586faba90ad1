"""``building-energy serve``: the API under uvicorn, the model loaded once per process (``--workers N``: N)."""

from __future__ import annotations

import logging
import os

import uvicorn

from building_energy.api.main import create_app
from building_energy.api.main import model_source as configured_model_source
from building_energy.api.serving import ServingState
from building_energy.config import Settings, get_config
from building_energy.logs import process_log_config
from building_energy.loopback import check_port_free

logger = logging.getLogger(__name__)


def with_model_source(settings: Settings, source: str | None) -> Settings:
    """``settings`` serving ``source`` (a path or ``models:/`` URI) instead of the configured model."""
    if not source:
        return settings
    return settings.model_copy(update={"api": settings.api.model_copy(update={"model_source": str(source)})})


def serve(
    host: str | None = None,
    port: int | None = None,
    model_source: str | None = None,
    config: Settings | None = None,
    workers: int = 1,
) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM). A model that fails its checksum is raised here before
    uvicorn starts (it would log the app's failed start as a traceback first), so the command line reports
    it like any other bad model file, in one line; the app's start then finds the model loaded. So is a port
    already in use (``PortUnavailableError``), checked first: uvicorn would log it and exit 3."""
    settings = with_model_source(config or get_config(), model_source)
    host = host or settings.api.host
    port = port if port is not None else settings.api.port
    check_port_free(host, port)
    if workers > 1:
        serve_workers(settings, host, port, workers)
        return
    app = create_app(settings)
    app.state.serving.load(settings.intervals.level)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="on",
            # The project's logging (and the API's own structured access log) instead of uvicorn's.
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=settings.api.graceful_shutdown_seconds,
        )
    )
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C once it has shut down gracefully: a normal stop
        logger.info("API server stopped")
    except SystemExit:  # uvicorn's exit when the app could not start (its start retries a model not found above)
        startup_error = app.state.serving.startup_error
        if startup_error is not None:
            raise startup_error from None
        raise


def serve_workers(settings: Settings, host: str | None, port: int | None, workers: int) -> None:
    """``workers`` uvicorn processes on one socket, each building the app (and loading the model) itself.

    The workers read the configuration from the file and the environment, so the model source goes to them
    as ``BE_API__MODEL_SOURCE``. The model is verified here first: a file that fails its checksum stops the
    command before any worker starts, as it does with one process.
    """
    source = configured_model_source(settings)
    ServingState(source=source, max_concurrent_predictions=1).load(settings.intervals.level)
    os.environ["BE_API__MODEL_SOURCE"] = source
    logger.info("serving %s with %d worker processes", source, workers)
    uvicorn.run(
        "building_energy.api.main:create_app",
        factory=True,
        host=host or settings.api.host,
        port=port if port is not None else settings.api.port,
        workers=workers,
        lifespan="on",
        # Applied in each worker: the project's format and level, the API's access log included.
        log_config=process_log_config(),
        access_log=False,
        timeout_graceful_shutdown=settings.api.graceful_shutdown_seconds,
    )
