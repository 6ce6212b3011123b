"""Errors as RFC 9457 problem+json, mapped once from ragline's error tree."""

from __future__ import annotations

import math
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ragline.errors import (
    Conflict,
    DatabaseUnavailable,
    Forbidden,
    InvalidInput,
    NotFound,
    Overloaded,
    RateLimited,
    TransientError,
    Unauthenticated,
)

log = structlog.get_logger("ragline.api")

MEDIA_TYPE = "application/problem+json"

# What problem() writes, for the OpenAPI document. Inline rather than a component: FastAPI
# files a response `model` under the route's own media type (application/json).
SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

_MEANING = {
    400: "The body is not JSON the server can parse",
    401: "No valid API key",
    403: "The key lacks the role",
    404: "Not found (or another account's)",
    409: "Conflicts with the current state",
    413: "The request body is over api.max_body_bytes",
    422: "Invalid request; `errors` names each field",
    429: "Over the key's rate limit (Retry-After)",
    503: "Unavailable: the database, the queue (Retry-After) or the store",
}

# Every route behind an API key can answer these.
AUTHENTICATED = (401, 403, 422, 429, 503)
# ... and a route that reads a JSON body these as well.
WITH_BODY = (400, 413)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error responses a route declares in the OpenAPI document, all problem+json."""
    return {
        status: {"description": _MEANING[status], "content": {MEDIA_TYPE: {"schema": SCHEMA}}}
        for status in statuses
    }


def problem(
    status: int,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def too_large(max_bytes: int) -> JSONResponse:
    detail = f"the request body is over the limit of {max_bytes} bytes"
    return problem(413, "Content too large", detail)


class BodyTooLarge(StarletteHTTPException):
    """Raised while a body is read, once it passes the limit. An HTTPException because
    FastAPI's body reader lets those through (any other error there becomes a 400)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413)
        self.max_bytes = max_bytes


def _retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


MAX_ERRORS = 20  # listed in a 422; error_count says how many there were
FIELD_CHARS = 200
MESSAGE_CHARS = 300


def _field_of(location: tuple[Any, ...]) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        found = error.errors()
        unparsed = next((e for e in found if e.get("type") == "json_invalid"), None)
        if unparsed is not None:  # e.g. truncated: not a JSON document at all
            where = (unparsed.get("ctx") or {}).get("error", "")
            return problem(400, "Bad request", f"the body is not valid JSON: {where}".strip())
        # The first few errors and a count: a body of 100,000 unknown fields must not buy a
        # 10 MB answer (nor the CPU to write it).
        errors = [
            {
                "field": _field_of(tuple(e.get("loc", ())))[:FIELD_CHARS],
                "message": str(e.get("msg", "invalid"))[:MESSAGE_CHARS],
            }
            for e in found[:MAX_ERRORS]
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        if len(found) > MAX_ERRORS:
            detail += f"; and {len(found) - MAX_ERRORS} more errors"
        declared = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if declared != "application/json" and any(e["field"] == "body" for e in errors):
            # FastAPI reads a body not declared as JSON as bytes: say what to send.
            detail = (
                f"the body must be JSON sent with Content-Type: application/json "
                f"(got {declared or 'no Content-Type'}); {detail}"
            )
        return problem(422, "Invalid request", detail, errors=errors, error_count=len(found))

    @app.exception_handler(InvalidInput)
    async def invalid_input(_: Request, error: InvalidInput) -> JSONResponse:
        field = error.field or "body"
        return problem(
            422,
            "Invalid request",
            str(error),
            errors=[{"field": field, "message": str(error)}],
        )

    @app.exception_handler(Unauthenticated)
    async def unauthenticated(_: Request, error: Unauthenticated) -> JSONResponse:
        return problem(
            401, "Unauthorized", str(error), headers={"WWW-Authenticate": 'Bearer realm="ragline"'}
        )

    @app.exception_handler(Forbidden)
    async def forbidden(_: Request, error: Forbidden) -> JSONResponse:
        return problem(403, "Forbidden", str(error))

    @app.exception_handler(RateLimited)
    async def rate_limited(_: Request, error: RateLimited) -> JSONResponse:
        return problem(
            429, "Too many requests", str(error), headers=_retry_after(error.retry_after_s)
        )

    @app.exception_handler(Overloaded)
    async def overloaded(_: Request, error: Overloaded) -> JSONResponse:
        return problem(503, "Overloaded", str(error), headers=_retry_after(error.retry_after_s))

    @app.exception_handler(NotFound)
    async def not_found(_: Request, error: NotFound) -> JSONResponse:
        return problem(404, "Not found", str(error))

    @app.exception_handler(Conflict)
    async def conflict(_: Request, error: Conflict) -> JSONResponse:
        return problem(409, "Conflict", str(error))

    @app.exception_handler(TransientError)
    async def unavailable(_: Request, error: TransientError) -> JSONResponse:
        return problem(503, "Service unavailable", str(error))

    @app.exception_handler(DatabaseUnavailable)
    async def database_down(_: Request, error: DatabaseUnavailable) -> JSONResponse:
        log.warning("database_unavailable", error=str(error))
        return problem(503, "Service unavailable", "the database is unavailable; retry later")

    @app.exception_handler(BodyTooLarge)
    async def body_too_large(_: Request, error: BodyTooLarge) -> JSONResponse:
        return too_large(error.max_bytes)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return problem(error.status_code, "HTTP error", str(error.detail))
