"""Encryption at rest for the secrets ragline keeps in its database (each account's webhook
signing secrets): a copy of the database (a backup, a replica, the SQLite file read by
another user) does not hold them in the clear.

Values are Fernet tokens (AES-128-CBC with HMAC-SHA256, authenticated) under a key derived
from RAGLINE_SECRET_KEY, stored as `sealed:v1:<token>`. The process's key ring is set once,
at bootstrap (`configure`); the database columns seal and open through it
(ragline.models.SealedString), so no repository handles ciphertext.

Rotation: put the new key in RAGLINE_SECRET_KEY and the old one in
RAGLINE_PREVIOUS_SECRET_KEYS; at start every value is sealed again under the new key
(`reseal`), after which the old key can go.

Not encrypted: API keys and page sessions are stored as hashes only; the database's other
contents (jobs, answers) are protected by its own access control and file permissions.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import text
from sqlalchemy.engine import Engine

from ragline.errors import ConfigError

PREFIX = "sealed:v1:"
# A key is a passphrase of at least this many characters (e.g. `openssl rand -base64 32`).
MIN_KEY_CHARS = 32
KEY_FILE = "secret-key"


class SecretsUnreadable(ConfigError):
    """A sealed value no configured key opens: the key changed without the old one kept."""


@dataclass(frozen=True)
class KeyRing:
    current: Fernet
    every: MultiFernet  # the current key first, then the previous ones

    @classmethod
    def of(cls, key: str, previous: Sequence[str] = ()) -> KeyRing:
        fernets = [Fernet(_derived(k)) for k in (key, *previous)]
        return cls(fernets[0], MultiFernet(fernets))

    def seal(self, plaintext: str) -> str:
        return PREFIX + self.current.encrypt(plaintext.encode()).decode()

    def open(self, stored: str) -> str:
        """The plaintext of a sealed value; a value stored before encryption (no prefix) is
        returned as it is, until `reseal` seals it."""
        if not stored.startswith(PREFIX):
            return stored
        try:
            return self.every.decrypt(stored.removeprefix(PREFIX).encode()).decode()
        except InvalidToken:
            raise SecretsUnreadable(
                "a secret in the database was encrypted with a key that is neither "
                "RAGLINE_SECRET_KEY nor one of RAGLINE_PREVIOUS_SECRET_KEYS"
            ) from None

    def is_current(self, stored: str) -> bool:
        """Sealed under the current key (nothing for `reseal` to do)."""
        if not stored.startswith(PREFIX):
            return False
        try:
            self.current.decrypt(stored.removeprefix(PREFIX).encode())
        except InvalidToken:
            return False
        return True


_ring: KeyRing | None = None


def configure(ring: KeyRing) -> None:
    """The process's key ring (bootstrap): every sealed column uses it from now on."""
    global _ring
    _ring = ring


def ring() -> KeyRing:
    if _ring is None:
        raise RuntimeError(
            "no key for secrets at rest: ragline.bootstrap configures one "
            "(RAGLINE_SECRET_KEY, or data_dir/secret-key with SQLite)"
        )
    return _ring


def key_ring_for(
    key: str | None, previous: Sequence[str], *, data_dir: Path, sqlite: bool
) -> KeyRing:
    """The ring from the settings. Without RAGLINE_SECRET_KEY, a SQLite deployment (one
    machine) generates one once into data_dir/secret-key (0600); PostgreSQL is shared by
    processes on several machines, which must all hold the same key, so it is required."""
    for given in (key, *previous):
        if given is not None and len(given) < MIN_KEY_CHARS:
            raise ConfigError(
                f"RAGLINE_SECRET_KEY and RAGLINE_PREVIOUS_SECRET_KEYS need at least "
                f"{MIN_KEY_CHARS} characters (e.g. `openssl rand -base64 32`)"
            )
    if key is None:
        if not sqlite:
            raise ConfigError(
                "RAGLINE_SECRET_KEY is not set: with PostgreSQL every process needs the same "
                "key to encrypt and read webhook secrets (e.g. `openssl rand -base64 32`)"
            )
        key = stored_key(data_dir / KEY_FILE)
    return KeyRing.of(key, previous)


def stored_key(path: Path) -> str:
    """The key kept in path, made (0600, in a 0700 folder) if there is none yet."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key)
    return key


def _derived(key: str) -> bytes:
    """A Fernet key from a passphrase of any length: HKDF-SHA256, bound to this use."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"ragline secrets at rest")
    return base64.urlsafe_b64encode(raw.derive(key.encode()))


_SET = "UPDATE accounts SET webhook_secret = :current, previous_webhook_secret = :previous "
_RESEAL = text(
    _SET + "WHERE id = :id AND webhook_secret = :was_current "
    "AND previous_webhook_secret = :was_previous"
)
_RESEAL_WITHOUT_PREVIOUS = text(
    _SET + "WHERE id = :id AND webhook_secret = :was_current AND previous_webhook_secret IS NULL"
)


def reseal(engine: Engine) -> int:
    """Seal under the current key every webhook secret that is not (stored in the clear by
    a release before encryption, or under a previous key); how many accounts changed. Run
    at every start: a value no configured key opens raises SecretsUnreadable, so a process
    with the wrong key refuses to start instead of signing webhooks with garbage.

    Read and written past the model (its columns would open and seal them): each update is
    a compare-and-set on the stored values, so a rotation meanwhile is never overwritten."""
    keys = ring()
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, webhook_secret, previous_webhook_secret FROM accounts")
        ).all()
    changed = 0
    for account_id, current, previous in rows:
        stale = [value for value in (current, previous) if value is not None]
        if all(keys.is_current(value) for value in stale):
            continue
        values = {
            "id": account_id,
            "current": keys.seal(keys.open(current)),
            "was_current": current,
            "previous": None if previous is None else keys.seal(keys.open(previous)),
            "was_previous": previous,
        }
        statement = _RESEAL if previous is not None else _RESEAL_WITHOUT_PREVIOUS
        with engine.begin() as connection:
            changed += connection.execute(statement, values).rowcount
    return changed
