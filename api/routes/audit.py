"""The audit trail and the erasure of a person's data. Admin role only."""

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import needs
from api.params import OptionalText, OptionalUtcTime
from api.problems import AUTHENTICATED, responses
from api.schemas import AuditEntryView, AuditList, ErasureView
from ragline import audit
from ragline.accounts import Principal
from ragline.erasure import erase_user
from ragline.models import Role

if TYPE_CHECKING:
    from api.app import ApiServices


# No `from __future__ import annotations` here: FastAPI must see the real Annotated
# dependency types defined inside router().
def router(services: "ApiServices") -> APIRouter:
    routes = APIRouter(tags=["audit"], responses=responses(*AUTHENTICATED))
    Admin = Annotated[Principal, Depends(needs(services, Role.ADMIN))]
    core = services.core

    @routes.get("/v1/audit", response_model=AuditList, responses=responses(404, 422))
    def list_audit(
        _: Admin,
        account: Annotated[OptionalText, Query(description="an account's name")] = None,
        action: Annotated[
            OptionalText, Query(description="e.g. key.revoke, or key. for all")
        ] = None,
        actor: Annotated[OptionalText, Query(description="e.g. key:3f2a…")] = None,
        target: OptionalText = None,
        since: Annotated[OptionalUtcTime, Query(description="inclusive; UTC unless zoned")] = None,
        until: Annotated[OptionalUtcTime, Query(description="exclusive")] = None,
        limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 100,
        cursor: OptionalText = None,
    ) -> AuditList:
        """Who changed what and when, newest first. Entries are hash-chained: `ragline
        audit verify` checks that none was changed or removed."""
        account_id = core.accounts.account(account).id if account else None
        query = audit.AuditQuery(
            account_id=account_id,
            action=action,
            actor=actor,
            target=target,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        )
        entries, next_cursor = audit.entries(core.engine, query)
        return AuditList(items=[AuditEntryView.of(e) for e in entries], next_cursor=next_cursor)

    @routes.delete(
        "/v1/users/{user_id:path}", response_model=ErasureView, responses=responses(404, 409, 422)
    )
    def erase(
        user_id: str,
        caller: Admin,
        account: Annotated[
            str | None, Query(description="only in this account (default: every account)")
        ] = None,
    ) -> ErasureView:
        """Erase everything held about an end user (the `user_id` their jobs were submitted
        with): jobs, review items, deliveries, evaluation items' text. The usage ledger keeps
        its amounts; the audit trail records the erasure under a digest of the id. 404 when
        nothing is held; 409 (nothing erased) while one of their jobs is running."""
        done = erase_user(core.engine, user_id, caller.actor, account)
        return ErasureView(
            user_id=user_id,
            user_ref=done.user_ref,
            accounts=done.accounts,
            jobs=done.jobs,
            review_items=done.review_items,
            deliveries=done.deliveries,
            eval_items=done.eval_items,
            audit_seqs=done.audit_seqs,
        )

    return routes
