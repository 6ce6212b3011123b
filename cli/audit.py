"""`ragline audit verify|list` (the audit trail, ragline.audit) and `ragline erase` (a
person's data, ragline.erasure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from cli.services import open_services
from ragline import audit
from ragline.audit import Actor
from ragline.erasure import erase_user

audit_app = typer.Typer(
    help="The audit trail: check it was not tampered with, list who changed what.",
    no_args_is_help=True,
)


@audit_app.command("verify")
def verify() -> None:
    """Recompute the hash chain from the first entry. Exits 1 at the first entry changed,
    removed or out of order. Keep the head hash it prints somewhere else: a chain rewritten
    from some entry on is only detectable against a hash kept outside the database."""
    with open_services() as services:
        report = audit.verify(services.engine)
    if not report.intact:
        typer.echo(f"BROKEN at entry {report.broken_at}: {report.problem}", err=True)
        typer.echo(f"{report.entries} entries before it verified", err=True)
        raise typer.Exit(1)
    typer.echo(f"intact: {report.entries} entries; head {report.head_seq} {report.head_hash}")


@audit_app.command("list")
def list_entries(
    account: Annotated[str | None, typer.Option(help="an account's name")] = None,
    action: Annotated[
        str | None, typer.Option(help="an action, or a prefix ending in '.', e.g. key.")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="e.g. key:3f2a… or operator:alice")] = None,
    since: Annotated[datetime | None, typer.Option(help="UTC, inclusive")] = None,
    limit: Annotated[int, typer.Option(min=1, max=audit.MAX_PAGE)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """The newest entries first."""
    with open_services() as services:
        account_id = services.accounts.account(account).id if account else None
        query = audit.AuditQuery(
            account_id=account_id,
            action=action,
            actor=actor,
            since=since.replace(tzinfo=UTC) if since else None,
            limit=limit,
        )
        entries, _ = audit.entries(services.engine, query)
    for entry in entries:
        if as_json:
            typer.echo(json.dumps(entry.model_dump(mode="json"), sort_keys=True))
            continue
        change = json.dumps(entry.after, sort_keys=True) if entry.after else ""
        typer.echo(
            f"{entry.seq:>6}  {entry.at:%Y-%m-%d %H:%M:%S}  {entry.actor:<28} "
            f"{entry.action:<30} {entry.target}  {change}"
        )


def erase_command(
    user: Annotated[str, typer.Option("--user", help="the user_id their jobs carry")],
    account: Annotated[
        str | None, typer.Option(help="only in this account (default: every account)")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> None:
    """Erase everything held about an end user: their jobs with review items and
    deliveries, and their evaluation items' text. The usage ledger keeps its amounts; the
    audit trail records the erasure under a digest of the id. Cannot be undone."""
    scope = f"account {account}" if account else "every account"
    if not yes:
        typer.confirm(
            f"Erase all data of user {user!r} in {scope}? This cannot be undone", abort=True
        )
    with open_services() as services:
        done = erase_user(services.engine, user, Actor.operator(), account)
    typer.echo(
        f"erased user {user!r} in {', '.join(done.accounts)}: {done.jobs} jobs, "
        f"{done.review_items} review items, {done.deliveries} deliveries, "
        f"{done.eval_items} evaluation items blanked; audit entries "
        f"{', '.join(map(str, done.audit_seqs))} ({done.user_ref})"
    )
