"""Pure ASGI middleware: a cap on the request body, and one structured log line per request."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_logger = logging.getLogger("building_energy.api.access")


class BodySizeLimitMiddleware:
    """Answer 413 to a body larger than ``max_bytes`` before anything parses it.

    A declared ``Content-Length`` over the cap is refused without parsing a byte; a body without one
    (chunked) is read up to the cap and refused as soon as it passes it. An accepted body is handed on
    to the app unchanged.

    A refused body of up to ``drain_bytes`` is read to its end (and discarded) before the 413: closing a
    connection with unread bytes in it makes the kernel reset it, and a client still sending would see a
    dropped connection instead of the answer.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, drain_bytes: int = 0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.drain_bytes = drain_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await JSONResponse({"detail": "invalid Content-Length header"}, status_code=400)(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                if int(declared) <= self.drain_bytes:
                    await self._drain(receive, 0)
                await self._too_large(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                if message.get("more_body", False):
                    await self._drain(receive, size)
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: disconnect notices

        await self.app(scope, replay, send)

    async def _drain(self, receive: Receive, already: int) -> None:
        """Read and drop the rest of the body, up to ``drain_bytes`` in all."""
        size = already
        while size <= self.drain_bytes:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body exceeds the limit of {self.max_bytes} bytes (api.max_body_bytes)"},
            status_code=413,
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


class RequestLogMiddleware:
    """One JSON line per HTTP request on ``building_energy.api.access``: method, path, status, latency, model."""

    def __init__(self, app: ASGIApp, model_version: Callable[[], str | None]) -> None:
        self.app = app
        self.model_version = model_version

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            access_logger.info(
                json.dumps(
                    {
                        "event": "request",
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                        "model_version": self.model_version(),
                    }
                )
            )
