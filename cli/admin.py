"""`ragline accounts|keys|usage`: administration straight on the database, for the host
that runs ragline (this is how the first admin key is made)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import typer

from cli.services import open_services
from ragline.accounts import MAX_SECRET_OVERLAP, SECRET_OVERLAP
from ragline.audit import Actor
from ragline.models import Role, utcnow

accounts_app = typer.Typer(help="Create and list accounts (tenants).", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@accounts_app.command("create")
def create_account(name: Annotated[str, typer.Argument(help="lowercase, e.g. acme")]) -> None:
    """Create an account."""
    with open_services() as services:
        account = services.accounts.create_account(name, actor=Actor.operator())
        typer.echo(f"created account {account.name} ({account.id})")


@accounts_app.command("list")
def list_accounts() -> None:
    """List accounts."""
    with open_services() as services:
        for account in services.accounts.accounts():
            typer.echo(f"{account.name:<24} {account.id}  created {account.created_at:%Y-%m-%d}")


@accounts_app.command("webhook-secret")
def webhook_secret(
    name: Annotated[str, typer.Argument(help="the account")],
    rotate: Annotated[bool, typer.Option(help="replace it with a new one")] = False,
    overlap_hours: Annotated[
        float,
        typer.Option(
            min=0,
            max=MAX_SECRET_OVERLAP / timedelta(hours=1),
            help="with --rotate: how long deliveries also carry the old secret's signature "
            "(0: the old one stops at once, e.g. it leaked)",
        ),
    ] = SECRET_OVERLAP / timedelta(hours=1),
) -> None:
    """Print the whsec_ secret that signs the account's webhooks (give it to the receiver)."""
    with open_services() as services:
        accounts = services.accounts
        if not rotate:
            typer.echo(accounts.account(name).webhook_secret)
            return
        account = accounts.rotate_webhook_secret(
            name, overlap=timedelta(hours=overlap_hours), actor=Actor.operator()
        )
        typer.echo(account.webhook_secret)
        if account.previous_secret_until is not None:
            until = f"{account.previous_secret_until:%Y-%m-%d %H:%M} UTC"
            typer.echo(f"the old secret also signs deliveries until {until}", err=True)


@keys_app.command("create")
def create_key(
    account: Annotated[str, typer.Option(help="the account the key belongs to")],
    role: Annotated[
        list[Role], typer.Option(help="submitter, reviewer, indexer or admin; repeatable")
    ],
    group: Annotated[
        list[str] | None, typer.Option(help="document group for retrieval; repeatable")
    ] = None,
    name: Annotated[str, typer.Option(help="what the key is for")] = "",
    expires_in_days: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """Create a key and print it. It is shown this once; only its hash is stored."""
    expires_at: datetime | None = (
        utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    )
    with open_services() as services:
        issued = services.accounts.create_key(
            account,
            roles=[r.value for r in role],
            groups=group or ["everyone"],
            name=name,
            expires_at=expires_at,
            actor=Actor.operator(),
        )
    typer.echo(issued.plaintext)
    typer.echo(
        f"key {issued.key.id} for {account}: roles {', '.join(issued.key.roles)}; "
        "store it now, it cannot be shown again",
        err=True,
    )


@keys_app.command("list")
def list_keys(account: Annotated[str | None, typer.Option()] = None) -> None:
    """List keys (never their secrets)."""
    with open_services() as services:
        accounts = services.accounts
        account_id = accounts.account(account).id if account else None
        now = utcnow()
        for key, owner in accounts.keys(account_id):
            state = (
                "revoked"
                if key.revoked_at
                else "expired"
                if key.expires_at and key.expires_at <= now
                else "active"
            )
            used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never used"
            typer.echo(
                f"{key.id}  {owner.name:<16} {state:<8} {','.join(key.roles):<36} "
                f"groups={','.join(key.groups)} last used {used}  {key.name}"
            )


@keys_app.command("revoke")
def revoke_key(key_id: Annotated[str, typer.Argument(help="the id shown by `keys list`")]) -> None:
    """Revoke a key: it stops working at once."""
    with open_services() as services:
        key = services.accounts.revoke_key(key_id, actor=Actor.operator())
        typer.echo(f"revoked {key.id}")


def usage(
    group_by: Annotated[str, typer.Option(help="feature, account, model or kind")] = "feature",
    start: Annotated[datetime | None, typer.Option("--from", help="UTC, inclusive")] = None,
    end: Annotated[datetime | None, typer.Option("--to", help="UTC, exclusive")] = None,
    account: Annotated[str | None, typer.Option(help="one account only")] = None,
) -> None:
    """Spend from the usage ledger, grouped (the same figures as GET /v1/usage)."""
    from datetime import UTC

    if group_by not in ("feature", "account", "model", "kind"):
        raise typer.BadParameter("use feature, account, model or kind", param_hint="--group-by")
    with open_services() as services:
        account_id = services.accounts.account(account).id if account else None
        rows = services.budgets.usage(
            group_by,  # type: ignore[arg-type]
            account_id=account_id,
            start=start.replace(tzinfo=UTC) if start else None,
            end=end.replace(tzinfo=UTC) if end else None,
        )
    typer.echo(f"{group_by:<32} {'calls':>8} {'tokens in':>12} {'tokens out':>12} {'cost':>14}")
    for row in rows:
        typer.echo(
            f"{row[group_by]!s:<32} {row['calls']:>8} {row['input_tokens']:>12} "
            f"{row['output_tokens']:>12} {row['cost']:>14.6f}"
        )
    total = sum(row["cost_micros"] for row in rows) / 1_000_000
    typer.echo(f"{'total':<32} {sum(r['calls'] for r in rows):>8} {'':>12} {'':>12} {total:>14.6f}")
