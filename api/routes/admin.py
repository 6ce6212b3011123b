"""Administration: accounts, API keys and budget limits. Admin role only."""

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import needs
from api.problems import AUTHENTICATED, WITH_BODY, responses
from api.schemas import (
    AccountCreate,
    AccountView,
    BudgetSet,
    BudgetView,
    IssuedKeyView,
    KeyCreate,
    KeyView,
    WebhookSecret,
)
from ragline.accounts import MAX_SECRET_OVERLAP, SECRET_OVERLAP, Principal
from ragline.budget import BudgetStatus, from_micros
from ragline.errors import InvalidInput
from ragline.models import Role

if TYPE_CHECKING:
    from api.app import ApiServices

OVERLAP_HOURS = SECRET_OVERLAP / timedelta(hours=1)
MAX_OVERLAP_HOURS = MAX_SECRET_OVERLAP / timedelta(hours=1)


# No `from __future__ import annotations` here: FastAPI must see the real Annotated
# dependency types defined inside router().
def router(services: "ApiServices") -> APIRouter:
    routes = APIRouter(prefix="/v1/admin", tags=["admin"], responses=responses(*AUTHENTICATED))
    Admin = Annotated[Principal, Depends(needs(services, Role.ADMIN))]
    accounts = services.core.accounts

    @routes.post(
        "/accounts",
        status_code=201,
        response_model=AccountView,
        responses=responses(*WITH_BODY, 409),
    )
    def create_account(body: AccountCreate, caller: Admin) -> AccountView:
        account = accounts.create_account(body.name, actor=caller.actor)
        return AccountView(id=account.id, name=account.name, created_at=account.created_at)

    @routes.get("/accounts", response_model=list[AccountView])
    def list_accounts(_: Admin) -> list[AccountView]:
        return [
            AccountView(id=a.id, name=a.name, created_at=a.created_at) for a in accounts.accounts()
        ]

    @routes.get(
        "/accounts/{name}/webhook-secret", response_model=WebhookSecret, responses=responses(404)
    )
    def webhook_secret(name: str, _: Admin) -> WebhookSecret:
        """The secret that signs this account's webhooks: give it to the receiver."""
        return WebhookSecret(account=name, secret=accounts.account(name).webhook_secret)

    @routes.post(
        "/accounts/{name}/webhook-secret", response_model=WebhookSecret, responses=responses(404)
    )
    def rotate_webhook_secret(
        name: str,
        caller: Admin,
        overlap_hours: Annotated[float, Query(ge=0, le=MAX_OVERLAP_HOURS)] = OVERLAP_HOURS,
    ) -> WebhookSecret:
        """Replace the secret. For overlap_hours (default 24) deliveries carry a signature
        by the old secret too, so the receiver can switch at its own pace; 0 cuts over at
        once (the old secret leaked)."""
        account = accounts.rotate_webhook_secret(
            name, overlap=timedelta(hours=overlap_hours), actor=caller.actor
        )
        return WebhookSecret(
            account=name,
            secret=account.webhook_secret,
            previous_valid_until=account.previous_secret_until,
        )

    @routes.post(
        "/keys",
        status_code=201,
        response_model=IssuedKeyView,
        responses=responses(*WITH_BODY, 404),
    )
    def create_key(body: KeyCreate, caller: Admin) -> IssuedKeyView:
        issued = accounts.create_key(
            body.account,
            roles=[r.value for r in body.roles],
            groups=body.groups,
            name=body.name,
            expires_at=body.expires_at,
            actor=caller.actor,
        )
        view = KeyView.of(issued.key, body.account)
        return IssuedKeyView(**view.model_dump(), key=issued.plaintext)

    @routes.get("/keys", response_model=list[KeyView], responses=responses(404))
    def list_keys(_: Admin, account: Annotated[str | None, Query()] = None) -> list[KeyView]:
        account_id = accounts.account(account).id if account else None
        return [KeyView.of(key, owner.name) for key, owner in accounts.keys(account_id)]

    @routes.delete("/keys/{key_id}", response_model=KeyView, responses=responses(404))
    def revoke_key(key_id: str, caller: Admin) -> KeyView:
        key = accounts.revoke_key(key_id, actor=caller.actor)
        return KeyView.of(key, services.core.jobs.account_name(key.account_id))

    @routes.put("/budgets", response_model=list[BudgetView], responses=responses(*WITH_BODY, 404))
    def set_budget(body: BudgetSet, caller: Admin) -> list[BudgetView]:
        account = accounts.account(body.account)  # 404 for an unknown account
        if (body.scope == "feature") != (body.feature is not None):
            raise InvalidInput("feature is required for scope 'feature' and only then", "feature")
        subject = body.account if body.scope == "account" else f"{body.account}/{body.feature}"
        services.core.budgets.set_limit(
            body.scope,
            subject,
            body.window,
            body.limit,
            by=caller.key_id,
            actor=caller.actor,
            account_id=account.id,
        )
        return _budgets(services, body.account, body.feature)

    @routes.get("/budgets", response_model=list[BudgetView], responses=responses(404))
    def get_budgets(
        _: Admin, account: Annotated[str, Query()], feature: Annotated[str | None, Query()] = None
    ) -> list[BudgetView]:
        accounts.account(account)
        return _budgets(services, account, feature)

    return routes


def _budgets(services: "ApiServices", account: str, feature: str | None) -> list[BudgetView]:
    return [_view(status) for status in services.core.budgets.status(account, feature)]


def _view(status: BudgetStatus) -> BudgetView:
    ref = status.ref
    return BudgetView(
        scope=ref.scope,
        subject=ref.subject,
        window=ref.window,
        period=ref.period,
        limit=None if status.limit_micros is None else from_micros(status.limit_micros),
        spent=from_micros(status.spent_micros),
        reserved=from_micros(status.reserved_micros),
    )
