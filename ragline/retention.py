"""Retention: data older than `retention.*_days` is deleted by the sweeper, a bounded batch
per transaction, each batch recorded in the audit trail with what it deleted.

Only what is finished goes: a job still queued or running, waiting for a reviewer, or owing
a webhook delivery is kept whatever its age. A job goes with its review item and its
deliveries (they point at it); its ledger rows stay until `usage_days`, so spend still adds
up. The audit trail is never deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, exists, not_, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from ragline import audit
from ragline.audit import Actor
from ragline.config import Retention as RetentionConfig
from ragline.models import (
    CacheEntry,
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

log = structlog.get_logger("ragline.retention")

ACTOR = Actor.system("retention")
UNFINISHED = tuple(status.value for status in JobStatus if not status.final)


@dataclass
class Purged:
    """Rows deleted in one pass, per table."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, n: int) -> None:
        if n:
            self.counts[table] = self.counts.get(table, 0) + n

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Retention:
    def __init__(self, engine: Engine, config: RetentionConfig) -> None:
        self.engine = engine
        self.config = config
        self._next_pass = 0.0  # a monotonic time; the first sweep runs a pass

    def due(self, now: float) -> bool:
        """Whether the sweeper should run a pass (every retention.interval_s)."""
        if now < self._next_pass:
            return False
        self._next_pass = now + self.config.interval_s
        return True

    def apply(self, now: datetime | None = None) -> Purged:
        """One pass over every table with a retention period."""
        now = now or utcnow()
        purged = Purged()
        days = self.config
        if days.jobs_days:
            self._batches(purged, "jobs", now - timedelta(days=days.jobs_days), self._jobs)
        if days.deliveries_days:
            cutoff = now - timedelta(days=days.deliveries_days)
            self._batches(purged, "deliveries", cutoff, self._deliveries)
        if days.eval_runs_days:
            cutoff = now - timedelta(days=days.eval_runs_days)
            self._batches(purged, "eval_runs", cutoff, self._eval_runs)
        if days.usage_days:
            cutoff = now - timedelta(days=days.usage_days)
            self._batches(purged, "usage_records", cutoff, self._usage)
        if purged.total:
            log.info("retention_purged", **purged.counts)
        return purged

    def _batches(
        self,
        purged: Purged,
        table: str,
        cutoff: datetime,
        batch: Callable[[Session, datetime], dict[str, int]],
    ) -> None:
        for _ in range(self.config.max_batches):
            with Session(self.engine) as session:
                deleted = batch(session, cutoff)
                if not any(deleted.values()):
                    return
                audit.append(
                    session,
                    ACTOR,
                    "retention.purge",
                    table,
                    after={"cutoff": cutoff.isoformat(), "deleted": deleted},
                )
                session.commit()
            for name, n in deleted.items():
                purged.add(name, n)
            if deleted.get(table, 0) < self.config.batch_size:
                return

    def _jobs(self, session: Session, cutoff: datetime) -> dict[str, int]:
        awaiting_review = exists().where(
            col(ReviewItem.job_id) == col(Job.id),
            col(ReviewItem.status) != ReviewStatus.DECIDED.value,
        )
        owing_delivery = exists().where(
            col(Delivery.job_id) == col(Job.id),
            col(Delivery.status) == DeliveryStatus.PENDING.value,
        )
        ids = list(
            session.execute(
                select(col(Job.id))
                .where(
                    col(Job.status).not_in(UNFINISHED),
                    col(Job.finished_at).is_not(None),
                    col(Job.finished_at) < cutoff,
                    not_(awaiting_review),
                    not_(owing_delivery),
                )
                .limit(self.config.batch_size)
            ).scalars()
        )
        if not ids:
            return {}
        deleted = delete_jobs(session, ids, guard=col(Job.status).not_in(UNFINISHED))
        return deleted

    def _deliveries(self, session: Session, cutoff: datetime) -> dict[str, int]:
        ids = list(
            session.execute(
                select(col(Delivery.id))
                .where(
                    col(Delivery.status) != DeliveryStatus.PENDING.value,
                    col(Delivery.created_at) < cutoff,
                )
                .limit(self.config.batch_size)
            ).scalars()
        )
        return {"deliveries": _rowcount(session, delete(Delivery).where(col(Delivery.id).in_(ids)))}

    def _eval_runs(self, session: Session, cutoff: datetime) -> dict[str, int]:
        ids = list(
            session.execute(
                select(col(EvalRun.id))
                .where(col(EvalRun.created_at) < cutoff)
                .limit(self.config.batch_size)
            ).scalars()
        )
        return {"eval_runs": _rowcount(session, delete(EvalRun).where(col(EvalRun.id).in_(ids)))}

    def _usage(self, session: Session, cutoff: datetime) -> dict[str, int]:
        ids = list(
            session.execute(
                select(col(UsageRecord.id))
                .where(col(UsageRecord.created_at) < cutoff)
                .limit(self.config.batch_size)
            ).scalars()
        )
        statement = delete(UsageRecord).where(col(UsageRecord.id).in_(ids))
        return {"usage_records": _rowcount(session, statement)}


def delete_jobs(session: Session, ids: list[str], guard: Any = None) -> dict[str, int]:
    """Delete jobs with the rows that point at them (review items, deliveries, answer-cache
    entries), in the session's transaction. guard: a condition each job must still meet
    (checked again in the DELETE, so a job that changed since it was chosen stays)."""
    if guard is not None:
        ids = list(
            session.execute(select(col(Job.id)).where(col(Job.id).in_(ids), guard)).scalars()
        )
    if not ids:
        return {}
    return {
        "review_items": _rowcount(
            session, delete(ReviewItem).where(col(ReviewItem.job_id).in_(ids))
        ),
        "deliveries": _rowcount(session, delete(Delivery).where(col(Delivery.job_id).in_(ids))),
        # A deleted (or erased) job's answer is never served again from the answer cache.
        "cache_entries": _rowcount(
            session, delete(CacheEntry).where(col(CacheEntry.job_id).in_(ids))
        ),
        "jobs": _rowcount(session, delete(Job).where(col(Job.id).in_(ids))),
    }


def _rowcount(session: Session, statement: Any) -> int:
    return int(session.execute(statement).rowcount)  # type: ignore[attr-defined]
