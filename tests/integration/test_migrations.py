"""Schema revisions (ragline/schema.py, ragline/migrations/): a database made by the last
release without migrations (tests/data/databases/pre-migrations, written by
scripts/snapshot_database.py at that commit) upgrades on SQLite and PostgreSQL with every
row kept; processes refuse a database behind the code, embedded mode upgrades its own; the
models and the migrations agree."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import DateTime, MetaData, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from ragline.accounts import Accounts
from ragline.bootstrap import Mode, Overrides, bootstrap
from ragline.config import RaglineConfig
from ragline.db import make_engine
from ragline.errors import DatabaseUnavailable
from ragline.jobs import JobRepository
from ragline.pipeline.validate import JobRequest
from ragline.schema import (
    BASELINE,
    SchemaBehind,
    create_schema,
    current,
    head,
    pending_changes,
    prepare,
    upgrade_to_head,
)
from ragline.secret_box import PREFIX
from tests.support.console import run_cli
from tests.support.environment import POSTGRES_URL, REPO, unavailable
from tests.support.processes import ragline_env
from tests.support.services import settings_for
from tests.support.tables import every_row

SNAPSHOT = REPO / "tests" / "data" / "databases" / "pre-migrations"
ROWS: dict[str, list[dict[str, Any]]] = json.loads((SNAPSHOT / "rows.json").read_text())
# Tables later revisions created: the snapshot's release had none of them.
ADDED_SINCE = {"audit_entries", "audit_head", "answer_cache", "page_sessions"}  # 0003-0006


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def blank(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'ragline.db'}")
        yield engine
        engine.dispose()
        return
    admin = make_engine(POSTGRES_URL)
    name = f"migrations_{tmp_path.name[-12:].replace('-', '_').lower()}"
    try:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
            connection.execute(text(f"CREATE SCHEMA {name}"))
    except DatabaseUnavailable as error:
        unavailable("PostgreSQL", error)
    engine = make_engine(f"{POSTGRES_URL}?options=-csearch_path%3D{name}")
    yield engine
    engine.dispose()
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
    admin.dispose()


def previous_release(engine: Engine) -> None:
    """The snapshot's tables (its own DDL for this dialect) and rows."""
    ddl = (SNAPSHOT / f"schema.{engine.dialect.name}.sql").read_text()
    with engine.begin() as connection:
        for statement in ddl.split(";\n"):
            if statement.strip():
                connection.execute(text(statement))
    tables = MetaData()
    tables.reflect(engine)
    with engine.begin() as connection:
        for table in tables.sorted_tables:  # referenced rows first
            rows = ROWS[table.name]
            dates = {c.name for c in table.columns if isinstance(c.type, DateTime)}
            for row in rows:
                values = {
                    k: _naive_utc(v) if k in dates and v is not None else v for k, v in row.items()
                }
                connection.execute(table.insert().values(**values))


def _naive_utc(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC).replace(tzinfo=None)


def test_the_snapshot_holds_rows_in_every_table() -> None:
    assert set(ROWS) == {t.name for t in SQLModel.metadata.sorted_tables} - ADDED_SINCE
    assert all(ROWS.values())


def test_a_database_of_the_previous_release_upgrades_keeping_every_row(blank: Engine) -> None:
    previous_release(blank)
    assert current(blank) == BASELINE != head()

    assert upgrade_to_head(blank) == (BASELINE, head())

    assert current(blank) == head()
    after = every_row(blank)
    for name, rows in ROWS.items():
        key = next(iter(SQLModel.metadata.tables[name].primary_key.columns)).name
        kept = {row[key]: row for row in after[name]}
        assert len(kept) == len(rows), name
        for row in rows:
            # Every value as it was; columns added since hold their defaults.
            assert {k: kept[row[key]][k] for k in row} == row, (name, row[key])
    assert all(k["last_used_at"] is None for k in after["api_keys"])
    assert all(a["previous_webhook_secret"] is None for a in after["accounts"])
    assert all(j["use_cache"] and j["cached_from"] is None for j in after["jobs"])
    assert all(not after[name] for name in ADDED_SINCE)
    assert pending_changes(blank) == []
    _idempotency_is_per_key(blank, after["accounts"][0]["id"])
    _foreign_keys_are_enforced(blank)


def _idempotency_is_per_key(engine: Engine, account_id: str) -> None:
    """0005: two keys of one account may each use an idempotency key."""
    jobs = JobRepository(engine)
    request = JobRequest(question="Is the office open?", user_id="u1")
    for key_id in ("key-a", "key-b"):
        _, created = jobs.submit(
            request,
            account_id=account_id,
            key_id=key_id,
            deadline=timedelta(seconds=60),
            idempotency_key="after-the-upgrade",
        )
        assert created, key_id


def _foreign_keys_are_enforced(engine: Engine) -> None:
    """SQLite's upgrade turns them off to rebuild a table: they are on again after it."""
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("UPDATE jobs SET account_id = 'no-such-account'"))


