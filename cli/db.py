"""`ragline db upgrade|current|history`: the database's schema revision (ragline.schema)."""

from __future__ import annotations

import typer
from sqlmodel import Session

from cli.services import open_services
from ragline import audit
from ragline.audit import Actor
from ragline.bootstrap import Mode
from ragline.schema import BASELINE, current, head, history, upgrade_to_head

db_app = typer.Typer(
    help="The database's schema: upgrade it to this release, show its revision, list them.",
    no_args_is_help=True,
)


@db_app.command("upgrade")
def upgrade() -> None:
    """Apply every migration the database lacks (a new database gets them all). Back up a
    SQLite file first: SQLite cannot roll a half-applied revision back; PostgreSQL does."""
    with open_services(Mode.MIGRATE) as services:
        before, after = upgrade_to_head(services.engine)
        if before != after:
            with Session(services.engine) as session:
                audit.append(
                    session,
                    Actor.operator(),
                    "schema.upgrade",
                    "database",
                    before={"revision": before},
                    after={"revision": after},
                )
                session.commit()
    if before == after:
        typer.echo(f"the database is at {after}, this release's schema: nothing to do")
    else:
        typer.echo(f"upgraded the database from {before or 'empty'} to {after}")


@db_app.command("current")
def show_current() -> None:
    """The database's revision, and whether this release needs an upgrade."""
    with open_services(Mode.MIGRATE) as services:
        revision = current(services.engine)
    if revision is None:
        typer.echo(f"empty: any ragline command creates it at {head()}")
    elif revision == head():
        typer.echo(f"{revision} (this release's schema)")
    else:
        made = " (made before migrations)" if revision == BASELINE else ""
        typer.echo(f"{revision}{made}; this release needs {head()}: run `ragline db upgrade`")


@db_app.command("history")
def show_history() -> None:
    """Every revision, oldest first; * marks this release's."""
    for revision in history():
        mark = "*" if revision.id == head() else " "
        typer.echo(f"{mark} {revision.id}  {revision.message.splitlines()[0]}")
