"""Spend from the usage ledger."""

from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Depends, Query

from api.deps import needs
from api.params import UtcTime
from api.problems import AUTHENTICATED, responses
from api.schemas import UsageReport, UsageRow
from ragline.accounts import Principal
from ragline.errors import NotFound
from ragline.models import Role

if TYPE_CHECKING:
    from api.app import ApiServices


# No `from __future__ import annotations` here: FastAPI must see the real Annotated
# dependency types defined inside router().
def router(services: "ApiServices") -> APIRouter:
    routes = APIRouter(tags=["usage"], responses=responses(*AUTHENTICATED))
    # The README grants usage to submitters (and admins): what the account spends.
    Caller = Annotated[Principal, Depends(needs(services, Role.SUBMITTER))]

    @routes.get("/v1/usage", response_model=UsageReport, responses=responses(404))
    def usage(
        caller: Caller,
        group_by: Literal["feature", "account", "model", "kind"] = "feature",
        start: Annotated[UtcTime | None, Query(alias="from")] = None,
        end: Annotated[UtcTime | None, Query(alias="to")] = None,
        account: Annotated[str | None, Query(description="admins: one account")] = None,
    ) -> UsageReport:
        """Calls, tokens and cost in [from, to), grouped; the caller's own account only,
        unless the caller is an admin, who also sees evaluation and replay calls (kind
        `eval`, `replay`; by account, `(eval)` and `(replay)`)."""
        account_id = caller.visible_account
        if account is not None:
            if caller.is_admin:
                account_id = services.core.accounts.account(account).id
            elif account != caller.account_name:
                raise NotFound(f"account '{account}' does not exist")
        rows = [
            UsageRow(key=str(r[group_by]), **{k: v for k, v in r.items() if k != group_by})
            for r in services.core.budgets.usage(
                group_by, account_id=account_id, start=start, end=end
            )
        ]
        total = UsageRow(
            key="total",
            calls=sum(r.calls for r in rows),
            input_tokens=sum(r.input_tokens for r in rows),
            output_tokens=sum(r.output_tokens for r in rows),
            cost_micros=sum(r.cost_micros for r in rows),
            cost=sum(r.cost_micros for r in rows) / 1_000_000,
        )
        return UsageReport(group_by=group_by, start=start, end=end, rows=rows, total=total)

    return routes
