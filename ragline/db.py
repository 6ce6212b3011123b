"""Database engine set-up for SQLite (embedded) and PostgreSQL (deployed)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, ExceptionContext
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from sqlmodel import create_engine

from ragline import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from ragline.errors import DatabaseUnavailable, StorageRefused

# The largest integer a column holds on every backend (PostgreSQL BIGINT, SQLite INTEGER):
# an id, offset or version past it cannot be stored or compared; SQLite raises
# OverflowError and PostgreSQL a DataError, so the edges bound such numbers by it.
BIGINT_MAX = 2**63 - 1

T = TypeVar("T")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            _owners_only(Path(path))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        # No pre-ping: it cost a round trip on every checkout. A connection the database
        # dropped fails its first statement instead; SQLAlchemy then invalidates every pooled
        # connection older than that failure, and the hot paths run once more (retry_stale).
        engine = create_engine(url, pool_size=10, max_overflow=10)
    event.listen(engine, "handle_error", _typed_error)
    return engine


def _owners_only(path: Path) -> None:
    """The SQLite file (accounts, jobs, answers) readable by its owner only: 0600, in a
    folder made 0700. SQLite gives its WAL and shared-memory files the database file's
    mode. A file made 0644 by an earlier release is tightened."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            with contextlib.suppress(PermissionError):  # another user's: theirs to tighten
                path.chmod(0o600)


# SQLite reports a busy or unreachable file and a bad statement alike as OperationalError;
# only these are the database being unavailable rather than a bug.
_SQLITE_UNAVAILABLE = ("locked", "busy", "unable to open", "disk i/o", "readonly database")


def _typed_error(context: ExceptionContext) -> None:
    """Every repository raises ragline's errors, not the driver's: an unreachable, dropped
    or busy database is DatabaseUnavailable (transient: retry), a refused value is
    StorageRefused (permanent). The rest (constraints the repositories handle, schema
    races) passes through unchanged."""
    error = context.sqlalchemy_exception
    if _server_gone(error):
        # A restart's "terminating connection" arrives before the socket closes, so the
        # driver still calls the connection healthy: invalidate it (and the pool) now.
        context.is_disconnect = True
    if isinstance(error, DataError):
        raise StorageRefused(f"the database refused a value: {_driver(error)}") from error
    unavailable = context.is_disconnect or isinstance(error, InterfaceError)
    if isinstance(error, OperationalError):
        message = str(error.orig).lower()
        sqlite = context.engine is not None and context.engine.dialect.name == "sqlite"
        unavailable = unavailable or not sqlite or any(m in message for m in _SQLITE_UNAVAILABLE)
    if unavailable:
        raise DatabaseUnavailable(
            f"database unavailable: {_driver(error)}",
            connection_lost=context.is_disconnect and context.connection is not None,
        ) from error


# SQLSTATE classes of a connection the server dropped: connection exceptions, and the
# server shutting down, crashed or not accepting connections yet (57P01-57P03).
_GONE = ("08", "57P")


def _server_gone(error: BaseException | None) -> bool:
    sqlstate = getattr(getattr(error, "orig", None), "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(_GONE)


def retry_stale(run: Callable[[], T]) -> T:
    """run(), and once more if it failed on a pooled connection that had gone stale (the
    database restarted or reset it since its last use): the pool has then been invalidated,
    so the second run gets a fresh connection. An unreachable database fails both.
    For units that are safe to run again: reads, and writes whose repeat the database
    refuses or absorbs (an idempotency key's unique index, a compare-and-set)."""
    try:
        return run()
    except DatabaseUnavailable as error:
        if error.connection_lost:
            return run()
        raise


def _driver(error: BaseException | None) -> str:
    original = getattr(error, "orig", None)
    return type(original or error).__name__


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while a worker thread writes; foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def ping(engine: Engine) -> None:
    """Raises DatabaseUnavailable when the database cannot answer."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
