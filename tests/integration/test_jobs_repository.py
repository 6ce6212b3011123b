"""The job repository on SQLite and PostgreSQL: idempotency, the claim compare-and-set,
fencing, review items and what the sweeper must send again."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from ragline.config import Review
from ragline.errors import Conflict, NotFound
from ragline.jobs import JobRepository, Outcome
from ragline.models import JobStatus, utcnow
from ragline.pipeline.validate import JobRequest
from ragline.review import ReviewQueue
from tests.support.tenants import make_tenant

DEADLINE = timedelta(seconds=60)
LEASE = timedelta(seconds=30)


@pytest.fixture
def account_id(engine: Engine) -> str:
    principal, _ = make_tenant(engine)
    return principal.account_id


@pytest.fixture
def one_key(account_id: str) -> dict[str, Any]:
    """What a submission through one API key names."""
    return {"account_id": account_id, "key_id": "key-a", "deadline": DEADLINE}


def _request(question: str = "How much leave do I get?") -> JobRequest:
    return JobRequest(question=question, user_id="u1", feature="handbook", metadata={"a": 1})


def test_submit_stores_a_queued_job(engine: Engine, account_id: str) -> None:
    jobs = JobRepository(engine)
    job, created = jobs.submit(
        _request(), account_id=account_id, deadline=DEADLINE, request_id="r1"
    )
    assert created
    stored = jobs.get(job.id)
    assert stored.status == JobStatus.QUEUED
    assert stored.meta == {"a": 1}
    assert stored.request_id == "r1"
    assert stored.deadline_at - stored.created_at == DEADLINE
    assert stored.created_at.tzinfo is not None


def test_same_key_same_body_returns_the_same_job(engine: Engine, one_key: dict[str, Any]) -> None:
    jobs = JobRepository(engine)
    first, created = jobs.submit(_request(), **one_key, idempotency_key="k1")
    again, created_again = jobs.submit(_request(), **one_key, idempotency_key="k1")
    assert created and not created_again
    assert again.id == first.id


def test_idempotency_keys_are_each_api_keys_own(
    engine: Engine, account_id: str, one_key: dict[str, Any]
) -> None:
    """Another key of the account, perhaps with fewer document groups, gets a job of its
    own for the same idempotency key, never the first key's job."""
    jobs = JobRepository(engine)
    first, _ = jobs.submit(_request(), **one_key, groups=("hr",), idempotency_key="k1")
    other, created = jobs.submit(
        _request(), account_id=account_id, key_id="key-b", deadline=DEADLINE, idempotency_key="k1"
    )
    assert created and other.id != first.id and other.groups == ["everyone"]
    with pytest.raises(ValueError, match="key_id is required"):
        jobs.submit(_request(), account_id=account_id, deadline=DEADLINE, idempotency_key="k2")


def test_same_key_other_body_is_a_conflict(engine: Engine, one_key: dict[str, Any]) -> None:
    jobs = JobRepository(engine)
    jobs.submit(_request(), **one_key, idempotency_key="k1")
    with pytest.raises(Conflict):
        jobs.submit(_request("Another question?"), **one_key, idempotency_key="k1")


def test_concurrent_submissions_with_one_key_make_one_job(
    engine: Engine, one_key: dict[str, Any]
) -> None:
    jobs = JobRepository(engine)
    ids: list[str] = []
    errors: list[Exception] = []

    def submit() -> None:
        try:
            job, _ = jobs.submit(_request(), **one_key, idempotency_key="race")
            ids.append(job.id)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(ids)) == 1 and len(ids) == 8


def test_missing_job_is_not_found(engine: Engine, account_id: str) -> None:
    with pytest.raises(NotFound):
        JobRepository(engine).get("nope")


def test_claim_is_a_compare_and_set(engine: Engine, account_id: str) -> None:
    jobs = JobRepository(engine)
    job, _ = jobs.submit(_request(), account_id=account_id, deadline=DEADLINE)
    claim = jobs.claim(job.id, LEASE)
    assert claim is not None and claim.attempt == 1
    assert jobs.claim(job.id, LEASE) is None  # a live lease is not taken twice
    assert jobs.finish(claim, Outcome(status=JobStatus.ANSWERED, answer="25 days [1]"))
    assert jobs.claim(job.id, LEASE) is None  # a finished job is never run again
    assert jobs.get(job.id).answer == "25 days [1]"


def test_concurrent_claims_have_one_winner(engine: Engine, account_id: str) -> None:
    jobs = JobRepository(engine)
    job, _ = jobs.submit(_request(), account_id=account_id, deadline=DEADLINE)
    winners: list[int] = []

    def claim() -> None:
        if (c := jobs.claim(job.id, LEASE)) is not None:
            winners.append(c.attempt)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert winners == [1]


def test_an_expired_lease_is_taken_over_and_the_stale_worker_is_fenced(
    engine: Engine, account_id: str
) -> None:
    jobs = JobRepository(engine)
    job, _ = jobs.submit(_request(), account_id=account_id, deadline=DEADLINE)
    stale = jobs.claim(job.id, timedelta(milliseconds=-1))  # already expired
    assert stale is not None
    fresh = jobs.claim(job.id, LEASE)
    assert fresh is not None and fresh.attempt == 2
    assert not jobs.finish(stale, Outcome(status=JobStatus.ANSWERED, answer="stale"))
    assert jobs.finish(fresh, Outcome(status=JobStatus.ANSWERED, answer="fresh"))
    assert jobs.get(job.id).answer == "fresh"


