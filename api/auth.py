"""Who is calling: the API key from `Authorization: Bearer rl_…`, checked, then rate-limited
per key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import Header
from starlette.concurrency import run_in_threadpool

from ragline.accounts import Principal
from ragline.errors import RateLimited

if TYPE_CHECKING:
    from api.app import ApiServices


# The Authorization header as every authenticated route declares it.
AuthorizationHeader = Annotated[
    str | None, Header(description="Bearer rl_… (an API key)", max_length=512)
]


def authenticate(services: ApiServices, authorization: str | None) -> Principal:
    """The caller's principal from its Authorization header, after its rate limit (blocking:
    a database read and a Redis call)."""
    token = None
    if authorization:
        scheme, _, value = authorization.partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else None
    principal = services.core.accounts.authenticate(token)
    wait = services.limiter.take(principal.key_id)
    if wait > 0:
        raise RateLimited("too many requests for this API key", retry_after_s=wait)
    return principal


def authenticator(services: ApiServices) -> Callable[..., Awaitable[Principal]]:
    # async, with the blocking work in a worker thread: FastAPI would run a sync dependency
    # in one anyway, and the role check after it (async) then needs none.
    async def authenticated(authorization: AuthorizationHeader = None) -> Principal:
        return await run_in_threadpool(authenticate, services, authorization)

    return authenticated
