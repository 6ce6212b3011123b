"""Refusals at the edge, before a route sees the request: pure ASGI middleware, so a refused
body is never read whole."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import problems


class BodyLimit:
    """413 for a request body over max_bytes, without reading it into memory: at once when
    its Content-Length says so (no handler runs), else (a chunked body declares no length)
    as soon as the bytes read so far pass the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await problems.too_large(self.max_bytes)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise problems.BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)


class NoNulInUrl:
    """PostgreSQL text cannot hold NUL: an id or a filter with one, compared in a query, is
    a 500 there (SQLite takes it and finds nothing). No id or name has one, so a NUL in the
    path is a 404 and one in the query string a 422 naming the parameter."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = None
            if "\x00" in scope["path"]:
                refusal = problems.problem(404, "Not found", "no resource has a NUL in its path")
            else:
                query = scope["query_string"].decode("latin-1")
                bad = sorted(
                    {name for name, value in parse_qsl(query, True) if "\x00" in name + value}
                )
                if bad:
                    message = "must not contain a NUL character"
                    refusal = problems.problem(
                        422,
                        "Invalid request",
                        "; ".join(f"{name}: {message}" for name in bad),
                        errors=[{"field": name, "message": message} for name in bad],
                    )
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)
