"""The pool has no pre-ping: connections PostgreSQL dropped while they sat in the pool fail
their first statement, and admission's reads and writes run once more on a fresh one
(ragline.db.retry_stale), so a database restart costs no request an error."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from sqlalchemy.engine import Engine

from ragline.accounts import Accounts
from ragline.db import make_engine
from ragline.jobs import JobRepository
from ragline.models import Job
from ragline.pipeline.validate import JobRequest
from tests.support.tenants import make_tenant

pytestmark = pytest.mark.postgres


APP = "ragline-reconnect-test"


def _drop_every_connection(engine: Engine) -> int:
    """What a PostgreSQL restart does to the pool: the server side of each of its
    connections is gone (only this engine's, named by application_name, so that other
    tests' pools are left alone)."""
    url = engine.url.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (APP,),
        ).fetchall()
    return len(rows)


def test_admission_survives_the_connections_dropped_under_the_pool(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to drop connections")
    own = make_engine(
        engine.url.update_query_dict({"application_name": APP}).render_as_string(
            hide_password=False
        )
    )
    try:
        _survives_restarts(own)
    finally:
        own.dispose()


def _survives_restarts(engine: Engine) -> None:
    principal, key = make_tenant(engine)
    accounts, jobs = Accounts(engine), JobRepository(engine)
    question = JobRequest(question="How many days of annual leave?", user_id="u-1")
    accounts.authenticate(key)  # the pool now holds a connection

    assert _drop_every_connection(engine) >= 1
    assert accounts.authenticate(key).key_id == principal.key_id

    def submit_after_a_restart() -> tuple[Job, bool]:
        _drop_every_connection(engine)
        return jobs.submit(
            question,
            account_id=principal.account_id,
            key_id=principal.key_id,
            deadline=timedelta(minutes=1),
            idempotency_key="restart-1",
        )

    job, created = submit_after_a_restart()
    assert created
    replayed, created = submit_after_a_restart()
    assert not created and replayed.id == job.id
