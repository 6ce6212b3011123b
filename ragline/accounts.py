"""Accounts (tenants) and API keys: creation, listing, revocation, authentication.

A key reads `rl_<id>_<secret>`: the `rl_` prefix lets secret scanners find a leaked key,
the id finds the row, and only a SHA-256 of the 256-bit random secret is stored (a slow
password hash adds nothing for a secret that cannot be guessed). The secret is compared in
constant time, and an unknown id is compared against a dummy hash, so an unknown key and a
wrong secret take the same path.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, delete, or_, update
from sqlalchemy import select as sql_select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ragline import audit
from ragline.audit import SYSTEM, Actor
from ragline.db import retry_stale
from ragline.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from ragline.models import Account, ApiKey, PageSession, Role, utcnow
from ragline.webhooks import new_secret

KEY_PREFIX = "rl_"
_ACCOUNT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DUMMY_HASH = hashlib.sha256(b"ragline-no-such-key").hexdigest()
KEY_CACHE_SIZE = 10_000  # keys a process remembers as recently checked
LAST_USED_EVERY = timedelta(minutes=1)  # how stale api_keys.last_used_at may be
# How long a rotated-out webhook secret still signs deliveries beside the new one.
SECRET_OVERLAP = timedelta(hours=24)
MAX_SECRET_OVERLAP = timedelta(days=30)
ALL_ROLES = tuple(Role)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key, its account, roles and document groups."""

    account_id: str
    account_name: str
    key_id: str
    roles: frozenset[str]
    groups: tuple[str, ...]

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    def require(self, role: Role) -> None:
        if role not in self.roles and not self.is_admin:
            raise Forbidden(f"this API key lacks the '{role.value}' role")

    def require_any(self, *roles: Role) -> None:
        if not self.is_admin and not any(role in self.roles for role in roles):
            names = " or ".join(f"'{role.value}'" for role in roles)
            raise Forbidden(f"this API key needs the {names} role")

    def require_platform(self, platform_account: str) -> None:
        """Operating the shared knowledge base: an admin, or an indexer of the platform
        account (a tenant's indexer key would rewrite every account's answers)."""
        if self.is_admin:
            return
        if Role.INDEXER not in self.roles:
            raise Forbidden(f"this API key lacks the '{Role.INDEXER.value}' role")
        if self.account_name != platform_account:
            raise Forbidden(
                "the knowledge base is shared by every account: the indexer role works only "
                "on keys of the platform account (or use an admin key)"
            )

    @property
    def actor(self) -> Actor:
        """This key, as the audit trail names who made a change."""
        return Actor.of_key(self.key_id, self.account_id)

    @property
    def visible_account(self) -> str | None:
        """The account whose data this caller may see; None means every account (admin)."""
        return None if self.is_admin else self.account_id


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    plaintext: str  # shown once, never stored


def _check_roles(roles: Iterable[str]) -> list[str]:
    chosen = sorted(set(roles))
    unknown = [r for r in chosen if r not in {role.value for role in Role}]
    if unknown:
        raise InvalidInput(
            f"unknown role(s) {', '.join(unknown)}; roles are " + ", ".join(r.value for r in Role),
            field="roles",
        )
    if not chosen:
        raise InvalidInput("a key needs at least one role", field="roles")
    return chosen


def _check_groups(groups: Iterable[str]) -> list[str]:
    chosen = sorted(set(groups))
    bad = [g for g in chosen if not _GROUP_NAME.match(g)]
    if bad:
        raise InvalidInput(f"invalid group name(s): {', '.join(bad)}", field="groups")
    return chosen


