"""The job repository: admission with idempotency, the status compare-and-set that makes
the actor idempotent, outcomes, and what the sweeper must send again."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ragline.errors import Conflict, NotFound
from ragline.models import PRIORITIES, Account, Delivery, Job, JobStatus, ReviewItem, utcnow
from ragline.pipeline.validate import JobRequest


def request_hash(request: JobRequest) -> str:
    canonical = json.dumps(request.model_dump(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def add_delivery(session: Session, job: Job, status: str) -> None:
    """The outbox row for a final result, when the job asked for a callback."""
    if job.callback_url:
        session.add(
            Delivery(
                id=f"msg_{uuid.uuid4().hex}",
                job_id=job.id,
                account_id=job.account_id,
                url=job.callback_url,
                event=f"job.{status}",
            )
        )


@dataclass(frozen=True)
class Outcome:
    """What a finished pipeline run stores on its job."""

    status: JobStatus
    reason: str | None = None
    answer: str | None = None
    citations: list[dict[str, Any]] = field(default_factory=list)
    confidence: float | None = None
    prompt_version: str | None = None
    model_id: str | None = None
    index_version: str | None = None
    passages: list[dict[str, Any]] = field(default_factory=list)
    stage_timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    guardrails: dict[str, Any] = field(default_factory=dict)
    confidence_inputs: dict[str, Any] = field(default_factory=dict)
    trace: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    """A worker's right to run one attempt of a job until the lease expires."""

    job: Job
    attempt: int


class JobRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def submit(
        self,
        request: JobRequest,
        *,
        account_id: str,
        deadline: timedelta,
        key_id: str | None = None,
        groups: tuple[str, ...] = ("everyone",),
        idempotency_key: str | None = None,
        request_id: str | None = None,
        guardrails: dict[str, Any] | None = None,
    ) -> tuple[Job, bool]:
        """Store a new queued job; return (job, created). A replayed key returns the first
        job. Idempotency keys are per account: two tenants may use the same key.
        request is as admitted (its question already redacted); guardrails is what
        admission's redaction recorded."""
        digest = request_hash(request)
        if idempotency_key is not None:
            existing = self._by_idempotency_key(account_id, idempotency_key)
            if existing is not None:
                return self._replay(existing, digest), False
        now = utcnow()
        job = Job(
            id=uuid.uuid4().hex,
            account_id=account_id,
            key_id=key_id,
            groups=list(groups),
            idempotency_key=idempotency_key,
            request_hash=digest,
            request_id=request_id,
            question=request.question,
            user_id=request.user_id,
            feature=request.feature,
            meta=dict(request.metadata),
            priority=request.priority,
            callback_url=request.callback_url,
            guardrails=dict(guardrails or {}),
            status=JobStatus.QUEUED,
            created_at=now,
            updated_at=now,
            deadline_at=now + deadline,
        )
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                session.add(job)
                session.commit()
        except IntegrityError:
            # Two requests with the same key raced; the unique index picked the winner.
            if idempotency_key is None:
                raise
            existing = self._by_idempotency_key(account_id, idempotency_key)
            if existing is None:
                raise
            return self._replay(existing, digest), False
        return job, True

    def replay(self, account_id: str, idempotency_key: str, request: JobRequest) -> Job | None:
        """The job this key already made (Conflict if for another body), or None."""
        existing = self._by_idempotency_key(account_id, idempotency_key)
        return None if existing is None else self._replay(existing, request_hash(request))

    @staticmethod
    def _replay(existing: Job, digest: str) -> Job:
        if existing.request_hash != digest:
            raise Conflict("Idempotency-Key was already used with a different request body")
        return existing

    def _by_idempotency_key(self, account_id: str, key: str) -> Job | None:
        with Session(self.engine, expire_on_commit=False) as session:
            return session.exec(
                select(Job).where(Job.account_id == account_id, Job.idempotency_key == key)
            ).first()

    def get(self, job_id: str, account_id: str | None = None) -> Job:
        """The job; with account_id, only if it belongs to that account. Another account's
        job is NotFound, exactly like a missing one, so ids cannot be probed."""
        with Session(self.engine, expire_on_commit=False) as session:
            job = session.get(Job, job_id)
        if job is None or (account_id is not None and job.account_id != account_id):
            raise NotFound(f"job {job_id} not found")
        return job

    def account_name(self, account_id: str) -> str:
        with Session(self.engine) as session:
            account = session.get(Account, account_id)
        if account is None:
            raise NotFound(f"account {account_id} not found")
        return account.name

    def queue_depth(self) -> int:
        with Session(self.engine) as session:
            count = session.exec(
                select(func.count()).select_from(Job).where(col(Job.status) == JobStatus.QUEUED)
            ).one()
        return int(count)

    def mark_dispatched(self, job_id: str) -> None:
        with Session(self.engine) as session:
            session.execute(
                update(Job)
                .where(
                    col(Job.id) == job_id,
                    col(Job.status).in_([JobStatus.QUEUED, JobStatus.RUNNING]),
                )
                .values(dispatched_at=utcnow())
            )
            session.commit()

    def claim(self, job_id: str, lease: timedelta) -> Claim | None:
        """Compare-and-set queued (or running past its lease) → running. None: not ours."""
        now = utcnow()
        with Session(self.engine, expire_on_commit=False) as session:
            result = session.execute(
                update(Job)
                .where(
                    col(Job.id) == job_id,
                    or_(
                        col(Job.status) == JobStatus.QUEUED,
                        and_(
                            col(Job.status) == JobStatus.RUNNING,
                            col(Job.lease_expires_at) < now,
                        ),
                    ),
                )
                .values(
                    status=JobStatus.RUNNING,
                    attempts=col(Job.attempts) + 1,
                    started_at=now,
                    updated_at=now,
                    lease_expires_at=now + lease,
                )
            )
            session.commit()
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            job = session.get(Job, job_id)
        assert job is not None
        return Claim(job=job, attempt=job.attempts)

    def finish(
        self,
        claim: Claim,
        outcome: Outcome,
        *,
        review_due: datetime | None = None,
        sampled: bool = False,
    ) -> bool:
        """Store the outcome if this attempt still holds the job (fencing by attempt number).

        In the same transaction: the escalation's review item (due at review_due), a sampled
        answer's review item, and the webhook delivery of a final result, so an escalated
        job is never missing from the queue and a result never misses its callback.
        """
        now = utcnow()
        job = claim.job
        with Session(self.engine) as session:
            result = session.execute(
                update(Job)
                .where(
                    col(Job.id) == claim.job.id,
                    col(Job.status) == JobStatus.RUNNING,
                    col(Job.attempts) == claim.attempt,
                )
                .values(
                    status=outcome.status,
                    reason=outcome.reason,
                    answer=outcome.answer,
                    citations=outcome.citations,
                    confidence=outcome.confidence,
                    prompt_version=outcome.prompt_version,
                    model_id=outcome.model_id,
                    index_version=outcome.index_version,
                    passages=outcome.passages,
                    stage_timings=outcome.stage_timings,
                    error=outcome.error,
                    guardrails=outcome.guardrails,
                    confidence_inputs=outcome.confidence_inputs,
                    trace=outcome.trace,
                    decided_by=None if outcome.status == JobStatus.ESCALATED else "model",
                    finished_at=now,
                    updated_at=now,
                    lease_expires_at=None,
                )
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                session.rollback()
                return False
            if outcome.status == JobStatus.ESCALATED or (
                sampled and outcome.status == JobStatus.ANSWERED
            ):
                session.add(
                    ReviewItem(
                        job_id=job.id,
                        account_id=job.account_id,
                        reason="sampled"
                        if outcome.status == JobStatus.ANSWERED
                        else outcome.reason or "unknown",
                        priority=PRIORITIES.get(job.priority, 1),
                        due_at=review_due,
                        draft_answer=outcome.answer,
                        created_at=now,
                    )
                )
            if outcome.status != JobStatus.ESCALATED:  # an escalated job waits for review
                add_delivery(session, job, outcome.status)
            session.commit()
        return True

    def release(self, claim: Claim) -> None:
        """Give the job back to the queue (a transient failure); the next attempt claims it."""
        with Session(self.engine) as session:
            session.execute(
                update(Job)
                .where(
                    col(Job.id) == claim.job.id,
                    col(Job.status) == JobStatus.RUNNING,
                    col(Job.attempts) == claim.attempt,
                )
                .values(status=JobStatus.QUEUED, lease_expires_at=None, updated_at=utcnow())
            )
            session.commit()

    def due_for_dispatch(
        self, *, requeue_after: timedelta, limit: int = 500, now: datetime | None = None
    ) -> list[str]:
        """Jobs whose message may be lost: queued and not sent recently, or running past
        their lease (the worker died)."""
        now = now or utcnow()
        stale = now - requeue_after
        with Session(self.engine) as session:
            rows = session.exec(
                select(Job.id)
                .where(
                    or_(
                        and_(
                            col(Job.status) == JobStatus.QUEUED,
                            or_(
                                col(Job.dispatched_at).is_(None),
                                col(Job.dispatched_at) < stale,
                            ),
                            col(Job.created_at) < now - timedelta(seconds=2),
                        ),
                        and_(
                            col(Job.status) == JobStatus.RUNNING,
                            col(Job.lease_expires_at) < now,
                            or_(
                                col(Job.dispatched_at).is_(None),
                                col(Job.dispatched_at) < stale,
                            ),
                        ),
                    )
                )
                .order_by(col(Job.created_at))
                .limit(limit)
            )
            return list(rows)
