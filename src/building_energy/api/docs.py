"""The interactive documentation (/docs, /redoc) served with its own Swagger UI and ReDoc files.

FastAPI's default pages load both from a CDN, so on a server without internet access (a City network, an
air-gapped host) they stay blank. The files come from the pinned ``fastapi-offline`` package; the pages are
FastAPI's own.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs-assets"
ASSETS = Path(str(files("fastapi_offline") / "static"))
# Swagger UI's default validator is an outside service that the badge would call with the whole spec.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}
# ReDoc's "API docs by Redocly" footer shows a logo from its CDN: the browser may not ask for it.
IMAGES_FROM_HERE = "img-src 'self' data: blob:"


def add_documentation(app: FastAPI) -> None:
    """Serve /docs and /redoc from files the API serves itself. ``app`` must be built with
    ``docs_url=None, redoc_url=None`` so that FastAPI's CDN pages do not answer first."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        # Behind a proxy's path prefix the browser must ask for the prefixed addresses.
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{oauth2_redirect_url}" if oauth2_redirect_url else None,
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), **SWAGGER_UI_PARAMETERS},
        )

    if oauth2_redirect_url:

        @app.get(oauth2_redirect_url, include_in_schema=False)
        async def swagger_ui_redirect() -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = IMAGES_FROM_HERE
        return page
