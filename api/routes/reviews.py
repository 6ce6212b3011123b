"""The review queue: list, claim, decide, export (reviewer role)."""

import json
from itertools import chain
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from api.deps import needs
from api.params import Offset, OptionalFlag, OptionalReason, OptionalText, UtcTime
from api.problems import AUTHENTICATED, WITH_BODY, responses
from api.schemas import DecisionRequest, ReviewList, ReviewView
from ragline.accounts import Principal
from ragline.models import Role
from ragline.review import QueueFilter

if TYPE_CHECKING:
    from api.app import ApiServices


# No `from __future__ import annotations` here: FastAPI must see the real Annotated
# dependency types defined inside router().
def router(services: "ApiServices") -> APIRouter:
    routes = APIRouter(prefix="/v1/reviews", tags=["reviews"], responses=responses(*AUTHENTICATED))
    Reviewer = Annotated[Principal, Depends(needs(services, Role.REVIEWER))]
    queue = services.core.review

    @routes.get("", response_model=ReviewList)
    def list_reviews(
        caller: Reviewer,
        reason: OptionalReason = None,
        feature: OptionalText = None,
        overdue: OptionalFlag = None,
        status: Annotated[str, Query(pattern="^(pending|open|claimed|decided|all)$")] = "pending",
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Offset = 0,
    ) -> ReviewList:
        """The caller's account's items (every account's for an admin), most urgent first:
        priority, then due time. pending = open or claimed."""
        filters = QueueFilter(reason=reason, feature=feature, overdue=overdue, status=status)
        rows = queue.list(
            caller.visible_account, filters, limit=limit, offset=offset, reader=caller
        )
        return ReviewList(
            items=[ReviewView.of(item, job) for item, job in rows], limit=limit, offset=offset
        )

    @routes.get("/export", response_class=StreamingResponse)
    def export(caller: Reviewer, since: UtcTime | None = None) -> StreamingResponse:
        """Every decision as one JSON line: question, passages, draft, final answer,
        verdict (the evaluation dataset format)."""
        examples = queue.examples(caller.visible_account, since, reader=caller)
        # The query runs here, before the 200 is sent: once streaming, a failure can only
        # cut the body short, which a client may take for the whole export.
        first = next(examples, None)
        every = examples if first is None else chain([first], examples)
        lines = (json.dumps(example, ensure_ascii=False) + "\n" for example in every)
        return StreamingResponse(lines, media_type="application/x-ndjson")

    @routes.get("/{item_id}", response_model=ReviewView, responses=responses(404))
    def get_review(item_id: int, caller: Reviewer) -> ReviewView:
        return ReviewView.of(*queue.get(item_id, caller.visible_account, reader=caller))

    @routes.post("/{item_id}/claim", response_model=ReviewView, responses=responses(404, 409))
    def claim(item_id: int, caller: Reviewer) -> ReviewView:
        """Take the item for review.claim_minutes (again: extend your claim). 409 when
        someone else holds it (the detail says who and until when) or it is decided."""
        queue.claim(item_id, caller)
        return ReviewView.of(*queue.get(item_id, caller.visible_account, reader=caller))

    @routes.post("/{item_id}/release", response_model=ReviewView, responses=responses(404, 409))
    def release(item_id: int, caller: Reviewer) -> ReviewView:
        queue.release(item_id, caller)
        return ReviewView.of(*queue.get(item_id, caller.visible_account, reader=caller))

    @routes.post(
        "/{item_id}/decision",
        response_model=ReviewView,
        responses=responses(*WITH_BODY, 404, 409),
    )
    def decide(item_id: int, body: DecisionRequest, caller: Reviewer) -> ReviewView:
        """approve | edit (answer) | reject (reason_code) for an escalation; good | bad
        (optional answer: the correction) for a sampled answer. Needs your live claim."""
        item, job = queue.decide(
            item_id,
            caller,
            body.decision,
            answer=body.answer,
            reason_code=body.reason_code,
            note=body.note,
        )
        return ReviewView.of(item, job)

    return routes
