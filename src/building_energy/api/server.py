"""``building-energy serve``: the API under uvicorn, one process, the model loaded once."""

from __future__ import annotations

import logging

import uvicorn

from building_energy.api.main import create_app
from building_energy.config import Settings, get_config

logger = logging.getLogger(__name__)


def with_model_source(settings: Settings, model_source: str | None) -> Settings:
    """``settings`` serving ``model_source`` (a path or ``models:/`` URI) instead of the configured model."""
    if not model_source:
        return settings
    return settings.model_copy(update={"api": settings.api.model_copy(update={"model_source": str(model_source)})})


def serve(
    host: str | None = None, port: int | None = None, model_source: str | None = None, config: Settings | None = None
) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM). A model that fails its checksum is raised here, once
    uvicorn has given up starting, so the command line reports it like any other bad model file."""
    settings = with_model_source(config or get_config(), model_source)
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host or settings.api.host,
            port=port if port is not None else settings.api.port,
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
    except SystemExit:  # uvicorn's exit when the app could not start
        startup_error = app.state.serving.startup_error
        if startup_error is not None:
            raise startup_error from None
        raise
