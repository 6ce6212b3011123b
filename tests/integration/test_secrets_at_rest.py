"""Secrets at rest (issue 20, finding 7). The review found the SQLite file created 0644 and
every account's webhook secret in it in plain text. Data files are now the owner's only,
and webhook secrets are stored encrypted under RAGLINE_SECRET_KEY: the ones stored before
are sealed at the next start, a rotated key re-seals them, and a wrong key refuses to
start rather than sign webhooks with garbage."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from ragline import secret_box
from ragline.accounts import Accounts
from ragline.bootstrap import Mode, Overrides, bootstrap
from ragline.config import RaglineConfig
from ragline.db import make_engine
from ragline.errors import ConfigError
from ragline.schema import create_schema
from ragline.secret_box import KEY_FILE, PREFIX, KeyRing, SecretsUnreadable, key_ring_for
from ragline.webhooks import new_secret
from tests.support.services import settings_for

OLD_KEY = "an-old-key-that-was-rotated-out-0123456789"
NEW_KEY = "the-new-key-everything-moves-under-98765432"


@pytest.fixture(autouse=True)
def own_ring() -> Iterator[None]:
    """These tests configure the process's key ring; the rest of the session keeps its."""
    before = secret_box.ring()
    yield
    secret_box.configure(before)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'ragline.db'}")
    create_schema(engine)
    yield engine
    engine.dispose()


def stored(engine: Engine) -> dict[str, tuple[str, str | None]]:
    """What the database file holds, read past the model: name -> (current, previous)."""
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT name, webhook_secret, previous_webhook_secret FROM accounts")
        ).all()
    return {name: (current, previous) for name, current, previous in rows}


def start(engine: Engine, config: RaglineConfig, tmp_path: Path, **settings: object) -> None:
    bootstrap(
        settings_for(tmp_path, **settings), Mode.COMMAND, Overrides(config=config, engine=engine)
    ).close()


def test_webhook_secrets_are_stored_sealed_and_read_in_the_clear(database: Engine) -> None:
    accounts = Accounts(database)
    created = accounts.create_account("acme")
    rotated = accounts.rotate_webhook_secret("acme")
    current, previous = stored(database)["acme"]
    for value, plain in ((current, rotated.webhook_secret), (previous, created.webhook_secret)):
        assert value is not None and value.startswith(PREFIX)
        assert plain.startswith("whsec_") and plain not in value
    assert accounts.account("acme").webhook_secret == rotated.webhook_secret
    assert accounts.account("acme").previous_webhook_secret == created.webhook_secret


def test_secrets_stored_before_encryption_are_sealed_at_the_next_start(
    database: Engine, repo_config: RaglineConfig, tmp_path: Path
) -> None:
    Accounts(database).create_account("acme")
    plain = new_secret()
    with database.begin() as connection:  # as a release before encryption stored it
        connection.execute(
            text("UPDATE accounts SET webhook_secret = :s, previous_webhook_secret = :s"),
            {"s": plain},
        )
    assert stored(database)["acme"] == (plain, plain)

    start(database, repo_config, tmp_path)

    current, previous = stored(database)["acme"]
    assert current.startswith(PREFIX) and previous is not None and previous.startswith(PREFIX)
    assert Accounts(database).account("acme").webhook_secret == plain


def test_a_rotated_key_reseals_every_secret_and_the_old_key_can_go(
    database: Engine, repo_config: RaglineConfig, tmp_path: Path
) -> None:
    secret_box.configure(KeyRing.of(OLD_KEY))
    plain = Accounts(database).create_account("acme").webhook_secret
    sealed_old = stored(database)["acme"][0]

    start(database, repo_config, tmp_path, secret_key=NEW_KEY, previous_secret_keys=(OLD_KEY,))

    sealed_new = stored(database)["acme"][0]
    assert sealed_new != sealed_old
    only_new = KeyRing.of(NEW_KEY)
    assert only_new.is_current(sealed_new) and only_new.open(sealed_new) == plain
    with pytest.raises(SecretsUnreadable):
        only_new.open(sealed_old)


def test_a_wrong_key_refuses_to_start(
    database: Engine, repo_config: RaglineConfig, tmp_path: Path
) -> None:
    secret_box.configure(KeyRing.of(OLD_KEY))
    Accounts(database).create_account("acme")
    with pytest.raises(SecretsUnreadable, match="RAGLINE_SECRET_KEY"):
        start(database, repo_config, tmp_path, secret_key=NEW_KEY)


def test_postgres_needs_a_key_and_sqlite_makes_one_readable_by_its_owner_only(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match="RAGLINE_SECRET_KEY is not set"):
        key_ring_for(None, (), data_dir=tmp_path, sqlite=False)
    with pytest.raises(ConfigError, match="at least 32 characters"):
        key_ring_for("short", (), data_dir=tmp_path, sqlite=True)

    data = tmp_path / "fresh"
    made = key_ring_for(None, (), data_dir=data, sqlite=True)
    again = key_ring_for(None, (), data_dir=data, sqlite=True)
    assert again.open(made.seal("x")) == "x"  # the same key, kept
    assert stat.S_IMODE((data / KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700


def test_the_sqlite_file_and_its_folder_are_the_owners_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "ragline.db"
    engine = make_engine(f"sqlite:///{path}")
    create_schema(engine)
    Accounts(engine).create_account("acme")
    engine.dispose()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for made in path.parent.iterdir():  # the database, its WAL and shared-memory files
        assert stat.S_IMODE(made.stat().st_mode) == 0o600, made.name

    path.chmod(0o644)  # a file made by an earlier release
    make_engine(f"sqlite:///{path}").dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
