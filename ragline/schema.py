"""The database schema and its revisions (Alembic, ragline/migrations/).

Every process checks the revision at start-up (ragline.bootstrap):

- an empty database is created from the models and stamped at the newest revision;
- a database at the newest revision is used as it is;
- a database behind it is upgraded by `ragline db upgrade`, or by the process itself in
  embedded mode (one process owns the database there); any other process refuses to start
  with SchemaBehind, which names the command;
- a database made before migrations existed (tables, no revision) is at the baseline
  revision: it upgrades like any other;
- a revision this code does not know (a newer release wrote it) is refused.

A failed upgrade leaves PostgreSQL at its previous revision (its DDL is transactional);
SQLite commits each statement of a revision, so back up the file before upgrading it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import SQLModel

from ragline import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from ragline.errors import ConfigError

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001"  # the schema of the last release without migrations

# Any constant works; it only has to be the same in every ragline process.
SCHEMA_LOCK_ID = 0x7261676C


class SchemaBehind(ConfigError):
    """The database is at an older revision than this code, or at one it does not know."""


@dataclass(frozen=True)
class Revision:
    id: str
    message: str
    down: str | None


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS))


def head() -> str:
    revision = _scripts().get_current_head()
    assert revision is not None
    return revision


def history() -> list[Revision]:
    """Every revision, oldest first."""
    found = []
    for script in _scripts().walk_revisions():
        down = script.down_revision
        found.append(
            Revision(script.revision, script.doc or "", down if isinstance(down, str) else None)
        )
    return list(reversed(found))


def current(engine: Engine) -> str | None:
    """The database's revision; BASELINE for a database made before migrations; None for
    an empty one."""
    with engine.connect() as connection:
        return _revision(connection)


def _revision(connection: Connection) -> str | None:
    found = MigrationContext.configure(connection).get_current_revision()
    if found is None and inspect(connection).has_table("jobs"):
        return BASELINE
    return found


def prepare(engine: Engine, *, upgrade: bool) -> None:
    """Make the database usable by this code at start-up (see the module's docstring);
    upgrade: this process may upgrade it (embedded mode)."""
    with _locked(engine):
        revision = current(engine)
        if revision is None:
            create_schema(engine)
            return
        if revision == head():
            return
        known = {r.id for r in history()}
        if revision not in known:
            raise SchemaBehind(
                f"the database is at schema revision {revision}, which this ragline does not "
                f"know (it expects {head()}): it was upgraded by a newer release"
            )
        if not upgrade:
            raise SchemaBehind(
                f"the database is at schema revision {revision}, this ragline needs {head()}: "
                "run `ragline db upgrade` (back up a SQLite file first), then start again"
            )
        upgrade_to_head(engine)


def upgrade_to_head(engine: Engine) -> tuple[str | None, str]:
    """Apply every revision after the database's; returns (before, after)."""
    before = current(engine)
    with engine.connect() as connection, _foreign_keys_deferred(connection), connection.begin():
        unstamped = MigrationContext.configure(connection).get_current_revision() is None
        if before == BASELINE and unstamped:
            # Made before migrations: its tables are the baseline's.
            command.stamp(_config(connection), BASELINE)
        command.upgrade(_config(connection), "head")
        _check_foreign_keys(connection)
    return before, head()


@contextmanager
def _foreign_keys_deferred(connection: Connection) -> Iterator[None]:
    """SQLite alters a table by copying it and dropping the original, which the foreign
    keys pointing at it refuse while they are enforced: off for the upgrade (a pragma that
    only takes effect outside a transaction), checked before it commits, on again after."""
    if connection.dialect.name != "sqlite":
        yield
        return
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        yield
    finally:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()


def _check_foreign_keys(connection: Connection) -> None:
    if connection.dialect.name != "sqlite":
        return  # PostgreSQL enforced them throughout
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"the upgrade left rows whose references are missing: {broken[:5]}")


def create_schema(engine: Engine) -> None:
    """A new database: every table from the models, stamped at the newest revision (the
    models and the migrations agree: tests/integration/test_migrations.py). Processes
    starting together collide on CREATE TABLE: PostgreSQL serialises them with an advisory
    lock; on SQLite the loser sees "already exists" and checks again."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": SCHEMA_LOCK_ID})
            SQLModel.metadata.create_all(connection)
            _stamp_head(connection)
        return
    # Each race lost means another process created a table (or the stamp) meanwhile, so
    # after one attempt per table and one more, all exist: a bound that cannot be too small.
    attempts = len(SQLModel.metadata.tables) + 2
    for attempt in range(attempts):
        try:
            with engine.begin() as connection:
                SQLModel.metadata.create_all(connection)
                _stamp_head(connection)
            return
        except (OperationalError, IntegrityError) as error:
            # Another process created a table, or stamped the revision, meanwhile.
            raced = "already exists" in str(error) or "alembic_version" in str(error)
            if not raced or attempt == attempts - 1:
                raise


def pending_changes(engine: Engine) -> list[object]:
    """What autogenerate would write: the models' differences from the database (empty
    when the migrations describe the models exactly)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))


def _stamp_head(connection: Connection) -> None:
    context = MigrationContext.configure(connection)
    if context.get_current_revision() != head():
        context.stamp(_scripts(), head())


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@contextmanager
def _locked(engine: Engine) -> Iterator[None]:
    """PostgreSQL: one process at a time checks and upgrades (a session advisory lock)."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        lock = {"id": SCHEMA_LOCK_ID + 1}
        connection.execute(text("SELECT pg_advisory_lock(:id)"), lock)
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), lock)
