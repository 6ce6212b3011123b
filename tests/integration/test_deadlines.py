"""Deadlines that fire without workers: the sweeper escalates (`timeout`) every job past its
deadline that no worker will finish (still queued, or running with a silent worker) and
gives a dead worker's budget reservation back; a worker's live job and finished jobs are
left alone. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine

from ragline.budget import BudgetBook
from ragline.config import Budgets, Review, Windows
from ragline.jobs import JobRepository, Outcome
from ragline.models import JobStatus
from ragline.pipeline.validate import JobRequest
from ragline.review import ReviewQueue
from ragline.sweeper import Sweeper
from tests.support.budgets import budget_counters
from tests.support.tenants import make_tenant

GRACE = timedelta(seconds=5)
LEASE = timedelta(seconds=30)


def test_the_sweeper_escalates_what_no_worker_will_finish_and_nothing_else(
    engine: Engine,
) -> None:
    principal, _ = make_tenant(engine)
    jobs = JobRepository(engine)
    budgets = BudgetBook(engine, Budgets(accounts={"default": Windows(daily=10.0)}))
    review = ReviewQueue(engine, Review())
    sent: list[str] = []
    sweeper = Sweeper(
        jobs,
        sent.append,
        interval_s=60,
        requeue_after=timedelta(seconds=30),
        review=review,
        budgets=budgets,
        deadline_grace=GRACE,
    )

    def job(question: str, deadline: timedelta) -> str:
        submitted, _ = jobs.submit(
            JobRequest(question=question, user_id="u-1", feature="hr"),
            account_id=principal.account_id,
            deadline=deadline,
        )
        return submitted.id

    past = -timedelta(seconds=10)  # its deadline passed 10 s ago, beyond the grace
    queued = job("queued, no worker?", past)
    dead = job("worker died?", past)
    assert jobs.claim(dead, -timedelta(milliseconds=1)) is not None  # its lease ran out
    budgets.reserve(dead, principal.account_name, "hr", 400_000)
    alive = job("worker still on it?", past)
    assert jobs.claim(alive, LEASE) is not None
    in_grace = job("just late?", -timedelta(seconds=1))
    on_time = job("on time?", timedelta(minutes=1))
    done = job("answered?", past)
    claim = jobs.claim(done, LEASE)
    assert claim is not None and jobs.finish(claim, Outcome(status=JobStatus.ANSWERED))
    assert any(reserved for _, reserved in budget_counters(engine).values())

    sweeper.sweep()

    states = {i: (jobs.get(i).status, jobs.get(i).reason) for i in (queued, dead, alive)}
    assert states == {
        queued: ("escalated", "timeout"),
        dead: ("escalated", "timeout"),
        alive: ("running", None),
    }
    assert "while the job was queued" in (jobs.get(queued).error or "")
    for untouched in (in_grace, on_time):
        assert jobs.get(untouched).status == JobStatus.QUEUED
    assert jobs.get(done).status == JobStatus.ANSWERED
    items = {item.job_id: item for item, _ in review.list(None)}
    assert set(items) == {queued, dead}
    assert {item.reason for item in items.values()} == {"timeout"}
    assert all(item.due_at is not None for item in items.values())
    # The dead worker's reservation is given back; nothing stays reserved.
    assert not any(reserved for _, reserved in budget_counters(engine).values())
    assert queued not in sent and dead not in sent  # escalated, not sent again

    sweeper.sweep()  # once only
    assert len(review.list(None)) == 2
