"""Review items made by finished jobs, and the queue's order and filters, on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from ragline.accounts import Principal
from ragline.config import Review
from ragline.errors import InvalidInput, NotFound
from ragline.models import Decision, JobStatus, ReviewStatus, utcnow
from ragline.reasons import ReviewReason
from ragline.review import QueueFilter, ReviewQueue, sla
from tests.support.reviews import (
    CALLBACK,
    DRAFT,
    answered,
    claimed_item,
    deliveries,
    error_of,
    escalated,
    finished_job,
    item_id,
    item_of,
    job_of,
    listed,
    reviewer,
)
from tests.support.tenants import make_tenant

# -- items made by finished jobs ----------------------------------------------------------


def test_an_escalated_job_gets_one_item_with_its_reason_priority_due_time_and_draft(
    engine: Engine, acme: str
) -> None:
    before = utcnow()
    job_id = finished_job(engine, acme, escalated("policy"), priority="high")
    after = utcnow()
    item = item_of(engine, job_id)
    window = sla(Review(), "policy")
    assert window == timedelta(minutes=60)
    assert item.due_at is not None and before + window <= item.due_at <= after + window
    assert (item.account_id, item.reason, item.priority) == (acme, "policy", 2)
    assert item.draft_answer == DRAFT
    assert item.status == ReviewStatus.OPEN
    assert (item.claimed_by, item.decision, item.sla_breached) == (None, None, False)
    job = job_of(engine, job_id)
    assert (job.status, job.reason, job.decided_by) == ("escalated", "policy", None)


@pytest.mark.parametrize(("priority", "number"), [("low", 0), ("normal", 1), ("high", 2)])
def test_an_items_priority_is_the_jobs_priority_as_a_number(
    engine: Engine, acme: str, priority: str, number: int
) -> None:
    job_id = finished_job(engine, acme, escalated(), priority=priority)
    assert item_of(engine, job_id).priority == number


def test_an_escalated_job_writes_no_delivery_until_it_is_decided(engine: Engine, acme: str) -> None:
    job_id = finished_job(engine, acme, escalated(), callback_url=CALLBACK)
    assert deliveries(engine, job_id) == []


def test_a_sampled_answer_gets_a_sampled_item_and_is_still_delivered(
    engine: Engine, acme: str
) -> None:
    job_id = finished_job(engine, acme, answered(), sampled=True, callback_url=CALLBACK)
    item = item_of(engine, job_id)
    assert (item.reason, item.draft_answer, item.status) == (ReviewReason.SAMPLED, DRAFT, "open")
    job = job_of(engine, job_id)
    assert (job.status, job.answer, job.decided_by) == ("answered", DRAFT, "model")
    assert deliveries(engine, job_id) == [("job.answered", CALLBACK)]


def test_an_answer_that_is_not_sampled_gets_no_item(engine: Engine, acme: str) -> None:
    job_id = finished_job(engine, acme, answered())
    assert ReviewQueue(engine, Review()).list(None, QueueFilter(status="all")) == []
    assert job_of(engine, job_id).status == JobStatus.ANSWERED


# -- the queue's order and filters ---------------------------------------------------------


def test_the_queue_lists_by_priority_then_due_time_then_age(engine: Engine, acme: str) -> None:
    now = utcnow()
    same_due = now + timedelta(minutes=60)
    normal_first = finished_job(engine, acme, escalated(), due=same_due)
    high_late = finished_job(
        engine, acme, escalated(), priority="high", due=now + timedelta(hours=2)
    )
    normal_soon = finished_job(engine, acme, escalated(), due=now + timedelta(minutes=30))
    low_soonest = finished_job(engine, acme, escalated(), priority="low", due=now)
    normal_second = finished_job(engine, acme, escalated(), due=same_due)
    queue = ReviewQueue(engine, Review())
    assert listed(queue, acme) == [
        high_late,
        normal_soon,
        normal_first,
        normal_second,
        low_soonest,
    ]


def test_the_queue_filters_by_reason(engine: Engine, acme: str) -> None:
    low = finished_job(engine, acme, escalated("low_confidence"))
    policy = finished_job(engine, acme, escalated("policy"))
    sampled = finished_job(engine, acme, answered(), sampled=True)
    queue = ReviewQueue(engine, Review())
    assert listed(queue, acme, reason="low_confidence") == [low]
    assert listed(queue, acme, reason="policy") == [policy]
    assert listed(queue, acme, reason=ReviewReason.SAMPLED) == [sampled]
    assert listed(queue, acme, reason="timeout") == []


def test_the_queue_filters_by_feature(engine: Engine, acme: str) -> None:
    handbook = finished_job(engine, acme, escalated(), feature="handbook")
    billing = finished_job(engine, acme, escalated(), feature="billing")
    queue = ReviewQueue(engine, Review())
    assert listed(queue, acme, feature="billing") == [billing]
    assert listed(queue, acme, feature="handbook") == [handbook]


def test_the_queue_filters_overdue_items(engine: Engine, acme: str) -> None:
    late = finished_job(engine, acme, escalated(), due=utcnow() - timedelta(minutes=1))
    on_time = finished_job(engine, acme, escalated(), due=utcnow() + timedelta(minutes=1))
    queue = ReviewQueue(engine, Review())
    assert listed(queue, acme, overdue=True) == [late]
    assert listed(queue, acme, overdue=False) == [on_time]
    assert listed(queue, acme) == [late, on_time]


def test_the_queue_filters_by_status(engine: Engine, acme: str, alice: Principal) -> None:
    queue = ReviewQueue(engine, Review())
    opened = finished_job(engine, acme, escalated(), due=utcnow() + timedelta(minutes=1))
    claimed = finished_job(engine, acme, escalated(), due=utcnow() + timedelta(minutes=2))
    decided = finished_job(engine, acme, escalated(), due=utcnow() + timedelta(minutes=3))
    queue.claim(item_id(engine, claimed), alice)
    queue.claim(item_id(engine, decided), alice)
    queue.decide(item_id(engine, decided), alice, Decision.APPROVE)
    assert listed(queue, acme) == [opened, claimed]  # pending is the default
    assert listed(queue, acme, status="pending") == [opened, claimed]
    assert listed(queue, acme, status="open") == [opened]
    assert listed(queue, acme, status="claimed") == [claimed]
    assert listed(queue, acme, status="decided") == [decided]
    assert listed(queue, acme, status="all") == [opened, claimed, decided]


def test_an_unknown_status_filter_is_invalid_input(engine: Engine, acme: str) -> None:
    queue = ReviewQueue(engine, Review())
    message = error_of(lambda: queue.list(acme, QueueFilter(status="closed")), InvalidInput)
    assert message == "status must be pending, open, claimed, decided or all"


def test_another_accounts_items_are_invisible(engine: Engine, acme: str) -> None:
    globex, _ = make_tenant(engine, "globex")
    mine = finished_job(engine, acme, escalated())
    theirs = finished_job(engine, globex.account_id, escalated())
    queue = ReviewQueue(engine, Review())
    assert listed(queue, acme, status="all") == [mine]
    assert listed(queue, globex.account_id, status="all") == [theirs]
    assert set(listed(queue, None, status="all")) == {mine, theirs}  # an admin's view
    theirs_item = item_id(engine, theirs)
    message = error_of(lambda: queue.get(theirs_item, acme), NotFound)
    assert message == f"review item {theirs_item} not found"
    assert queue.get(theirs_item, None)[1].id == theirs


def test_another_accounts_reviewer_cannot_claim_or_decide_an_item(
    engine: Engine, acme: str, alice: Principal
) -> None:
    outsider = reviewer(engine, "mallory", account="globex")
    queue, item, job_id = claimed_item(engine, acme, alice)
    queue.release(item, alice)
    with pytest.raises(NotFound):
        queue.claim(item, outsider)
    with pytest.raises(NotFound):
        queue.decide(item, outsider, Decision.APPROVE)
    assert item_of(engine, job_id).status == ReviewStatus.OPEN


def test_a_missing_item_is_not_found(engine: Engine, acme: str) -> None:
    assert error_of(lambda: ReviewQueue(engine, Review()).get(999, acme), NotFound) == (
        "review item 999 not found"
    )
