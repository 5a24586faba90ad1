"""422 answers that name the field and the rule, and never echo a value JSON cannot carry."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from email.message import Message
from typing import Any

from fastapi import Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from building_energy.api.schemas import FieldError


def field_errors(errors: Iterable[Mapping[str, Any]]) -> list[FieldError]:
    """Pydantic's errors as ``FieldError``s: ``field`` is the path below the body (the City's column name)."""
    found = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        if location and location[0] == "body":
            location = location[1:]
        # A JSON syntax error's location is a character offset, not a field.
        field = None if error.get("type") == "json_invalid" or not location else ".".join(location)
        message = str(error.get("msg", "invalid value"))
        if error.get("type") == "json_invalid" and error.get("ctx", {}).get("error"):
            message = f"{message}: {error['ctx']['error']}"
        found.append(FieldError(field=field, message=message, type=str(error.get("type", "value_error"))))
    return found


def is_json_content_type(content_type: str) -> bool:
    """FastAPI's own rule for reading a body as JSON: ``application/json`` or ``application/*+json``."""
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return (
        bool(content_type)
        and message.get_content_maintype() == "application"
        and (subtype == "json" or subtype.endswith("+json"))
    )


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Replace FastAPI's default 422 body, which echoes the input (a NaN in it would not even serialise)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    found = field_errors(errors)
    content_type = request.headers.get("content-type", "")
    if not is_json_content_type(content_type):
        # FastAPI reads a body as JSON only under a JSON content type (curl -d sends a form's): say so rather
        # than that the body "should be a valid dictionary".
        found = [
            FieldError(
                field=None,
                message=f"send the body as JSON with Content-Type: application/json (got {content_type or 'none'!r})",
                type="content_type",
            )
            if error.field is None
            else error
            for error in found
        ]
    detail = [error.model_dump(mode="json") for error in found]
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