class Accounts:
    def __init__(self, engine: Engine, *, key_cache_s: float = 0.0) -> None:
        """key_cache_s: how long authenticate() reuses a key it has just read (the database
        read is a third of admission's cost); 0 reads it on every request."""
        self.engine = engine
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._key_cache_s = key_cache_s
        # (key id, hash of the presented secret) -> (monotonic expiry, its _KEY row). Keyed
        # on the whole key, so a wrong secret is never answered from here: refusals take the
        # database path and stay as slow as each other.
        self._recent: dict[tuple[str, str], tuple[float, Any]] = {}

    def create_account(self, name: str, actor: Actor = SYSTEM) -> Account:
        if not _ACCOUNT_NAME.match(name):
            raise InvalidInput(
                "account names are 1-64 lowercase letters, digits, '-' or '_'", field="name"
            )
        account = Account(id=uuid.uuid4().hex, name=name)
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                session.add(account)
                session.flush()  # a taken name fails here, before the trail is locked
                audit.append(
                    session,
                    actor,
                    "account.create",
                    f"account:{name}",
                    account_id=account.id,
                    after={"name": name},
                )
                session.commit()
        except IntegrityError:
            raise Conflict(f"account '{name}' already exists") from None
        return account

    def account(self, name: str) -> Account:
        with Session(self.engine, expire_on_commit=False) as session:
            account = session.exec(select(Account).where(Account.name == name)).first()
        if account is None:
            raise NotFound(f"account '{name}' does not exist")
        return account

    def rotate_webhook_secret(
        self, name: str, overlap: timedelta = SECRET_OVERLAP, actor: Actor = SYSTEM
    ) -> Account:
        """A new signing secret for the account's webhooks. For `overlap` the old one
        still signs deliveries too (a second signature), so a receiver that has not switched
        yet keeps verifying them; zero cuts over at once (a leaked secret)."""
        if not timedelta(0) <= overlap <= MAX_SECRET_OVERLAP:
            raise InvalidInput(
                f"overlap must be between 0 and {MAX_SECRET_OVERLAP.days} days", field="overlap"
            )
        with Session(self.engine, expire_on_commit=False) as session:
            account = session.exec(select(Account).where(Account.name == name)).first()
            if account is None:
                raise NotFound(f"account '{name}' does not exist")
            now = utcnow()
            account.previous_webhook_secret = account.webhook_secret if overlap else None
            account.previous_secret_until = now + overlap if overlap else None
            account.webhook_secret = new_secret()
            session.add(account)
            audit.append(
                session,
                actor,
                "account.webhook_secret.rotate",
                f"account:{name}",
                account_id=account.id,
                after={"overlap_seconds": int(overlap.total_seconds())},
            )
            session.commit()
        return account

    def accounts(self) -> list[Account]:
        with Session(self.engine, expire_on_commit=False) as session:
            return list(session.exec(select(Account).order_by(col(Account.name))))

    def create_key(
        self,
        account_name: str,
        *,
        roles: Iterable[str],
        groups: Iterable[str] = ("everyone",),
        name: str = "",
        expires_at: datetime | None = None,
        actor: Actor = SYSTEM,
    ) -> IssuedKey:
        account = self.account(account_name)
        if expires_at is not None and expires_at <= utcnow():
            raise InvalidInput("expires_at must be in the future", field="expires_at")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(
            id=key_id,
            account_id=account.id,
            name=name[:128],
            secret_hash=_hash(secret),
            roles=_check_roles(roles),
            groups=_check_groups(groups),
            expires_at=expires_at,
        )
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(key)
            audit.append(
                session,
                actor,
                "key.create",
                f"key:{key_id}",
                account_id=account.id,
                after={
                    "name": key.name,
                    "roles": key.roles,
                    "groups": key.groups,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                },
            )
            session.commit()
        return IssuedKey(key=key, plaintext=f"{KEY_PREFIX}{key_id}_{secret}")

    def keys(self, account_id: str | None = None) -> list[tuple[ApiKey, Account]]:
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(ApiKey, Account).join(Account, col(Account.id) == col(ApiKey.account_id))
            if account_id is not None:
                query = query.where(col(ApiKey.account_id) == account_id)
            rows = session.exec(query.order_by(col(Account.name), col(ApiKey.created_at)))
            return [(key, account) for key, account in rows]

    def revoke_key(
        self, key_id: str, account_id: str | None = None, actor: Actor = SYSTEM
    ) -> ApiKey:
        """Revoke a key, ending its web page sessions; with account_id, only a key of that
        account (else NotFound)."""
        with Session(self.engine, expire_on_commit=False) as session:
            key = session.get(ApiKey, key_id)
            if key is None or (account_id is not None and key.account_id != account_id):
                raise NotFound(f"API key {key_id} not found")
            self._forget(key_id)
            session.exec(delete(PageSession).where(col(PageSession.key_id) == key_id))
            if key.revoked_at is None:
                key.revoked_at = utcnow()
                session.add(key)
                audit.append(
                    session, actor, "key.revoke", f"key:{key_id}", account_id=key.account_id
                )
            session.commit()
            session.refresh(key)
            return key

    def recent(self, presented: str | None) -> Principal | None:
        """The principal of a key this process checked within key_cache_s, without I/O;
        None: authenticate() must read it (or refuse it)."""
        if not presented or self._key_cache_s <= 0 or not presented.startswith(KEY_PREFIX):
            return None
        key_id, _, secret = presented[len(KEY_PREFIX) :].partition("_")
        recent = self._recent.get((key_id, _hash(secret)))
        if recent is None or recent[0] <= time.monotonic():
            return None
        return _principal(key_id, recent[1])  # expiry is checked again, against now

    def authenticate(self, presented: str | None) -> Principal:
        if not presented:
            raise Unauthenticated("an API key is required: send 'Authorization: Bearer rl_…'")
        key_id, secret = _parse(presented)
        digest = _hash(secret)
        recent = self._recent.get((key_id, digest))
        if recent is not None and recent[0] > time.monotonic():
            return _principal(key_id, recent[1])

        # One round trip: the hash and the principal together. The refusal path does the
        # same query and comparison either way, so an unknown id is not measurably faster
        # to refuse than a wrong secret (bench/auth_timing.py).
        def read() -> Any:
            # Autocommit: a lone SELECT needs no BEGIN nor ROLLBACK round trip.
            with self._autocommit.connect() as connection:
                return connection.execute(_KEY, {"p_key_id": key_id}).one_or_none()

        row = retry_stale(read)
        matches = hmac.compare_digest(digest, row.secret_hash if row else _DUMMY_HASH)
        if row is None or not matches:
            raise Unauthenticated("invalid API key")
        principal = _principal(key_id, row)
        if self._key_cache_s > 0:
            if len(self._recent) >= KEY_CACHE_SIZE:
                self._recent.clear()  # bounded; keys in use are read again at once
            self._recent[(key_id, digest)] = (time.monotonic() + self._key_cache_s, row)
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
            self._mark_used(key_id, now)
        return principal

    def _forget(self, key_id: str) -> None:
        for cached in list(self._recent):  # a copy: other threads add keys meanwhile
            if cached[0] == key_id:
                self._recent.pop(cached, None)

    def _mark_used(self, key_id: str, now: datetime) -> None:
        # Guarded by the same condition, so concurrent requests write it once.
        with self.engine.begin() as connection:
            connection.execute(
                update(ApiKey)
                .where(col(ApiKey.id) == key_id)
                .where(
                    or_(
                        col(ApiKey.last_used_at).is_(None),
                        col(ApiKey.last_used_at) <= now - LAST_USED_EVERY,
                    )
                )
                .values(last_used_at=now)
            )

    def principal_for_key(self, key_id: str) -> Principal:
        """The principal of a key already authenticated (a web session holds its id),
        checked again for revocation and expiry."""
        with self.engine.connect() as connection:
            row = connection.execute(_PRINCIPAL.where(col(ApiKey.id) == key_id)).one_or_none()
        if row is None:
            raise Unauthenticated("invalid API key")
        return _principal(key_id, row)