def test_release_returns_the_job_to_the_queue(engine: Engine, account_id: str) -> None:
    jobs = JobRepository(engine)
    job, _ = jobs.submit(_request(), account_id=account_id, deadline=DEADLINE)
    claim = jobs.claim(job.id, LEASE)
    assert claim is not None
    jobs.release(claim)
    assert jobs.get(job.id).status == JobStatus.QUEUED
    assert jobs.claim(job.id, LEASE) is not None


def test_escalation_creates_one_review_item_in_the_same_transaction(
    engine: Engine, account_id: str
) -> None:
    jobs = JobRepository(engine)
    answered, _ = jobs.submit(_request("q1?"), account_id=account_id, deadline=DEADLINE)
    escalated, _ = jobs.submit(_request("q2?"), account_id=account_id, deadline=DEADLINE)
    for job, outcome in (
        (answered, Outcome(status=JobStatus.ANSWERED, answer="a")),
        (escalated, Outcome(status=JobStatus.ESCALATED, reason="low_confidence", answer="d")),
    ):
        claim = jobs.claim(job.id, LEASE)
        assert claim is not None and jobs.finish(claim, outcome)
    queue = ReviewQueue(engine, Review()).list(None)
    assert [(item.job_id, item.reason, job.answer) for item, job in queue] == [
        (escalated.id, "low_confidence", "d")
    ]


def test_due_for_dispatch_finds_unsent_stale_and_abandoned_jobs(
    engine: Engine, account_id: str
) -> None:
    jobs = JobRepository(engine)
    never_sent, _ = jobs.submit(_request("q1?"), account_id=account_id, deadline=DEADLINE)
    sent, _ = jobs.submit(_request("q2?"), account_id=account_id, deadline=DEADLINE)
    jobs.mark_dispatched(sent.id)
    abandoned, _ = jobs.submit(_request("q3?"), account_id=account_id, deadline=DEADLINE)
    jobs.mark_dispatched(abandoned.id)
    assert jobs.claim(abandoned.id, timedelta(milliseconds=-1)) is not None
    finished, _ = jobs.submit(_request("q4?"), account_id=account_id, deadline=DEADLINE)
    claim = jobs.claim(finished.id, LEASE)
    assert claim is not None and jobs.finish(claim, Outcome(status=JobStatus.ANSWERED))

    requeue_after = timedelta(seconds=30)
    assert jobs.due_for_dispatch(requeue_after=requeue_after) == []  # all too recent
    later = utcnow() + timedelta(seconds=10)
    assert set(jobs.due_for_dispatch(requeue_after=requeue_after, now=later)) == {never_sent.id}
    much_later = utcnow() + timedelta(seconds=60)
    due = set(jobs.due_for_dispatch(requeue_after=requeue_after, now=much_later))
    assert due == {never_sent.id, sent.id, abandoned.id}


def test_processes_starting_together_create_the_schema_once(
    engine: Engine, account_id: str
) -> None:
    from sqlalchemy import text
    from sqlmodel import SQLModel

    from ragline.schema import create_schema, current, head

    SQLModel.metadata.drop_all(engine)
    with engine.begin() as connection:  # as new: no revision either
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    errors: list[Exception] = []

    def start() -> None:
        try:
            create_schema(engine)
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert current(engine) == head()
    fresh_account, _ = make_tenant(engine, "after-restart")
    job, _ = JobRepository(engine).submit(
        _request(), account_id=fresh_account.account_id, deadline=DEADLINE
    )
    assert JobRepository(engine).get(job.id).status == JobStatus.QUEUED


def test_accounts_see_only_their_own_jobs_and_reviews(engine: Engine, account_id: str) -> None:
    jobs = JobRepository(engine)
    other, _ = make_tenant(engine, "globex")
    mine, _ = jobs.submit(_request(), account_id=account_id, deadline=DEADLINE)
    theirs, _ = jobs.submit(_request(), account_id=other.account_id, deadline=DEADLINE)
    assert jobs.get(mine.id, account_id=account_id).id == mine.id
    with pytest.raises(NotFound):
        jobs.get(theirs.id, account_id=account_id)
    assert jobs.get(theirs.id).id == theirs.id  # no account: an admin's view
    for job in (mine, theirs):
        claim = jobs.claim(job.id, LEASE)
        assert claim is not None
        jobs.finish(claim, Outcome(status=JobStatus.ESCALATED, reason="low_confidence"))
    queue = ReviewQueue(engine, Review())
    assert [j.id for _, j in queue.list(account_id)] == [mine.id]
    assert {j.id for _, j in queue.list(None)} == {mine.id, theirs.id}


def test_idempotency_keys_of_two_accounts_never_meet(
    engine: Engine, one_key: dict[str, Any]
) -> None:
    jobs = JobRepository(engine)
    other, _ = make_tenant(engine, "globex")
    first, _ = jobs.submit(_request(), **one_key, idempotency_key="k")
    second, created = jobs.submit(
        _request(),
        account_id=other.account_id,
        key_id=other.key_id,
        deadline=DEADLINE,
        idempotency_key="k",
    )
    assert created and first.id != second.id


def test_queue_depth_counts_queued_jobs(engine: Engine, account_id: str) -> None:
    jobs = JobRepository(engine)
    for n in range(3):
        jobs.submit(_request(f"q{n}?"), account_id=account_id, deadline=DEADLINE)
    assert jobs.queue_depth() == 3
    job, _ = jobs.submit(_request("q4?"), account_id=account_id, deadline=DEADLINE)
    assert jobs.claim(job.id, LEASE) is not None
    assert jobs.queue_depth() == 3