def test_processes_refuse_a_database_behind_the_code_and_embedded_mode_upgrades_its_own(
    tmp_path: Path, repo_config: RaglineConfig
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'ragline.db'}")
    previous_release(engine)
    overrides = Overrides(config=repo_config, engine=engine, send=lambda _: None)
    for mode in (Mode.COMMAND, Mode.SERVER):
        with pytest.raises(SchemaBehind, match="run `ragline db upgrade`"):
            bootstrap(settings_for(tmp_path), mode, overrides)
    assert current(engine) == BASELINE

    bootstrap(settings_for(tmp_path), Mode.EMBEDDED, overrides).close()

    assert current(engine) == head()
    assert len(every_row(engine)["jobs"]) == len(ROWS["jobs"])
    # 0007: the webhook secrets stored in the clear were sealed at that start, unchanged.
    with engine.connect() as connection:
        raw = dict(connection.execute(text("SELECT id, webhook_secret FROM accounts")).all())
    accounts = Accounts(engine)
    for row in ROWS["accounts"]:
        assert raw[row["id"]].startswith(PREFIX) and row["webhook_secret"] not in raw[row["id"]]
        assert accounts.account(row["name"]).webhook_secret == row["webhook_secret"]
    engine.dispose()


def test_a_revision_this_code_does_not_know_is_refused(blank: Engine) -> None:
    create_schema(blank)
    with blank.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaBehind, match="9999, which this ragline does not know"):
        prepare(blank, upgrade=True)


def test_the_migrations_build_exactly_the_models(blank: Engine) -> None:
    """What CI checks: autogenerate on a database made by the migrations finds nothing."""
    assert upgrade_to_head(blank) == (None, head())
    assert pending_changes(blank) == []


def test_a_new_database_is_created_at_the_newest_revision(blank: Engine) -> None:
    prepare(blank, upgrade=False)
    assert current(blank) == head()
    assert pending_changes(blank) == []
    prepare(blank, upgrade=False)  # started again: nothing to do


@pytest.mark.postgres
def test_a_failed_upgrade_leaves_postgres_at_its_previous_revision(tmp_path: Path) -> None:
    admin = make_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS migrations_failed CASCADE"))
            connection.execute(text("CREATE SCHEMA migrations_failed"))
    except DatabaseUnavailable as error:
        unavailable("PostgreSQL", error)
    engine = make_engine(f"{POSTGRES_URL}?options=-csearch_path%3Dmigrations_failed")
    try:
        previous_release(engine)
        with engine.begin() as connection:  # what revision 0002 adds, already there
            connection.execute(text("ALTER TABLE api_keys ADD COLUMN last_used_at TEXT"))
        with pytest.raises(Exception, match="last_used_at"):
            upgrade_to_head(engine)
        assert current(engine) == BASELINE
        with engine.connect() as connection:
            stamped = connection.execute(
                text(
                    "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_name = 'alembic_version' AND table_schema = 'migrations_failed'"
                )
            ).scalar_one()
        assert stamped == 0  # the baseline stamp rolled back with the rest
        assert len(stored_raw(engine, "jobs")) == len(ROWS["jobs"])
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS migrations_failed CASCADE"))
        admin.dispose()


def stored_raw(engine: Engine, table: str) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(text(f"SELECT * FROM {table}")))


def test_the_db_commands_show_upgrade_and_list_revisions(tmp_path: Path) -> None:
    env = ragline_env(tmp_path)
    engine = make_engine(f"sqlite:///{tmp_path / 'ragline.db'}")
    previous_release(engine)
    engine.dispose()

    shown = run_cli("db", "current", env=env)
    assert shown.returncode == 0, shown.stderr
    assert f"{BASELINE} (made before migrations); this release needs {head()}" in shown.stdout
    refused = run_cli("keys", "list", env=env)
    assert refused.returncode == 78
    assert "run `ragline db upgrade`" in refused.stderr and "Traceback" not in refused.stderr

    upgraded = run_cli("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.strip() == f"upgraded the database from {BASELINE} to {head()}"
    again = run_cli("db", "upgrade", env=env)
    assert "nothing to do" in again.stdout
    trail = run_cli("audit", "list", "--action", "schema.upgrade", "--json", env=env)
    (entry,) = [json.loads(line) for line in trail.stdout.splitlines()]
    assert entry["actor"].startswith("operator:")
    assert (entry["before"], entry["after"]) == ({"revision": BASELINE}, {"revision": head()})
    listed = run_cli("keys", "list", env=env)
    assert listed.returncode == 0 and "never used" in listed.stdout
    history = run_cli("db", "history", env=env).stdout.splitlines()
    assert history[0].startswith(f"  {BASELINE}  baseline") and history[-1].startswith(
        f"* {head()}"
    )