# A key's principal: its account, roles and groups, and whether it still holds.
_PRINCIPAL = sql_select(
    col(ApiKey.revoked_at),
    col(ApiKey.expires_at),
    col(ApiKey.last_used_at),
    col(ApiKey.roles),
    col(ApiKey.groups),
    col(Account.id),
    col(Account.name),
).join(Account, col(Account.id) == col(ApiKey.account_id))
# What authentication reads, built once (SQLAlchemy caches its compiled form).
_KEY = _PRINCIPAL.add_columns(col(ApiKey.secret_hash)).where(
    col(ApiKey.id) == bindparam("p_key_id")
)


def _principal(key_id: str, row: Any) -> Principal:  # a Row of _PRINCIPAL
    if row.revoked_at is not None:
        raise Unauthenticated("this API key was revoked")
    if row.expires_at is not None and row.expires_at <= utcnow():
        raise Unauthenticated("this API key has expired")
    return Principal(
        account_id=row.id,
        account_name=row.name,
        key_id=key_id,
        roles=frozenset(row.roles),
        groups=tuple(row.groups),
    )


def _parse(presented: str) -> tuple[str, str]:
    if presented.startswith(KEY_PREFIX):
        parts = presented[len(KEY_PREFIX) :].split("_", 1)
        if len(parts) == 2 and all(parts):
            return parts[0], parts[1]
    # Same work as a well-formed key, so malformed keys are not faster to reject.
    hmac.compare_digest(_hash(presented), _DUMMY_HASH)
    raise Unauthenticated("invalid API key")


DEMO_ACCOUNT = "demo"


def ensure_demo_key(accounts: Accounts, path: Path) -> str:
    """The embedded mode's ready-made key (every role, demo account), kept in the data dir
    so that it stays the same across restarts; made again if it was revoked or lost."""
    if path.exists():
        saved = path.read_text(encoding="utf-8").strip()
        try:
            accounts.authenticate(saved)
            return saved
        except Unauthenticated:
            pass
    try:
        accounts.account(DEMO_ACCOUNT)
    except NotFound:
        accounts.create_account(DEMO_ACCOUNT)
    issued = accounts.create_key(DEMO_ACCOUNT, roles=ALL_ROLES, name="demo (embedded mode)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    # Created 0600 from the start: never readable by others, not even for a moment.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(issued.plaintext + "\n")
    return issued.plaintext
