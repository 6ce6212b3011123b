"""`ragline cache stats|clear`: the answer cache (ragline/cache/) for operators."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated

import typer
from sqlmodel import Session

from cli.services import open_services
from ragline import audit
from ragline.audit import Actor
from ragline.cache.stats import cache_stats, clear_cache
from ragline.models import utcnow

cache_app = typer.Typer(
    help="The answer cache: what it holds and saved; clear it.", no_args_is_help=True
)


@cache_app.command("stats")
def stats(
    account: Annotated[str | None, typer.Option(help="an account's name (default: all)")] = None,
    days: Annotated[float, typer.Option(min=0.01, help="the window, in days")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
) -> None:
    """Entries by state; over the window: hit rate, model calls and spend saved, and the
    escalations the cache raised (inconsistent, previously_rejected)."""
    with open_services() as services:
        account_id = services.accounts.account(account).id if account else None
        found = cache_stats(services.engine, utcnow() - timedelta(days=days), account_id)
    if as_json:
        typer.echo(json.dumps(found.as_dict()))
        return
    entries = ", ".join(f"{state} {count}" for state, count in sorted(found.entries.items()))
    typer.echo(f"entries: {sum(found.entries.values())} ({entries or 'none'})")
    typer.echo(f"since {found.since:%Y-%m-%d %H:%M} UTC: {found.finished} jobs finished")
    typer.echo(
        f"  answered from the cache: {found.hits} ({found.hit_rate:.1%}); "
        f"model calls saved {found.hits}, spend saved {found.saved:.6f}"
    )
    typer.echo(
        f"  escalated: inconsistent {found.inconsistent}, "
        f"previously_rejected {found.previously_rejected}"
    )


@cache_app.command("clear")
def clear(
    account: Annotated[str | None, typer.Option(help="an account's name (default: all)")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
) -> None:
    """Delete the cache's entries: the next equivalent questions are answered afresh.
    Reviewed answers go too (the jobs keep them). Recorded in the audit trail."""
    scope = f"account {account}" if account else "every account"
    if not yes:
        typer.confirm(f"clear the answer cache of {scope}?", abort=True)
    with open_services() as services:
        account_id = services.accounts.account(account).id if account else None
        with Session(services.engine) as session:
            removed = clear_cache(session, account_id)
            audit.append(
                session,
                Actor.operator(),
                "cache.clear",
                f"account:{account_id}" if account_id else "cache",
                account_id=account_id,
                after={"entries_removed": removed},
            )
            session.commit()
    typer.echo(f"removed {removed} entries ({scope})")
