"""The one way a route says who may call it: `needs(services, Role.X, …)` is a FastAPI
dependency that authenticates the key (rate limit included) and checks that it holds one
of the roles (admin holds every role)."""

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import Request

from api.auth import AuthorizationHeader, authenticator
from ragline.accounts import Principal
from ragline.models import Role

if TYPE_CHECKING:
    from api.app import ApiServices


# No `from __future__ import annotations` here: FastAPI must see the real Annotated
# dependency type of check(), which names a local.
def needs(services: "ApiServices", *roles: Role) -> Callable[..., Awaitable[Principal]]:
    """Without roles: any valid key (what it may do is decided further in, e.g. admission
    checks the submitter role)."""
    authenticate = authenticator(services)

    # One dependency, not one on top of another: FastAPI solves each level per request.
    async def check(request: Request, authorization: AuthorizationHeader = None) -> Principal:
        caller = await authenticate(request, authorization)
        if len(roles) == 1:
            caller.require(roles[0])
        elif roles:
            caller.require_any(*roles)
        return caller

    return check
