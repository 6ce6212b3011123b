"""Cancelling a queued job, on SQLite and PostgreSQL: it is final at once, a worker that gets
its message skips it without calling the model, the sweeper neither sends it again nor
escalates it, and no webhook is owed. A running or final job is a Conflict naming its status;
a job outside the caller's scope is NotFound. A cancel racing workers' claims has exactly one
winner."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from ragline import audit
from ragline.accounts import Principal
from ragline.bootstrap import Mode, Services
from ragline.budget import BudgetBook
from ragline.config import Budgets, RaglineConfig, Review, Windows
from ragline.errors import Conflict, NotFound
from ragline.jobs import JobRepository, Outcome
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.models import Delivery, Job, JobStatus, ReviewItem, UsageRecord
from ragline.pipeline.validate import JobRequest
from ragline.review import ReviewQueue
from ragline.sweeper import Sweeper
from tests.support.budgets import budget_counters
from tests.support.fake_model import FakeModelServer
from tests.support.services import bootstrapped, settings_for
from tests.support.tenants import make_tenant

LEAVE = "How many days of annual leave do employees get?"
LEASE = timedelta(seconds=30)
CALLBACK = "https://hooks.example.com/ragline"


@pytest.fixture
def core(
    engine: Engine,
    repo_config: RaglineConfig,
    fake_model: FakeModelServer,
    tmp_path: Path,
    embedder: Embedder,
    handbook_store: KnowledgeStore,
) -> Iterator[Services]:
    """A worker's services on the test's database whose model is the loopback model server;
    jobs are answered in the test's thread when it calls the pipeline."""
    with bootstrapped(
        Mode.EMBEDDED,
        tmp_path,
        repo_config,
        settings=settings_for(tmp_path, model_base_url=fake_model.base_url),
        engine=engine,
        store=handbook_store,
        embedder=embedder,
        send=lambda _job_id: None,
    ) as services:
        yield services


def _submit(
    jobs: JobRepository, principal: Principal, deadline: timedelta = timedelta(minutes=1)
) -> Job:
    job, _ = jobs.submit(
        JobRequest(question=LEAVE, user_id="u-1", feature="hr", callback_url=CALLBACK),
        account_id=principal.account_id,
        deadline=deadline,
    )
    return job


def _count(engine: Engine, model: type[Delivery] | type[ReviewItem] | type[UsageRecord]) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def test_a_cancelled_job_is_final_and_a_worker_skips_it_without_the_model(
    core: Services, fake_model: FakeModelServer
) -> None:
    principal, _ = make_tenant(core.engine)
    job = _submit(core.jobs, principal)

    cancelled = core.jobs.cancel(
        job.id, principal.account_id, reader=principal, budgets=core.budgets
    )

    assert cancelled.status == JobStatus.CANCELLED and JobStatus.CANCELLED.final
    assert cancelled.finished_at is not None and cancelled.finished_at >= job.created_at
    assert cancelled.error == f"cancelled while queued by API key {principal.key_id}"
    stored = core.jobs.get(job.id)
    assert (stored.status, stored.finished_at) == (cancelled.status, cancelled.finished_at)
    entries, _ = audit.entries(core.engine, audit.AuditQuery(action="job.cancel"))
    assert [(e.actor, e.target, e.after) for e in entries] == [
        (f"key:{principal.key_id}", f"job:{job.id}", {"status": "cancelled"})
    ]

    pipeline = core.need_pipeline()
    assert pipeline.answer_job(job.id) is None  # its message arrives: skipped
    assert fake_model.behaviour.requests == []
    stored = core.jobs.get(job.id)
    assert stored.status == JobStatus.CANCELLED and stored.attempts == 0
    assert stored.started_at is None and stored.answer is None
    assert [_count(core.engine, m) for m in (Delivery, ReviewItem, UsageRecord)] == [0, 0, 0]

    # The same worker runs a job nobody cancelled: the model is called, the result owed.
    control = _submit(core.jobs, principal)
    fake_model.behaviour.reply = "Employees get 25 days of paid annual leave [1]."
    assert pipeline.answer_job(control.id) is not None
    assert len(fake_model.behaviour.requests) == 1
    assert _count(core.engine, Delivery) == 1


def test_the_sweeper_neither_sends_again_nor_escalates_a_cancelled_job(engine: Engine) -> None:
    principal, _ = make_tenant(engine)
    jobs = JobRepository(engine)
    budgets = BudgetBook(engine, Budgets())
    review = ReviewQueue(engine, Review())
    sent: list[str] = []
    sweeper = Sweeper(
        jobs,
        sent.append,
        interval_s=60,
        requeue_after=timedelta(seconds=0),
        review=review,
        budgets=budgets,
        deadline_grace=timedelta(seconds=5),
    )
    past = -timedelta(seconds=10)  # both deadlines passed beyond the grace
    cancelled = _submit(jobs, principal, past).id
    control = _submit(jobs, principal, past).id
    jobs.cancel(cancelled, principal.account_id, reader=principal, budgets=budgets)
    cancelled_at = jobs.get(cancelled).finished_at
    assert cancelled_at is not None

    later = cancelled_at + timedelta(minutes=1)
    due = jobs.due_for_dispatch(requeue_after=timedelta(0), now=later)
    assert due == [control]  # a lost message would be sent again for the queued job only

    sweeper.sweep()

    assert jobs.get(control).status == JobStatus.ESCALATED  # the sweeper did run
    after = jobs.get(cancelled)
    assert (after.status, after.finished_at, after.reason) == ("cancelled", cancelled_at, None)
    assert cancelled not in sent
    assert [item.job_id for item, _ in review.list(None)] == [control]


