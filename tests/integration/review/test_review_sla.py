"""Service levels that act by themselves: overdue items flagged, raised, and the fallback
delivered unless a live claim protects the item."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from ragline.accounts import Principal
from ragline.config import Review
from ragline.models import Decision, JobStatus, ReviewStatus
from ragline.review import SLA_EXPIRED, ReviewQueue
from tests.support.reviews import (
    CALLBACK,
    DRAFT,
    answered,
    deliveries,
    escalated,
    finished_job,
    item_id,
    item_of,
    job_of,
    listed,
    overdue_item,
)
from tests.support.waiting import wait_for

# -- service levels ------------------------------------------------------------------------------


def test_an_overdue_item_is_flagged_once(engine: Engine, acme: str) -> None:
    config = Review(on_sla_breach="flag_only")
    job_id = overdue_item(engine, acme)
    on_time = finished_job(engine, acme, escalated())  # due in 4 hours
    queue = ReviewQueue(engine, config)
    assert queue.enforce_sla() == 1
    assert queue.enforce_sla() == 0
    item = item_of(engine, job_id)
    assert (item.sla_breached, item.status, item.priority) == (True, "open", 1)
    assert item_of(engine, on_time).sla_breached is False
    assert job_of(engine, job_id).status == JobStatus.ESCALATED


def test_a_breach_raises_the_items_priority(engine: Engine, acme: str) -> None:
    config = Review(on_sla_breach="raise_priority")
    job_id = overdue_item(engine, acme, priority="low")
    queue = ReviewQueue(engine, config)
    assert queue.enforce_sla() == 1
    item = item_of(engine, job_id)
    assert (item.sla_breached, item.priority, item.status) == (True, 2, "open")
    assert job_of(engine, job_id).status == JobStatus.ESCALATED


def test_a_breach_with_deliver_fallback_rejects_the_job_with_the_fallback_answer(
    engine: Engine, acme: str
) -> None:
    config = Review(on_sla_breach="deliver_fallback")
    job_id = overdue_item(engine, acme, callback_url=CALLBACK)
    assert ReviewQueue(engine, config).enforce_sla() == 1
    job = job_of(engine, job_id)
    assert (job.status, job.reason, job.answer) == ("rejected", SLA_EXPIRED, config.fallback_answer)
    assert (job.decided_by, job.citations) == ("system:sla", [])
    item = item_of(engine, job_id)
    assert (item.status, item.decision, item.reason_code) == ("decided", "reject", SLA_EXPIRED)
    assert (item.final_answer, item.decided_by) == (config.fallback_answer, "system:sla")
    assert item.sla_breached is True and item.decided_at is not None
    assert deliveries(engine, job_id) == [("job.rejected", CALLBACK)]


def test_a_live_claim_keeps_an_overdue_item_from_the_fallback_but_it_is_flagged(
    engine: Engine, acme: str, alice: Principal
) -> None:
    config = Review(on_sla_breach="deliver_fallback")
    job_id = overdue_item(engine, acme)
    queue = ReviewQueue(engine, config)
    queue.claim(item_id(engine, job_id), alice)
    assert job_of(engine, job_id).status == JobStatus.ESCALATED
    item = item_of(engine, job_id)
    assert (item.status, item.claimed_by) == ("claimed", alice.key_id)
    assert queue.enforce_sla() == 1
    assert item_of(engine, job_id).sla_breached is True


def test_a_live_claim_keeps_an_overdue_item_from_the_fallback(
    engine: Engine, acme: str, alice: Principal
) -> None:
    config = Review(on_sla_breach="deliver_fallback")
    job_id = overdue_item(engine, acme)
    queue = ReviewQueue(engine, config)
    item = item_id(engine, job_id)
    queue.claim(item, alice)
    queue.enforce_sla()
    assert job_of(engine, job_id).status == JobStatus.ESCALATED
    assert item_of(engine, job_id).status == ReviewStatus.CLAIMED
    _, job = queue.decide(item, alice, Decision.APPROVE)
    assert (job.status, job.decided_by) == ("answered", "reviewer:alice")


def test_the_fallback_is_delivered_once_the_protecting_claim_lapses(
    engine: Engine, acme: str, alice: Principal
) -> None:
    config = Review(on_sla_breach="deliver_fallback", claim_minutes=0.002)
    job_id = overdue_item(engine, acme)
    queue = ReviewQueue(engine, config)
    queue.claim(item_id(engine, job_id), alice)
    wait_for(lambda: listed(queue, acme, status="open") == [job_id], timeout_s=5)
    assert queue.enforce_sla() == 1
    job = job_of(engine, job_id)
    assert (job.status, job.reason, job.decided_by) == ("rejected", SLA_EXPIRED, "system:sla")


def test_a_sampled_item_is_never_rejected_by_the_fallback(engine: Engine, acme: str) -> None:
    config = Review(on_sla_breach="deliver_fallback")
    job_id = overdue_item(engine, acme, answered(), sampled=True)
    assert ReviewQueue(engine, config).enforce_sla() == 1
    item = item_of(engine, job_id)
    assert (item.sla_breached, item.status, item.decision) == (True, "open", None)
    job = job_of(engine, job_id)
    assert (job.status, job.answer, job.decided_by) == ("answered", DRAFT, "model")


def test_a_decided_item_is_never_flagged(engine: Engine, acme: str, alice: Principal) -> None:
    config = Review(on_sla_breach="deliver_fallback")
    job_id = overdue_item(engine, acme)
    queue = ReviewQueue(engine, config)
    item = item_id(engine, job_id)
    queue.claim(item, alice)
    queue.decide(item, alice, Decision.APPROVE)
    assert queue.enforce_sla() == 0
    assert item_of(engine, job_id).sla_breached is False
    assert job_of(engine, job_id).decided_by == "reviewer:alice"
