"""The audit trail: who changed what, when, and what it was before and after.

Every mutating route and CLI command appends an entry in the same transaction as its change
(the change and its record commit together or not at all). Entries form a hash chain: each
row's hash covers its fields and the previous row's hash, and `audit_head` holds the newest
one. Appending locks the head row, so entries from every process form one chain in one
order. The database refuses UPDATE and DELETE on the table (a trigger); someone who goes
around that (a superuser, a restored backup edited by hand) breaks the chain, and `ragline
audit verify` names the first entry that no longer matches. Copy the head hash it prints
somewhere else now and then: a chain rewritten from some entry on is only detectable
against a hash kept outside the database.

Entries hold ids, names, counts and settings, never personal data or secrets: a user is
named by a digest (user_ref), so an erased person is not re-identified by the record of the
erasure, while an auditor holding the id can still find it.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import insert, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ragline.errors import InvalidInput
from ragline.models import AuditEntry, AuditHead, utcnow

GENESIS = "0" * 64  # the previous hash of the first entry
MAX_PAGE = 500


@dataclass(frozen=True)
class Actor:
    """Who made a change: an API key, an operator at the CLI, or ragline itself."""

    kind: str  # key | operator | system
    name: str
    key_id: str | None = None
    account_id: str | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}"[:300]

    @classmethod
    def of_key(cls, key_id: str, account_id: str) -> Actor:
        return cls("key", key_id, key_id=key_id, account_id=account_id)

    @classmethod
    def operator(cls) -> Actor:
        """The person at the CLI, as the operating system knows them (the CLI talks to the
        database directly: whoever runs it holds the database's credentials)."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (some containers)
            user = "unknown"
        return cls("operator", user)

    @classmethod
    def system(cls, component: str) -> Actor:
        return cls("system", component)


SYSTEM = Actor.system("ragline")


def user_ref(account_id: str, user_id: str) -> str:
    """How the trail names a person: a digest of the account and the user id."""
    return "user:" + hashlib.sha256(f"{account_id}\x00{user_id}".encode()).hexdigest()[:32]


def append(
    db: Session | Connection,
    actor: Actor,
    action: str,
    target: str = "",
    *,
    account_id: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an entry to the transaction of db, a Session or a Connection (the caller commits
    it with its change). Locks the chain's head until that commit: concurrent appenders
    queue behind it."""
    connection = db.connection() if isinstance(db, Session) else db
    head_seq, head_hash = _locked_head(connection)
    entry = AuditEntry(
        seq=head_seq + 1,
        at=utcnow(),
        actor=actor.label,
        actor_key_id=actor.key_id,
        account_id=account_id if account_id is not None else actor.account_id,
        action=action,
        target=target[:300],
        request_id=_request_id(),
        before=before,
        after=after,
        prev_hash=head_hash,
        hash="",
    )
    entry.hash = digest(entry)
    connection.execute(insert(AuditEntry).values(**entry.model_dump()))
    connection.execute(
        update(AuditHead).where(col(AuditHead.id) == 1).values(seq=entry.seq, hash=entry.hash)
    )
    return entry


def _locked_head(connection: Connection) -> tuple[int, str]:
    # A write first: it takes the row lock on PostgreSQL and the write lock on SQLite
    # before the head is read, so no two appenders read the same head.
    for _ in range(2):
        locked = connection.execute(
            update(AuditHead).where(col(AuditHead.id) == 1).values(seq=AuditHead.seq)
        )
        if locked.rowcount:
            row = connection.execute(
                select(col(AuditHead.seq), col(AuditHead.hash)).where(col(AuditHead.id) == 1)
            ).one()
            return int(row.seq), str(row.hash)
        try:  # the first entry ever: create the head (another process may race us)
            with connection.begin_nested():
                connection.execute(insert(AuditHead).values(id=1, seq=0, hash=GENESIS))
        except IntegrityError:
            pass
    raise RuntimeError("the audit chain's head row cannot be locked")


def _request_id() -> str | None:
    bound = structlog.contextvars.get_contextvars().get("request_id")
    return str(bound)[:64] if bound else None


def digest(entry: AuditEntry) -> str:
    """The entry's hash: its fields in a canonical form, then the previous hash."""
    fields = {
        "seq": entry.seq,
        "at": _utc(entry.at),
        "actor": entry.actor,
        "actor_key_id": entry.actor_key_id,
        "account_id": entry.account_id,
        "action": entry.action,
        "target": entry.target,
        "request_id": entry.request_id,
        "before": entry.before,
        "after": entry.after,
        "prev_hash": entry.prev_hash,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _utc(moment: datetime) -> str:
    # Microseconds: both backends keep them; the time zone: SQLite keeps none.
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class ChainReport:
    entries: int
    head_seq: int
    head_hash: str
    broken_at: int | None = None  # the first entry that does not match
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


def verify(engine: Engine, batch: int = 1000) -> ChainReport:
    """Walk the chain from the first entry; stop at the first one that does not match."""
    previous_hash, expected_seq, count = GENESIS, 1, 0
    with Session(engine) as session:
        head = session.get(AuditHead, 1)
        while True:
            rows = list(
                session.exec(
                    select(AuditEntry)
                    .where(col(AuditEntry.seq) >= expected_seq)
                    .order_by(col(AuditEntry.seq))
                    .limit(batch)
                )
            )
            for entry in rows:
                problem = _mismatch(entry, expected_seq, previous_hash)
                if problem:
                    return _report(count, head, broken_at=entry.seq, problem=problem)
                previous_hash, expected_seq, count = entry.hash, entry.seq + 1, count + 1
            if len(rows) < batch:
                break
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    if (head_seq, head_hash) != (expected_seq - 1, previous_hash):
        return _report(
            count,
            head,
            broken_at=expected_seq,
            problem=f"the chain ends at entry {expected_seq - 1} but its head records "
            f"entry {head_seq}: entries were removed from the end",
        )
    return _report(count, head)


def _mismatch(entry: AuditEntry, expected_seq: int, previous_hash: str) -> str | None:
    if entry.seq != expected_seq:
        return f"entries {expected_seq} to {entry.seq - 1} are missing"
    if entry.prev_hash != previous_hash:
        return f"entry {entry.seq} does not follow entry {entry.seq - 1} (previous hash)"
    if digest(entry) != entry.hash:
        return f"entry {entry.seq} was changed after it was written (its hash does not match)"
    return None


def _report(
    count: int, head: AuditHead | None, broken_at: int | None = None, problem: str | None = None
) -> ChainReport:
    return ChainReport(
        entries=count,
        head_seq=head.seq if head else 0,
        head_hash=head.hash if head else GENESIS,
        broken_at=broken_at,
        problem=problem,
    )


@dataclass(frozen=True)
class AuditQuery:
    """Filters of GET /v1/audit and `ragline audit list`; entries newest first."""

    account_id: str | None = None
    action: str | None = None  # an action, or a prefix ending in '.' (e.g. "key.")
    actor: str | None = None  # an actor label, e.g. key:3f2a... or operator:alice
    target: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    cursor: str | None = None


def entries(engine: Engine, query: AuditQuery) -> tuple[list[AuditEntry], str | None]:
    """A page of entries, newest first, and the cursor of the next page (None at the end)."""
    if not 1 <= query.limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    if query.since and query.until and query.since > query.until:
        raise InvalidInput("since must not be after until", field="since")
    statement = select(AuditEntry).order_by(col(AuditEntry.seq).desc()).limit(query.limit + 1)
    if query.cursor is not None:
        statement = statement.where(col(AuditEntry.seq) < _read_cursor(query.cursor))
    if query.account_id is not None:
        statement = statement.where(col(AuditEntry.account_id) == query.account_id)
    if query.action:
        if query.action.endswith("."):
            statement = statement.where(col(AuditEntry.action).startswith(query.action))
        else:
            statement = statement.where(col(AuditEntry.action) == query.action)
    if query.actor:
        statement = statement.where(col(AuditEntry.actor) == query.actor)
    if query.target:
        statement = statement.where(col(AuditEntry.target) == query.target)
    if query.since:
        statement = statement.where(col(AuditEntry.at) >= query.since)
    if query.until:
        statement = statement.where(col(AuditEntry.at) < query.until)
    with Session(engine) as session:
        rows = list(session.exec(statement))
    page, more = rows[: query.limit], len(rows) > query.limit
    return page, (_write_cursor(page[-1].seq) if more else None)


def _write_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"audit:{seq}".encode()).decode().rstrip("=")


def _read_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, seq = raw.split(":", 1)
        if prefix != "audit" or not seq.isdigit():
            raise ValueError(raw)
        return int(seq)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidInput(
            "cursor is not one this API returned; start again without it", field="cursor"
        ) from None
