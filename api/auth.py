"""Who is calling: the API key from `Authorization: Bearer rl_…`, checked, then rate-limited
per key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import Header, Request
from starlette.concurrency import run_in_threadpool

from ragline.accounts import Principal
from ragline.errors import RateLimited, Unauthenticated

if TYPE_CHECKING:
    from api.app import ApiServices


# The Authorization header as every authenticated route declares it.
AuthorizationHeader = Annotated[
    str | None, Header(description="Bearer rl_… (an API key)", max_length=512)
]


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def authenticator(services: ApiServices) -> Callable[..., Awaitable[Principal]]:
    """The caller's principal from its Authorization header, after its rate limit."""

    failures = services.failed_auth

    # async: a key this process checked a moment ago (Accounts.recent) and the rate limit
    # (asyncio Redis) need no worker thread; only reading a key from the database does.
    async def authenticated(
        request: Request, authorization: AuthorizationHeader = None
    ) -> Principal:
        token = bearer(authorization)
        principal = services.core.accounts.recent(token)
        if principal is None:
            address = client_address(request)
            refused_for = failures.wait(address) if token else 0.0
            if refused_for > 0:  # before the database: guessing costs it nothing
                raise RateLimited(
                    "too many failed authentications from this address", retry_after_s=refused_for
                )
            try:
                principal = await run_in_threadpool(services.core.accounts.authenticate, token)
            except Unauthenticated:
                if token:  # a key was presented and checked: that is what costs
                    failures.take(address)
                raise
        wait = await services.limiter.take_async(principal.key_id)
        if wait > 0:
            raise RateLimited("too many requests for this API key", retry_after_s=wait)
        return principal

    return authenticated


def client_address(request: Request) -> str:
    """The peer's address: the connection's, or the one a trusted proxy forwarded
    (RAGLINE_TRUSTED_PROXIES; by default no X-Forwarded-For is believed)."""
    return request.client.host if request.client else "unknown"
