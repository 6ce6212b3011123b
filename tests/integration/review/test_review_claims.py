"""Claims as leases: one holder, conflicts naming the holder, expiry and release."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy.engine import Engine

from ragline.accounts import Principal
from ragline.config import Review
from ragline.errors import Conflict
from ragline.models import Decision, ReviewStatus, utcnow
from ragline.review import ReviewQueue
from tests.support.reviews import (
    SHORT_CLAIM,
    claimed_item,
    error_of,
    escalated,
    finished_job,
    item_id,
    item_of,
    listed,
)
from tests.support.waiting import wait_for

# -- claims ------------------------------------------------------------------------------------


def test_the_first_reviewer_to_claim_holds_the_item(
    engine: Engine, acme: str, alice: Principal
) -> None:
    queue = ReviewQueue(engine, Review())
    job_id = finished_job(engine, acme, escalated())
    before = utcnow()
    claimed = queue.claim(item_id(engine, job_id), alice)
    assert claimed.status == ReviewStatus.CLAIMED
    assert (claimed.claimed_by, claimed.claimed_by_name) == (alice.key_id, "alice")
    assert claimed.claim_expires_at is not None
    assert claimed.claim_expires_at >= before + timedelta(minutes=15)
    assert claimed.claim_expires_at <= utcnow() + timedelta(minutes=15)


def test_a_second_reviewer_gets_a_conflict_naming_the_holder_and_until_when(
    engine: Engine, acme: str, alice: Principal, bob: Principal
) -> None:
    queue, item, job_id = claimed_item(engine, acme, alice)
    expires = item_of(engine, job_id).claim_expires_at
    assert expires is not None
    message = error_of(lambda: queue.claim(item, bob), Conflict)
    until = expires.isoformat(timespec="seconds")
    assert message == f"review item {item} is claimed by alice until {until}"
    assert item_of(engine, job_id).claimed_by == alice.key_id


def test_the_holder_claiming_again_extends_the_claim(
    engine: Engine, acme: str, alice: Principal
) -> None:
    queue, item, job_id = claimed_item(engine, acme, alice)
    first = item_of(engine, job_id).claim_expires_at
    assert first is not None
    time.sleep(0.01)
    again = queue.claim(item, alice)
    assert again.claimed_by == alice.key_id
    assert again.claim_expires_at is not None and again.claim_expires_at > first


def test_an_expired_claim_puts_the_item_back_in_the_queue_for_anyone(
    engine: Engine, acme: str, alice: Principal, bob: Principal
) -> None:
    queue = ReviewQueue(engine, SHORT_CLAIM)
    job_id = finished_job(engine, acme, escalated())
    item = item_id(engine, job_id)
    queue.claim(item, alice)
    assert listed(queue, acme, status="claimed") == [job_id]
    wait_for(lambda: listed(queue, acme, status="open") == [job_id], timeout_s=5)
    assert listed(queue, acme, status="claimed") == []
    taken = queue.claim(item, bob)
    assert (taken.claimed_by, taken.claimed_by_name) == (bob.key_id, "bob")


def test_release_gives_the_item_back_to_the_queue(
    engine: Engine, acme: str, alice: Principal, bob: Principal
) -> None:
    queue, item, job_id = claimed_item(engine, acme, alice)
    released = queue.release(item, alice)
    assert (released.status, released.claimed_by, released.claim_expires_at) == (
        ReviewStatus.OPEN,
        None,
        None,
    )
    assert listed(queue, acme, status="open") == [job_id]
    assert queue.claim(item, bob).claimed_by == bob.key_id


def test_only_the_holder_can_release_a_claim(
    engine: Engine, acme: str, alice: Principal, bob: Principal
) -> None:
    queue, item, job_id = claimed_item(engine, acme, alice)
    message = error_of(lambda: queue.release(item, bob), Conflict)
    assert message == "you do not hold a claim on this item"
    assert item_of(engine, job_id).claimed_by == alice.key_id


def test_a_decided_item_cannot_be_claimed(
    engine: Engine, acme: str, alice: Principal, bob: Principal
) -> None:
    queue, item, _ = claimed_item(engine, acme, alice)
    queue.decide(item, alice, Decision.APPROVE)
    message = error_of(lambda: queue.claim(item, bob), Conflict)
    assert message == f"review item {item} was already decided (approve)"
