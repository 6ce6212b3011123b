"""Refusals at the edge, before a route sees the request: pure ASGI middleware, so a refused
body is never read whole."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import anyio
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import problems

# No request of this API needs more: the largest body (a job with 16 KB of metadata) holds
# a few thousand values at most.
MAX_VALUES = 10_000


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


class JsonShape:
    """A JSON body that holds more values than any request of this API needs is refused
    (422) before any route parses it: 1 MB of 100,000 unknown fields otherwise costs a
    second of validation on the event loop and a list of 100,000 errors. The check counts
    bytes first (C speed, no parse): strings from the quote marks, values from the commas
    and brackets; only a body those cannot settle is parsed, off the event loop. A value is
    any JSON value or object key. Before authentication, and bounded by the body limit
    outside it."""

    def __init__(self, app: ASGIApp, max_values: int = MAX_VALUES) -> None:
        self.app = app
        self.max_values = max_values

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
        if declared != "application/json":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            try:
                message = await receive()
            except problems.BodyTooLarge as too_large:  # BodyLimit, outside this one
                await problems.too_large(too_large.max_bytes)(scope, receive, send)
                return
            if message["type"] != "http.request":  # the client left
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        refusal = self._counted(body)
        if refusal is _UNSETTLED:
            refusal = await anyio.to_thread.run_sync(self._parsed, body)
        if refusal is not None:
            await problems.problem(
                422, "Invalid request", refusal, errors=[{"field": "body", "message": refusal}]
            )(scope, receive, send)
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body}]), send)

    def _too_many(self) -> str:
        return f"the body holds more than {self.max_values} JSON values"

    def _counted(self, body: bytes) -> str | None:
        # An unescaped quote mark opens or closes a string; counting every \" as escaped
        # can only undercount them (\\" is an escaped backslash, then a real quote), so a
        # refusal here is never wrong.
        strings = (body.count(b'"') - body.count(b'\\"')) // 2
        if strings > self.max_values:
            return self._too_many()
        # Each container holds one more value than its commas, and every key is a string:
        # an upper bound (strings' commas included) that settles an ordinary body unparsed.
        containers = body.count(b"[") + body.count(b"{")
        if body.count(b",") + containers + 1 + strings <= self.max_values:
            return None
        return _UNSETTLED

    def _parsed(self, body: bytes) -> str | None:
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            return None  # the route's own parser says what is wrong with it
        values, pending = 0, [document]  # an object's keys count as values too
        while pending:
            value = pending.pop()
            values += 1 + (len(value) if isinstance(value, dict) else 0)
            if values > self.max_values:
                return self._too_many()
            if isinstance(value, dict):
                pending.extend(value.values())
            elif isinstance(value, list):
                pending.extend(value)
        return None


_UNSETTLED = "unsettled"  # _counted cannot tell: parse


def _replay(messages: list[Message]) -> Receive:
    """A receive() that hands the already-read messages back, then waits like the real one
    would (a disconnect is never invented)."""
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    return receive
