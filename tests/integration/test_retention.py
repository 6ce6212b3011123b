"""Retention (ragline/retention.py) on SQLite and PostgreSQL: what is older than its period
goes in bounded batches, each audited; a job still queued or running, waiting for a
reviewer, or owing a webhook is kept whatever its age; the sweeper runs a pass at most
every retention.interval_s."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from ragline import audit
from ragline.accounts import Accounts
from ragline.config import Retention as RetentionConfig
from ragline.models import (
    AuditEntry,
    Delivery,
    DeliveryStatus,
    EvalRun,
    Job,
    JobStatus,
    ReviewItem,
    ReviewStatus,
    UsageRecord,
    utcnow,
)
from ragline.retention import Retention

NOW = utcnow()
OLD = NOW - timedelta(days=40)
RECENT = NOW - timedelta(days=5)


def _job(session: Session, account_id: str, status: str, finished: datetime | None) -> str:
    job_id = uuid.uuid4().hex
    session.add(
        Job(
            id=job_id,
            account_id=account_id,
            request_hash="0" * 64,
            question=f"question of {job_id}",
            user_id="u-1",
            status=status,
            created_at=(finished or OLD) - timedelta(minutes=1),
            finished_at=finished,
            deadline_at=(finished or OLD) + timedelta(minutes=1),
        )
    )
    return job_id


def _review(session: Session, job_id: str, account_id: str, status: str) -> None:
    session.add(
        ReviewItem(job_id=job_id, account_id=account_id, reason="low_confidence", status=status)
    )


def _delivery(session: Session, job_id: str, account_id: str, status: str, at: datetime) -> None:
    session.add(
        Delivery(
            id=f"msg_{uuid.uuid4().hex}",
            job_id=job_id,
            account_id=account_id,
            url="https://hooks.example.com/x",
            event="job.answered",
            status=status,
            created_at=at,
        )
    )


def _count(engine: Engine, model: type, *where: object) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(model).where(*where)).one())


@pytest.fixture
def seeded(engine: Engine) -> dict[str, list[str]]:
    """Jobs in every state, old and recent, with their review items and deliveries."""
    account = Accounts(engine).create_account("acme")
    a = account.id
    kinds: dict[str, list[str]] = {}
    with Session(engine) as session:
        kinds["old_final"] = [_job(session, a, JobStatus.ANSWERED, OLD) for _ in range(5)]
        kinds["old_rejected"] = [_job(session, a, JobStatus.REJECTED, OLD)]
        kinds["old_reviewed"] = [_job(session, a, JobStatus.ESCALATED, OLD)]
        kinds["old_waiting_review"] = [_job(session, a, JobStatus.ESCALATED, OLD)]
        kinds["old_owing_webhook"] = [_job(session, a, JobStatus.ANSWERED, OLD)]
        kinds["old_queued"] = [_job(session, a, JobStatus.QUEUED, None)]
        kinds["old_running"] = [_job(session, a, JobStatus.RUNNING, None)]
        kinds["recent_final"] = [_job(session, a, JobStatus.ANSWERED, RECENT)]
        session.flush()
        _review(session, kinds["old_reviewed"][0], a, ReviewStatus.DECIDED)
        _review(session, kinds["old_waiting_review"][0], a, ReviewStatus.OPEN)
        _delivery(session, kinds["old_final"][0], a, DeliveryStatus.DELIVERED, OLD)
        _delivery(session, kinds["old_owing_webhook"][0], a, DeliveryStatus.PENDING, OLD)
        _delivery(session, kinds["recent_final"][0], a, DeliveryStatus.FAILED, OLD)
        for job_id in kinds["old_final"]:
            session.add(
                UsageRecord(
                    account_id=a, job_id=job_id, model_id="m", cost_micros=10, created_at=OLD
                )
            )
        for when in (OLD, RECENT):
            session.add(
                EvalRun(id=uuid.uuid4().hex[:12], dataset="d", dataset_hash="h", created_at=when)
            )
        session.commit()
    return kinds


def test_old_finished_jobs_go_in_audited_batches_and_unfinished_ones_stay(
    engine: Engine, seeded: dict[str, list[str]]
) -> None:
    retention = Retention(engine, RetentionConfig(jobs_days=30, batch_size=2))

    purged = retention.apply(NOW)

    gone = seeded["old_final"] + seeded["old_rejected"] + seeded["old_reviewed"]
    assert purged.counts == {"jobs": len(gone), "review_items": 1, "deliveries": 1}
    with Session(engine) as session:
        left = set(session.exec(select(Job.id)))
        assert left == {
            *seeded["old_waiting_review"],
            *seeded["old_owing_webhook"],
            *seeded["old_queued"],
            *seeded["old_running"],
            *seeded["recent_final"],
        }
        entries = list(
            session.exec(select(AuditEntry).where(col(AuditEntry.action) == "retention.purge"))
        )
    # Seven jobs two at a time: four batches, each its own audited transaction.
    assert [e.after["deleted"]["jobs"] for e in entries if e.after] == [2, 2, 2, 1]
    assert all(e.actor == "system:retention" and e.target == "jobs" for e in entries)
    assert audit.verify(engine).intact
    # The ledger keeps the deleted jobs' spend (usage_days is not set).
    assert _count(engine, UsageRecord) == 5
    assert retention.apply(NOW).counts == {}  # nothing more to do


def test_each_table_keeps_its_own_period(engine: Engine, seeded: dict[str, list[str]]) -> None:
    config = RetentionConfig(deliveries_days=30, eval_runs_days=30, usage_days=62)
    purged = Retention(engine, config).apply(NOW + timedelta(days=23))  # OLD: 63 days

    # Deliveries that ended go; the pending one (its job still owes it) stays.
    assert purged.counts == {"deliveries": 2, "eval_runs": 1, "usage_records": 5}
    assert _count(engine, Delivery) == 1
    assert _count(engine, Job) == 12  # jobs_days is not set: every job stays


def test_a_pass_runs_at_most_every_interval(engine: Engine) -> None:
    retention = Retention(engine, RetentionConfig(jobs_days=1, interval_s=600))
    assert retention.due(1000.0)
    assert not retention.due(1500.0)
    assert retention.due(1600.0)


def test_the_retention_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="usage_days"):
        RetentionConfig(usage_days=10)  # budgets read two calendar months of the ledger
    with pytest.raises(ValueError, match="jobs_days"):
        RetentionConfig(jobs_days=0)
