"""The review queue on SQLite and PostgreSQL: items made by finished jobs, the queue's order
and filters, claims as leases, decisions that deliver, service levels that act by
themselves, and decisions kept as labelled examples."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ragline.accounts import Accounts, Principal
from ragline.config import Review
from ragline.errors import Conflict, InvalidInput, NotFound
from ragline.jobs import JobRepository, Outcome
from ragline.models import Decision, Delivery, Job, JobStatus, ReviewItem, ReviewStatus, utcnow
from ragline.pipeline.validate import JobRequest
from ragline.review import SAMPLED, SLA_EXPIRED, QueueFilter, ReviewQueue, sla
from tests.conftest import make_tenant
from tests.support.waiting import wait_for

T = TypeVar("T")

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


# -- building jobs, items and reviewers ---------------------------------------------------


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
) -> str:
    """Submit -> claim -> finish, as the pipeline does; returns the job id."""
    jobs = JobRepository(engine)
    request = JobRequest(
        question=question,
        user_id="u1",
        feature=feature,
        priority=priority,  # type: ignore[arg-type]
        callback_url=callback_url,
    )
    job, _ = jobs.submit(request, account_id=account_id, deadline=DEADLINE)
    claim = jobs.claim(job.id, LEASE)
    assert claim is not None
    reason = SAMPLED if sampled else outcome.reason or ""
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


@pytest.fixture
def alice(engine: Engine) -> Principal:
    return reviewer(engine, "alice")


@pytest.fixture
def bob(engine: Engine, alice: Principal) -> Principal:
    return reviewer(engine, "bob")


@pytest.fixture
def acme(alice: Principal) -> str:
    return alice.account_id


def claimed_item(
    engine: Engine, acme: str, holder: Principal, outcome: Outcome | None = None, **job: Any
) -> tuple[ReviewQueue, int, str]:
    """An escalation claimed by holder: (queue, item id, job id)."""
    queue = ReviewQueue(engine, Review())
    job_id = finished_job(engine, acme, outcome or escalated(), **job)
    item = item_id(engine, job_id)
    queue.claim(item, holder)
    return queue, item, job_id


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
    assert (item.reason, item.draft_answer, item.status) == (SAMPLED, DRAFT, "open")
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
    assert listed(queue, acme, reason=SAMPLED) == [sampled]
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


# -- decisions -----------------------------------------------------------------------------


def test_a_decision_without_a_claim_is_a_conflict(
    engine: Engine, acme: str, alice: Principal
) -> None:
    queue = ReviewQueue(engine, Review())
    job_id = finished_job(engine, acme, escalated())
    item = item_id(engine, job_id)
    message = error_of(lambda: queue.decide(item, alice, Decision.APPROVE), Conflict)
    assert message == f"claim review item {item} before deciding it"
    assert job_of(engine, job_id).status == JobStatus.ESCALATED
    assert item_of(engine, job_id).status == ReviewStatus.OPEN


def test_a_decision_after_the_claim_expired_is_a_conflict(
    engine: Engine, acme: str, alice: Principal
) -> None:
    queue = ReviewQueue(engine, SHORT_CLAIM)
    job_id = finished_job(engine, acme, escalated())
    item = item_id(engine, job_id)
    queue.claim(item, alice)
    wait_for(lambda: listed(queue, acme, status="open") == [job_id], timeout_s=5)
    message = error_of(lambda: queue.decide(item, alice, Decision.APPROVE), Conflict)
    assert message == f"claim review item {item} before deciding it"
    assert job_of(engine, job_id).status == JobStatus.ESCALATED


def test_a_decision_by_a_reviewer_not_holding_the_claim_is_a_conflict(
    engine: Engine, acme: str, alice: Principal, bob: Principal
) -> None:
    queue, item, job_id = claimed_item(engine, acme, alice)
    message = error_of(lambda: queue.decide(item, bob, Decision.APPROVE), Conflict)
    assert message.startswith(f"review item {item} is claimed by alice until ")
    assert job_of(engine, job_id).status == JobStatus.ESCALATED


def test_approve_delivers_the_draft_with_its_citations(
    engine: Engine, acme: str, alice: Principal
) -> None:
    queue, item, job_id = claimed_item(engine, acme, alice)
    decided, job = queue.decide(item, alice, Decision.APPROVE, note="looks right")
    assert decided.status == ReviewStatus.DECIDED
    assert (decided.decision, decided.final_answer, decided.note) == (
        "approve",
        DRAFT,
        "looks right",
    )
    assert decided.decided_by == "reviewer:alice" and decided.decided_at is not None
    assert (job.status, job.reason, job.answer) == ("answered", "low_confidence", DRAFT)
    assert (job.decided_by, job.citations) == ("reviewer:alice", CITATIONS)
    assert job_of(engine, job_id).answer == DRAFT


def test_edit_delivers_the_reviewers_answer_without_the_models_citations(
    engine: Engine, acme: str, alice: Principal
) -> None:
    queue, item, _ = claimed_item(engine, acme, alice)
    edited = "Full-time employees get 25 days; part-time staff pro rata."
    decided, job = queue.decide(item, alice, Decision.EDIT, answer=edited)
    assert (decided.decision, decided.final_answer, decided.draft_answer) == (
        "edit",
        edited,
        DRAFT,
    )
    assert (job.status, job.answer, job.citations) == ("answered", edited, [])
    assert job.decided_by == "reviewer:alice"


def test_an_edited_answer_is_stored_without_surrounding_whitespace(
    engine: Engine, acme: str, alice: Principal
) -> None:
    queue, item, _ = claimed_item(engine, acme, alice)
    decided, job = queue.decide(item, alice, Decision.EDIT, answer="  25 days.\n")
    assert decided.final_answer == job.answer == "25 days."


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("", "the answer must not be empty"),
        ("  \n\t", "the answer must not be empty"),
        (None, "edit needs the answer to deliver"),
    ],
)
def test_an_edit_without_an_answer_is_invalid_input(
    engine: Engine, acme: str, alice: Principal, answer: str | None, message: str
) -> None:
    queue, item, job_id = claimed_item(engine, acme, alice)
    with pytest.raises(InvalidInput) as caught:
        queue.decide(item, alice, Decision.EDIT, answer=answer)
    assert (str(caught.value), caught.value.field) == (message, "answer")
    assert item_of(engine, job_id).status == ReviewStatus.CLAIMED
    assert job_of(engine, job_id).status == JobStatus.ESCALATED


@pytest.mark.parametrize("code", [None, "rude", SLA_EXPIRED])
def test_reject_needs_a_configured_reason_code(
    engine: Engine, acme: str, alice: Principal, code: str | None
) -> None:
    queue, item, job_id = claimed_item(engine, acme, alice)
    with pytest.raises(InvalidInput) as caught:
        queue.decide(item, alice, Decision.REJECT, reason_code=code)
    assert str(caught.value) == (
        "reject needs a reason_code: one of out_of_scope, insufficient_sources, "
        "policy_violation, needs_follow_up"
    )
    assert caught.value.field == "reason_code"
    assert job_of(engine, job_id).status == JobStatus.ESCALATED


def test_reject_delivers_the_fallback_answer_with_the_reason_code(
    engine: Engine, acme: str, alice: Principal
) -> None:
    queue, item, _ = claimed_item(engine, acme, alice)
    decided, job = queue.decide(item, alice, Decision.REJECT, reason_code="out_of_scope")
    fallback = Review().fallback_answer
    assert (decided.decision, decided.reason_code, decided.final_answer) == (
        "reject",
        "out_of_scope",
        fallback,
    )
    assert (job.status, job.reason, job.answer) == ("rejected", "out_of_scope", fallback)
    assert (job.decided_by, job.citations) == ("reviewer:alice", [])


def test_reject_uses_the_configured_codes_and_fallback(
    engine: Engine, acme: str, alice: Principal
) -> None:
    config = Review(reject_codes=["spam"], fallback_answer="Please call us.")
    job_id = finished_job(engine, acme, escalated())
    queue = ReviewQueue(engine, config)
    item = item_id(engine, job_id)
    queue.claim(item, alice)
    with pytest.raises(InvalidInput):
        queue.decide(item, alice, Decision.REJECT, reason_code="out_of_scope")
    _, job = queue.decide(item, alice, Decision.REJECT, reason_code="spam")
    assert (job.status, job.reason, job.answer) == ("rejected", "spam", "Please call us.")


@pytest.mark.parametrize(
    ("first", "fields"),
    [
        (Decision.APPROVE, {}),
        (Decision.EDIT, {"answer": "25 days."}),
        (Decision.REJECT, {"reason_code": "out_of_scope"}),
    ],
)
def test_deciding_twice_is_a_conflict_and_keeps_the_first_decision(
    engine: Engine, acme: str, alice: Principal, first: Decision, fields: dict[str, str]
) -> None:
    queue, item, job_id = claimed_item(engine, acme, alice)
    _, delivered = queue.decide(item, alice, first, **fields)
    message = error_of(lambda: queue.decide(item, alice, Decision.APPROVE), Conflict)
    assert message == f"review item {item} was already decided ({first.value})"
    assert item_of(engine, job_id).decision == first.value
    assert job_of(engine, job_id).answer == delivered.answer


def test_a_decided_item_is_a_conflict_even_for_an_invalid_decision(
    engine: Engine, acme: str, alice: Principal
) -> None:
    queue, item, _ = claimed_item(engine, acme, alice)
    queue.decide(item, alice, Decision.APPROVE)
    message = error_of(lambda: queue.decide(item, alice, Decision.EDIT, answer="  "), Conflict)
    assert message == f"review item {item} was already decided (approve)"


def test_approve_without_a_draft_is_invalid_input(
    engine: Engine, acme: str, alice: Principal
) -> None:
    queue, item, _ = claimed_item(engine, acme, alice, escalated("timeout", answer=None))
    with pytest.raises(InvalidInput) as caught:
        queue.decide(item, alice, Decision.APPROVE)
    assert str(caught.value) == "there is no draft to approve; edit instead"
    _, job = queue.decide(item, alice, Decision.EDIT, answer="25 days.")
    assert (job.status, job.answer) == ("answered", "25 days.")


@pytest.mark.parametrize("decision", [Decision.GOOD, Decision.BAD])
def test_an_escalation_is_not_decided_with_a_sampling_verdict(
    engine: Engine, acme: str, alice: Principal, decision: Decision
) -> None:
    queue, item, job_id = claimed_item(engine, acme, alice)
    message = error_of(lambda: queue.decide(item, alice, decision), InvalidInput)
    assert message == "an escalated item is decided with approve, edit, reject"
    assert job_of(engine, job_id).status == JobStatus.ESCALATED


@pytest.mark.parametrize(
    ("decision", "fields"),
    [
        (Decision.APPROVE, {}),
        (Decision.EDIT, {"answer": "25 days."}),
        (Decision.REJECT, {"reason_code": "out_of_scope"}),
    ],
)
def test_a_sampled_item_is_decided_only_good_or_bad(
    engine: Engine, acme: str, alice: Principal, decision: Decision, fields: dict[str, str]
) -> None:
    queue, item, job_id = claimed_item(engine, acme, alice, answered(), sampled=True)
    message = error_of(lambda: queue.decide(item, alice, decision, **fields), InvalidInput)
    assert message == "a sampled item is decided with good, bad"
    assert item_of(engine, job_id).status == ReviewStatus.CLAIMED


def test_a_good_verdict_on_a_sampled_answer_leaves_the_job_as_delivered(
    engine: Engine, acme: str, alice: Principal
) -> None:
    queue, item, job_id = claimed_item(
        engine, acme, alice, answered(), sampled=True, callback_url=CALLBACK
    )
    decided, job = queue.decide(item, alice, Decision.GOOD)
    assert (decided.status, decided.decision, decided.final_answer) == ("decided", "good", None)
    assert decided.decided_by == "reviewer:alice"
    assert (job.status, job.answer, job.decided_by, job.citations) == (
        "answered",
        DRAFT,
        "model",
        CITATIONS,
    )
    assert deliveries(engine, job_id) == [("job.answered", CALLBACK)]  # only the model's


def test_a_bad_verdict_keeps_the_correction_but_not_on_the_job(
    engine: Engine, acme: str, alice: Principal
) -> None:
    queue, item, _ = claimed_item(engine, acme, alice, answered(), sampled=True)
    decided, job = queue.decide(item, alice, Decision.BAD, answer="It is 30 days.")
    assert (decided.decision, decided.final_answer) == ("bad", "It is 30 days.")
    assert (job.status, job.answer, job.decided_by) == ("answered", DRAFT, "model")


@pytest.mark.parametrize(
    ("decision", "fields", "event"),
    [
        (Decision.APPROVE, {}, "job.answered"),
        (Decision.EDIT, {"answer": "25 days."}, "job.answered"),
        (Decision.REJECT, {"reason_code": "needs_follow_up"}, "job.rejected"),
    ],
)
def test_a_decision_writes_one_delivery_for_a_job_with_a_callback(
    engine: Engine,
    acme: str,
    alice: Principal,
    decision: Decision,
    fields: dict[str, str],
    event: str,
) -> None:
    queue, item, job_id = claimed_item(engine, acme, alice, callback_url=CALLBACK)
    queue.decide(item, alice, decision, **fields)
    assert deliveries(engine, job_id) == [(event, CALLBACK)]


def test_a_decision_writes_no_delivery_for_a_job_without_a_callback(
    engine: Engine, acme: str, alice: Principal
) -> None:
    queue, item, job_id = claimed_item(engine, acme, alice)
    queue.decide(item, alice, Decision.APPROVE)
    assert deliveries(engine, job_id) == []


# -- races (PostgreSQL: real row locks under concurrent transactions) ------------------------

RACERS = 8


def race(calls: list[Callable[[], T]]) -> tuple[list[T], list[Exception]]:
    """Run the calls in threads released together; their results and their errors."""
    barrier = threading.Barrier(len(calls))
    results: list[T] = []
    errors: list[Exception] = []
    lock = threading.Lock()

    def run(call: Callable[[], T]) -> None:
        barrier.wait()
        try:
            result = call()
        except Exception as error:
            with lock:
                errors.append(error)
        else:
            with lock:
                results.append(result)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, errors


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_reviewers_claiming_one_item_at_once_have_exactly_one_winner(engine: Engine) -> None:
    reviewers = [make_tenant(engine, "acme", roles=("reviewer",))[0] for _ in range(RACERS)]
    job_id = finished_job(engine, reviewers[0].account_id, escalated())
    item = item_id(engine, job_id)
    queue = ReviewQueue(engine, Review())

    won, lost = race([partial(queue.claim, item, r) for r in reviewers])

    assert len(won) == 1 and len(lost) == RACERS - 1
    assert all(isinstance(error, Conflict) for error in lost), lost
    assert all("is claimed by acme test key until" in str(error) for error in lost), lost
    assert item_of(engine, job_id).claimed_by == won[0].claimed_by
    assert won[0].claimed_by in {r.key_id for r in reviewers}


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_reviewers_deciding_one_item_at_once_land_exactly_one_decision(engine: Engine) -> None:
    reviewers = [make_tenant(engine, "acme", roles=("reviewer",))[0] for _ in range(RACERS)]
    job_id = finished_job(engine, reviewers[0].account_id, escalated(), callback_url=CALLBACK)
    item = item_id(engine, job_id)
    queue = ReviewQueue(engine, Review())
    queue.claim(item, reviewers[0])

    answers = [f"answer {n}" for n in range(RACERS)]
    holder = reviewers[0]
    decided, conflicts = race(
        [partial(queue.decide, item, holder, Decision.EDIT, answer=a) for a in answers]
    )
    assert len(decided) == 1 and len(conflicts) == RACERS - 1
    assert all(isinstance(error, Conflict) for error in conflicts), conflicts
    assert all("was already decided (edit)" in str(error) for error in conflicts), conflicts
    winner = decided[0][0].final_answer
    assert winner in answers
    assert item_of(engine, job_id).final_answer == winner
    assert job_of(engine, job_id).answer == winner
    assert deliveries(engine, job_id) == [("job.answered", CALLBACK)]


# -- service levels ------------------------------------------------------------------------------


def overdue_item(engine: Engine, acme: str, outcome: Outcome | None = None, **job: Any) -> str:
    """A job whose item falls due TINY_SLA's 60 ms after it finished; returns its id once
    that has passed."""
    job_id = finished_job(engine, acme, outcome or escalated(), config=TINY_SLA, **job)
    due = item_of(engine, job_id).due_at
    assert due is not None
    wait_for(lambda: utcnow() > due, timeout_s=5, every_s=0.01)
    return job_id


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


# -- labelled examples --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sampled", "decision", "fields", "final", "expected", "tags"),
    [
        (False, Decision.APPROVE, {}, DRAFT, "answered", ["low_confidence", "decision:approve"]),
        (
            False,
            Decision.EDIT,
            {"answer": "25 days."},
            "25 days.",
            "answered",
            ["low_confidence", "decision:edit"],
        ),
        (
            False,
            Decision.REJECT,
            {"reason_code": "out_of_scope"},
            Review().fallback_answer,
            "escalated",
            ["low_confidence", "decision:reject", "code:out_of_scope"],
        ),
        (True, Decision.GOOD, {}, None, "answered", [SAMPLED, "decision:good"]),
        (
            True,
            Decision.BAD,
            {"answer": "30 days."},
            "30 days.",
            "escalated",
            [SAMPLED, "decision:bad"],
        ),
    ],
)
def test_a_decision_becomes_one_labelled_example(
    engine: Engine,
    acme: str,
    alice: Principal,
    sampled: bool,
    decision: Decision,
    fields: dict[str, str],
    final: str | None,
    expected: str,
    tags: list[str],
) -> None:
    outcome = answered() if sampled else escalated()
    queue, item, _ = claimed_item(
        engine, acme, alice, outcome, sampled=sampled, question="Leave days?"
    )
    queue.decide(item, alice, decision, note="checked", **fields)
    examples = list(queue.examples(acme))
    assert len(examples) == 1
    example = examples[0]
    assert example["id"] == f"review-{item}"
    assert (example["question"], example["passages"], example["draft"]) == (
        "Leave days?",
        PASSAGES,
        DRAFT,
    )
    assert (example["final_answer"], example["verdict"], example["expected"]) == (
        final,
        decision.value,
        expected,
    )
    assert example["tags"] == tags
    assert (example["note"], example["decided_by"]) == ("checked", "reviewer:alice")
    assert example["versions"] == {
        "prompt_version": "answer@abc123",
        "model_id": "extractive",
        "index_version": "kb_v1",
    }


def test_only_decided_items_of_the_account_become_examples(
    engine: Engine, acme: str, alice: Principal
) -> None:
    outsider = reviewer(engine, "mallory", account="globex")
    finished_job(engine, acme, escalated())  # pending: no example
    queue, item, _ = claimed_item(engine, acme, alice)
    queue.decide(item, alice, Decision.APPROVE)
    _, theirs, _ = claimed_item(engine, outsider.account_id, outsider)
    queue.decide(theirs, outsider, Decision.APPROVE)
    assert [e["id"] for e in queue.examples(acme)] == [f"review-{item}"]
    assert [e["id"] for e in queue.examples(outsider.account_id)] == [f"review-{theirs}"]
    assert len(list(queue.examples(None))) == 2
    assert list(queue.examples(acme, since=utcnow() + timedelta(minutes=1))) == []
