"""The application factory: ``create_app(settings)`` builds the API around one model loaded at startup.

Run it with ``building-energy serve`` (or ``uvicorn --factory building_energy.api.main:create_app``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from building_energy import __version__
from building_energy.api.docs import add_documentation
from building_energy.api.errors import validation_error_handler
from building_energy.api.middleware import BodySizeLimitMiddleware, RequestLogMiddleware
from building_energy.api.routes import api_router
from building_energy.api.security import JsonBodyGuardMiddleware, admin_router, allow_configured_origins
from building_energy.api.serving import ServingState
from building_energy.config import Settings, get_config
from building_energy.models.artifacts import MODEL_FILE

logger = logging.getLogger(__name__)

DESCRIPTION = """
Annual site energy use (kBtu) of a Seattle non-residential building from what the City knows about it
before any meter is read. Buildings are described with the City's column names (or their snake_case
field names); see `BuildingIn`. Every answer names the model version that produced it.
"""


def model_source(settings: Settings) -> str:
    """The configured model (a path or a ``models:/`` URI), else the one ``make train`` writes."""
    return settings.api.model_source or str(settings.paths.artifacts / MODEL_FILE)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for ``settings`` (default: the project's configuration). The model is loaded when the app
    starts: a missing model leaves it up answering 503 with the reason; a model file that fails its
    checksum stops the start."""
    settings = settings or get_config()
    serving = ServingState(
        source=model_source(settings), max_concurrent_predictions=settings.api.max_concurrent_predictions
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            # ``serve`` loads it before uvicorn starts (a bad file is then one line, not uvicorn's traceback).
            if not serving.attempted:
                serving.load(settings.intervals.level)
        except Exception as error:
            logger.error("refusing to serve %s: %s", serving.source, error)
            raise
        yield

    app = FastAPI(
        title="building-energy",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.serving = serving
    app.include_router(api_router)
    add_documentation(app)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    if settings.api.admin_token is not None:
        app.include_router(admin_router)
    # The last added runs first: every request is logged, a too-large one included; the nesting check
    # reads a body the size cap has already bounded.
    app.add_middleware(JsonBodyGuardMiddleware, max_depth=settings.api.max_json_depth)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.api.max_body_bytes,
        drain_bytes=settings.api.refused_body_drain_bytes,
    )
    app.add_middleware(RequestLogMiddleware, model_version=lambda: serving.version)
    allow_configured_origins(app, settings.api.cors_origins)
    return app
