"""What a hostile client cannot do: nest JSON without bound, read the API from another site, or reload the model.

- ``JsonBodyGuardMiddleware`` answers 422 to a JSON body nested deeper than ``api.max_json_depth``, or
  that is not UTF-8 text, before anything parses it (the parser would recurse once per level).
- CORS stays closed (no ``Access-Control-Allow-Origin`` at all) unless ``api.cors_origins`` names origins.
- ``POST /admin/reload`` re-reads the *configured* model source; it exists only when ``BE_API__ADMIN_TOKEN``
  is set and answers 401 to any request without that token. Nothing in a request ever names a model, a path
  or a URI: the source is the server's configuration alone.
"""

from __future__ import annotations

import hmac
import logging
import re
from typing import Annotated

import anyio.to_thread
import numpy as np
from fastapi import APIRouter, FastAPI, Header, HTTPException, status
from fastapi.middleware.cors import CORSMiddleware
from pydantic import BaseModel, SecretStr
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from building_energy.api.deps import ServingDep, SettingsDep
from building_energy.api.schemas import ErrorOut
from building_energy.api.serving import ServedModel

logger = logging.getLogger(__name__)

# A JSON string, escapes included: its brackets are text, not structure. Unrolled ("normal* (special
# normal*)*") so that each byte has one way to match, and the closing quote optional so that a string that
# never closes is read once, not again from every later quote (that was quadratic: 32 KB of \" took 5 s).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_OPENERS = np.frombuffer(b"[{", dtype=np.uint8)
_CLOSERS = np.frombuffer(b"]}", dtype=np.uint8)


def json_depth(body: bytes) -> int:
    """How deeply ``body`` nests arrays and objects (0 for a scalar), without parsing it.

    Linear in the body (a regular expression and numpy): affordable on every request, and as fast on a
    hostile body as on an honest one. Malformed JSON gets some number and is left to the parser to refuse.
    """
    codes = np.frombuffer(_JSON_STRING.sub(b'""', body), dtype=np.uint8)
    steps = np.isin(codes, _OPENERS).astype(np.int64) - np.isin(codes, _CLOSERS)
    return int(np.cumsum(steps).max(initial=0))


class JsonBodyGuardMiddleware:
    """Answer 422 to a JSON request body nested deeper than ``max_depth`` levels or not UTF-8 (as RFC 8259
    requires; the framework would answer an undocumented 400), before any parsing.

    Sits inside the body-size cap, so the body it buffers is already bounded.
    """

    def __init__(self, app: ASGIApp, max_depth: int) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # FastAPI parses a body as JSON when it says so, and when it says nothing at all.
        content_type = Headers(scope=scope).get("content-type", "").lower()
        if content_type and "json" not in content_type:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        refusal = self._refusal(body)
        if refusal is not None:
            await JSONResponse({"detail": [refusal]}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)(
                scope, receive, send
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _refusal(self, body: bytes) -> dict[str, str | None] | None:
        """The error (in the API's ``FieldError`` shape) that refuses ``body``, or ``None``."""
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as error:
            return {"field": None, "message": f"the body is not UTF-8 text ({error.reason})", "type": "json_invalid"}
        depth = json_depth(body)
        if depth > self.max_depth:
            message = f"JSON nested {depth} levels deep; at most {self.max_depth} (api.max_json_depth)"
            return {"field": None, "message": message, "type": "json_too_deep"}
        return None


def allow_configured_origins(app: FastAPI, origins: list[str]) -> None:
    """Let the browsers of ``origins`` call the API (GET and POST, no credentials); none: CORS stays closed."""
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type"],
        allow_credentials=False,
    )


class ReloadOut(BaseModel):
    source: str
    previous_version: str | None
    version: str


def token_matches(authorization: str | None, token: SecretStr) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time."""
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not presented:
        return False
    return hmac.compare_digest(presented.strip().encode(), token.get_secret_value().encode())


admin_router = APIRouter(prefix="/admin", tags=["admin"])


@admin_router.post(
    "/reload",
    response_model=ReloadOut,
    responses={
        status.HTTP_401_UNAUTHORIZED: {"model": ErrorOut, "description": "No or wrong admin token"},
        status.HTTP_409_CONFLICT: {"model": ErrorOut, "description": "The configured model failed to load"},
    },
)
async def reload_model(
    serving: ServingDep, settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> ReloadOut:
    """Reload the model from the server's configured source (never from the request). The model served so
    far keeps answering until the new one has loaded and verified; if it fails, it stays served."""
    token = settings.api.admin_token
    if token is None or not token_matches(authorization, token):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="admin token required (Authorization: Bearer ...)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    async with serving.reload_lock:
        previous = serving.version
        try:
            served = await anyio.to_thread.run_sync(ServedModel.load, serving.source, settings.intervals.level)
        except Exception as error:  # any failure leaves the served model in place, and says why
            logger.error("admin reload of %s failed, still serving %s: %s", serving.source, previous, error)
            raise HTTPException(
                status_code=status.HTTP_409_CONFLICT,
                detail=f"reloading {serving.source} failed ({error}); still serving {previous}",
            ) from error
        serving.model, serving.reason = served, None
    logger.warning("admin reload: %s now serves %s (was %s)", serving.source, served.version, previous)
    return ReloadOut(source=serving.source, previous_version=previous, version=served.version)
