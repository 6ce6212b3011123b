"""Webhook deliveries: what was sent where, and sending a failed one again."""

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import needs
from api.params import Offset
from api.problems import AUTHENTICATED, responses
from api.schemas import DeliveryList, DeliveryView
from ragline.accounts import Principal
from ragline.models import Role

if TYPE_CHECKING:
    from api.app import ApiServices


# No `from __future__ import annotations` here: FastAPI must see the real Annotated
# dependency types defined inside router().
def router(services: "ApiServices") -> APIRouter:
    routes = APIRouter(
        prefix="/v1/deliveries", tags=["deliveries"], responses=responses(*AUTHENTICATED)
    )
    Caller = Annotated[Principal, Depends(needs(services, Role.SUBMITTER))]

    @routes.get("", response_model=DeliveryList)
    def list_deliveries(
        caller: Caller,
        status: Annotated[str | None, Query(pattern="^(pending|delivered|failed)$")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Offset = 0,
    ) -> DeliveryList:
        """The caller's account's deliveries, newest first (every account's for an admin)."""
        rows = services.core.deliverer.list(caller.visible_account, status, limit, offset)
        return DeliveryList(items=[DeliveryView.of(d) for d in rows], limit=limit, offset=offset)

    @routes.post("/{delivery_id}/resend", response_model=DeliveryView, responses=responses(404))
    def resend(delivery_id: str, caller: Caller) -> DeliveryView:
        """Send again from attempt one, with the same webhook-id (receivers de-duplicate)."""
        resent = services.core.deliverer.resend(
            delivery_id, caller.visible_account, actor=caller.actor
        )
        return DeliveryView.of(resent)

    return routes
