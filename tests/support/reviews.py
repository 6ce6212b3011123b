"""Review-queue helpers the tests share: finished jobs and their items, reviewers, and
reading the queue."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ragline.accounts import Accounts, Principal
from ragline.config import Review
from ragline.errors import NotFound
from ragline.jobs import JobRepository, Outcome
from ragline.models import Delivery, Job, JobStatus, ReviewItem, utcnow
from ragline.pipeline.validate import JobRequest
from ragline.reasons import ReviewReason
from ragline.review import QueueFilter, ReviewQueue, sla
from tests.support.waiting import wait_for


def escalations(engine: Engine) -> dict[str, str]:
    """job id -> reason of every escalation review item (sampled answers left out: a
    configured share of answered jobs is copied to the queue at random)."""
    rows = ReviewQueue(engine, Review()).list(None, QueueFilter(status="all"), limit=1000)
    return {item.job_id: item.reason for item, _ in rows if item.reason != ReviewReason.SAMPLED}


DEADLINE = timedelta(seconds=60)
LEASE = timedelta(seconds=30)
CALLBACK = "http://127.0.0.1:9/x"
DRAFT = "Employees get 25 days of annual leave [1]."
CITATIONS = [
    {
        "number": 1,
        "document_id": "hr/annual-leave",
        "chunk_id": "hr/annual-leave#0",
        "title": "Annual leave",
        "score": 0.91,
    }
]
PASSAGES = [
    {
        "document_id": "hr/annual-leave",
        "chunk_id": "hr/annual-leave#0",
        "title": "Annual leave",
        "text": "Every employee gets 25 days of annual leave per calendar year.",
        "score": 0.91,
    }
]
# claim_minutes=0.002 is a claim of about 0.12 s; default_sla_minutes=0.001 is 60 ms.
SHORT_CLAIM = Review(claim_minutes=0.002)
TINY_SLA = Review(default_sla_minutes=0.001, sla_minutes={})


def reviewer(engine: Engine, key_name: str, account: str = "acme") -> Principal:
    """A reviewer key with its own name (the name a claim conflict shows)."""
    accounts = Accounts(engine)
    try:
        accounts.account(account)
    except NotFound:
        accounts.create_account(account)
    issued = accounts.create_key(account, roles=("reviewer",), name=key_name)
    return accounts.authenticate(issued.plaintext)


def escalated(reason: str = "low_confidence", answer: str | None = DRAFT, **fields: Any) -> Outcome:
    return Outcome(
        status=JobStatus.ESCALATED,
        reason=reason,
        answer=answer,
        citations=CITATIONS,
        confidence=0.2,
        prompt_version="answer@abc123",
        model_id="extractive",
        index_version="kb_v1",
        passages=PASSAGES,
        **fields,
    )


def answered(answer: str = DRAFT) -> Outcome:
    return Outcome(
        status=JobStatus.ANSWERED,
        answer=answer,
        citations=CITATIONS,
        confidence=0.9,
        prompt_version="answer@abc123",
        model_id="extractive",
        index_version="kb_v1",
        passages=PASSAGES,
    )


def finished_job(
    engine: Engine,
    account_id: str,
    outcome: Outcome,
    *,
    question: str = "How much annual leave do I get?",
    priority: str = "normal",
    feature: str = "handbook",
    callback_url: str | None = None,
    sampled: bool = False,
    config: Review = Review(),
    due: datetime | None = None,
    metadata: dict[str, Any] | None = None,
) -> str:
    """Submit -> claim -> finish, as the pipeline does; returns the job id."""
    jobs = JobRepository(engine)
    request = JobRequest(
        question=question,
        user_id="u1",
        feature=feature,
        priority=priority,  # type: ignore[arg-type]
        callback_url=callback_url,
        metadata=metadata or {},
    )
    job, _ = jobs.submit(request, account_id=account_id, deadline=DEADLINE)
    claim = jobs.claim(job.id, LEASE)
    assert claim is not None
    reason = ReviewReason.SAMPLED if sampled else outcome.reason or ""
    review_due = due if due is not None else utcnow() + sla(config, reason)
    assert jobs.finish(claim, outcome, review_due=review_due, sampled=sampled)
    return job.id


def item_of(engine: Engine, job_id: str) -> ReviewItem:
    with Session(engine) as session:
        items = session.exec(select(ReviewItem).where(col(ReviewItem.job_id) == job_id)).all()
    assert len(items) == 1, items
    return items[0]


def item_id(engine: Engine, job_id: str) -> int:
    found = item_of(engine, job_id).id
    assert found is not None
    return found


def job_of(engine: Engine, job_id: str) -> Job:
    return JobRepository(engine).get(job_id)


def deliveries(engine: Engine, job_id: str) -> list[tuple[str, str]]:
    """(event, url) of every outbox row of the job."""
    with Session(engine) as session:
        rows = session.exec(
            select(Delivery).where(col(Delivery.job_id) == job_id).order_by(Delivery.created_at)
        ).all()
    return [(row.event, row.url) for row in rows]


def listed(queue: ReviewQueue, account_id: str | None, **filters: Any) -> list[str]:
    """Job ids in queue order."""
    return [job.id for _, job in queue.list(account_id, QueueFilter(**filters))]


def error_of(call: Callable[[], object], kind: type[Exception]) -> str:
    with pytest.raises(kind) as caught:
        call()
    return str(caught.value)


def claimed_item(
    engine: Engine, acme: str, holder: Principal, outcome: Outcome | None = None, **job: Any
) -> tuple[ReviewQueue, int, str]:
    """An escalation claimed by holder: (queue, item id, job id)."""
    queue = ReviewQueue(engine, Review())
    job_id = finished_job(engine, acme, outcome or escalated(), **job)
    item = item_id(engine, job_id)
    queue.claim(item, holder)
    return queue, item, job_id


def overdue_item(engine: Engine, acme: str, outcome: Outcome | None = None, **job: Any) -> str:
    """A job whose item falls due TINY_SLA's 60 ms after it finished; returns its id once
    that has passed."""
    job_id = finished_job(engine, acme, outcome or escalated(), config=TINY_SLA, **job)
    due = item_of(engine, job_id).due_at
    assert due is not None
    wait_for(lambda: utcnow() > due, timeout_s=5, every_s=0.01)
    return job_id
