"""Who is calling: the API key from `Authorization: Bearer rl_…`, checked, then rate-limited
per key."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import Header

from ragline.accounts import Principal
from ragline.errors import RateLimited

if TYPE_CHECKING:
    from api.app import ApiServices


def authenticator(services: ApiServices) -> Callable[..., Principal]:
    def authenticate(
        authorization: Annotated[
            str | None, Header(description="Bearer rl_… (an API key)", max_length=512)
        ] = None,
    ) -> Principal:
        token = None
        if authorization:
            scheme, _, value = authorization.partition(" ")
            token = value.strip() if scheme.lower() == "bearer" else None
        principal = services.core.accounts.authenticate(token)
        wait = services.limiter.take(principal.key_id)
        if wait > 0:
            raise RateLimited("too many requests for this API key", retry_after_s=wait)
        return principal

    return authenticate
