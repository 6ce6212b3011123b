"""Decisions that deliver (approve, edit, reject, sampling verdicts) and, on PostgreSQL's real
row locks, reviewers racing for one item."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import pytest
from sqlalchemy.engine import Engine

from ragline.accounts import Principal
from ragline.config import Review
from ragline.errors import Conflict, InvalidInput
from ragline.models import Decision, JobStatus, ReviewStatus
from ragline.review import SLA_EXPIRED, ReviewQueue
from tests.support.reviews import (
    CALLBACK,
    CITATIONS,
    DRAFT,
    SHORT_CLAIM,
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
)
from tests.support.tenants import make_tenant
from tests.support.waiting import wait_for

T = TypeVar("T")

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