def test_a_reservation_left_on_a_queued_job_is_given_back_when_it_is_cancelled(
    engine: Engine,
) -> None:
    """An attempt that reserved money and was given back to the queue (a transient failure)
    leaves its reservation for the next attempt to release; cancelling releases it."""
    principal, _ = make_tenant(engine)
    jobs = JobRepository(engine)
    budgets = BudgetBook(engine, Budgets(accounts={"default": Windows(daily=10.0)}))
    job = _submit(jobs, principal)
    claim = jobs.claim(job.id, LEASE)
    assert claim is not None
    budgets.reserve(job.id, principal.account_name, "hr", 400_000)
    jobs.release(claim)
    assert jobs.get(job.id).status == JobStatus.QUEUED and jobs.get(job.id).reservation
    assert any(reserved for _, reserved in budget_counters(engine).values())

    jobs.cancel(job.id, principal.account_id, reader=principal, budgets=budgets)

    assert not any(reserved for _, reserved in budget_counters(engine).values())
    assert jobs.get(job.id).reservation is None


@pytest.mark.parametrize(
    "status", [JobStatus.ANSWERED, JobStatus.ESCALATED, JobStatus.REJECTED, JobStatus.FAILED]
)
def test_a_running_or_final_job_is_a_conflict_naming_its_status(
    engine: Engine, status: JobStatus
) -> None:
    principal, _ = make_tenant(engine)
    jobs = JobRepository(engine)
    budgets = BudgetBook(engine, Budgets())
    job = _submit(jobs, principal)
    claim = jobs.claim(job.id, LEASE)
    assert claim is not None
    with pytest.raises(Conflict, match=f"job {job.id} is running: only a queued job"):
        jobs.cancel(job.id, principal.account_id, reader=principal, budgets=budgets)
    assert jobs.finish(claim, Outcome(status=status))
    finished = jobs.get(job.id)
    with pytest.raises(Conflict, match=f"is {status.value}:"):
        jobs.cancel(job.id, principal.account_id, reader=principal, budgets=budgets)
    stored = jobs.get(job.id)
    assert (stored.status, stored.finished_at) == (status, finished.finished_at)


def test_a_job_outside_the_callers_scope_is_not_found(engine: Engine) -> None:
    acme, _ = make_tenant(engine, "acme")
    globex, _ = make_tenant(engine, "globex")
    finance, _ = make_tenant(engine, "acme", groups=("finance",))
    jobs = JobRepository(engine)
    budgets = BudgetBook(engine, Budgets())
    queued = _submit(jobs, acme)
    with pytest.raises(NotFound):
        jobs.cancel("no-such-job", acme.account_id, reader=acme, budgets=budgets)
    with pytest.raises(NotFound):
        jobs.cancel(queued.id, globex.account_id, reader=globex, budgets=budgets)
    # Answered from finance passages: NotFound to a key without finance, not Conflict.
    answered = _submit(jobs, finance)
    claim = jobs.claim(answered.id, LEASE)
    assert claim is not None
    passage = {"chunk_id": "c1", "document_id": "finance/bonus", "groups": ["finance"]}
    assert jobs.finish(claim, Outcome(status=JobStatus.ANSWERED, passages=[passage]))
    with pytest.raises(NotFound):
        jobs.cancel(answered.id, acme.account_id, reader=acme, budgets=budgets)
    with pytest.raises(Conflict):
        jobs.cancel(answered.id, finance.account_id, reader=finance, budgets=budgets)
    assert jobs.get(queued.id).status == JobStatus.QUEUED
    assert audit.entries(engine, audit.AuditQuery(action="job.cancel"))[0] == []


def _race(jobs: JobRepository, principal: Principal, job_id: str) -> tuple[list[str], list[str]]:
    """Three workers claim while three callers cancel, all released at once: the winners
    ("claim" or "cancel") and the refused cancels' messages."""
    budgets = BudgetBook(jobs.engine, Budgets())
    start = threading.Barrier(6)
    wins: list[str] = []
    refusals: list[str] = []
    errors: list[BaseException] = []

    def claim() -> None:
        start.wait()
        if jobs.claim(job_id, LEASE) is not None:
            wins.append("claim")

    def cancel() -> None:
        start.wait()
        try:
            jobs.cancel(job_id, principal.account_id, reader=principal, budgets=budgets)
            wins.append("cancel")
        except Conflict as error:
            refusals.append(str(error))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=claim) for _ in range(3)]
    threads += [threading.Thread(target=cancel) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return wins, refusals


def test_a_cancel_racing_claims_has_exactly_one_winner(engine: Engine) -> None:
    """For each of several jobs, one of the six racers wins, and the job's status says
    which kind; every refused cancel names that status."""
    principal, _ = make_tenant(engine)
    jobs = JobRepository(engine)
    for _ in range(10):
        job = _submit(jobs, principal)
        wins, refusals = _race(jobs, principal, job.id)
        assert len(wins) == 1, wins
        status = jobs.get(job.id).status
        assert status == {"claim": JobStatus.RUNNING, "cancel": JobStatus.CANCELLED}[wins[0]]
        assert len(refusals) == 3 - wins.count("cancel")
        assert all(f"is {status}:" in refusal for refusal in refusals), refusals
