"""The review queue."""

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query

from api.auth import authenticator
from api.schemas import ReviewList, ReviewView
from ragline.accounts import Principal
from ragline.models import Role

if TYPE_CHECKING:
    from api.app import ApiServices


# No `from __future__ import annotations` here: FastAPI must see the real Annotated
# dependency types defined inside router().
def router(services: "ApiServices") -> APIRouter:
    routes = APIRouter(tags=["reviews"])
    Caller = Annotated[Principal, Depends(authenticator(services))]

    @routes.get("/v1/reviews", response_model=ReviewList)
    def list_reviews(
        caller: Caller,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> ReviewList:
        """Open review items, oldest first: the caller's account's (every account's for an
        admin)."""
        caller.require(Role.REVIEWER)
        rows = services.jobs.review_queue(
            account_id=caller.visible_account, limit=limit, offset=offset
        )
        return ReviewList(
            items=[ReviewView.of(item, job) for item, job in rows], limit=limit, offset=offset
        )

    return routes
