"""The web pages' sessions, kept server-side so they can end: a log-in exchanges an API key
for a random token in an HttpOnly cookie (api/session.py); the database holds only the
token's SHA-256, the key it acts for, the form token (CSRF) and its times.

A session ends at log-out, when its key is revoked (ragline.accounts), after `idle_minutes`
without a request, and `hours` after the log-in whatever happens. An ended session is a row
deleted: a copy of the cookie kept after any of these reads nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.engine import Engine

from ragline.db import retry_stale
from ragline.models import PageSession, utcnow
from ragline.rows import table

_SESSIONS = table(PageSession)
# A session's last request is written at most this often: a page request is a read, and the
# idle timeout is this much coarser.
TOUCH_EVERY = timedelta(seconds=60)
# Longer values are not tokens this store made: refused before hashing.
MAX_TOKEN_CHARS = 128


@dataclass(frozen=True)
class SignedIn:
    """A live session, as a page sees it."""

    key_id: str
    csrf: str
    expires_at: datetime


class PageSessions:
    def __init__(self, engine: Engine, *, idle: timedelta, lifetime: timedelta) -> None:
        self.engine = engine
        self.idle = idle
        self.lifetime = lifetime

    def start(self, key_id: str) -> tuple[str, SignedIn]:
        """A new session for the key: (the cookie's token, the session). Sessions that
        have ended by time are deleted on the way."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        signed_in = SignedIn(key_id, secrets.token_urlsafe(24), now + self.lifetime)
        row = {
            "id": _digest(token),
            "key_id": key_id,
            "csrf": signed_in.csrf,
            "created_at": now,
            "last_seen_at": now,
            "expires_at": signed_in.expires_at,
        }
        with self.engine.begin() as connection:
            connection.execute(delete(_SESSIONS).where(self._ended(now)))
            connection.execute(insert(_SESSIONS).values(**row))
        return token, signed_in

    def read(self, token: str | None) -> SignedIn | None:
        """The session the cookie's token holds, or None: absent, unknown, ended, or past
        either timeout (then deleted)."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        digest = _digest(token)

        def read() -> Any:
            with self.engine.connect() as connection:
                query = select(_SESSIONS).where(_SESSIONS.c.id == digest)
                return connection.execute(query).mappings().first()

        found = retry_stale(read)
        if found is None:
            return None
        now = utcnow()
        if found["expires_at"] <= now or now - found["last_seen_at"] > self.idle:
            self._delete(_SESSIONS.c.id == digest)
            return None
        if now - found["last_seen_at"] >= TOUCH_EVERY:
            with self.engine.begin() as connection:
                connection.execute(
                    update(_SESSIONS).where(_SESSIONS.c.id == digest).values(last_seen_at=now)
                )
        return SignedIn(found["key_id"], found["csrf"], found["expires_at"])

    def end(self, token: str | None) -> bool:
        """Log-out: True if a session ended."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return False
        return self._delete(_SESSIONS.c.id == _digest(token)) > 0

    def live(self, key_id: str) -> int:
        """How many of the key's sessions are live."""
        query = (
            select(func.count())
            .select_from(_SESSIONS)
            .where(_SESSIONS.c.key_id == key_id, ~self._ended(utcnow()))
        )
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def _ended(self, now: datetime) -> ColumnElement[bool]:
        return (_SESSIONS.c.expires_at <= now) | (_SESSIONS.c.last_seen_at < now - self.idle)

    def _delete(self, which: ColumnElement[bool]) -> int:
        with self.engine.begin() as connection:
            return int(connection.execute(delete(_SESSIONS).where(which)).rowcount)


def _digest(token: str) -> str:
    """What the database keeps: a copy of it (a backup, a replica) opens no session."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
