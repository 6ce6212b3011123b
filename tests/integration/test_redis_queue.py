"""The deployed transport: dramatiq's RedisBroker with a real in-process worker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dramatiq
import pytest
from sqlalchemy.engine import Engine

from ragline.accounts import Principal
from ragline.admission import Admission
from ragline.bootstrap import Mode, Services, effective_spec
from ragline.config import RaglineConfig
from ragline.dispatch import BackgroundDispatcher
from ragline.jobs import JobRepository
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.models import Job, JobStatus, utcnow
from ragline.pipeline.runner import Pipeline
from ragline.pipeline.validate import JobRequest
from tests.support.services import bootstrapped
from tests.support.tenants import make_tenant
from tests.support.waiting import wait_for
from workers.broker import QUEUE_NAME, make_broker, sender
from workers.process import AnsweringWorkers

pytestmark = pytest.mark.redis


@pytest.fixture
def core(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    tmp_path: Path,
    embedder: Embedder,
    handbook_store: KnowledgeStore,
    broker: dramatiq.Broker,
) -> Iterator[Services]:
    """A `ragline worker` process's services over the test's database and this broker."""
    with bootstrapped(
        Mode.WORKER,
        tmp_path,
        repo_config,
        engine=sqlite_engine,
        store=handbook_store,
        embedder=embedder,
        send=sender(broker),
    ) as services:
        yield services


@pytest.fixture
def pipeline(core: Services) -> Pipeline:
    return core.need_pipeline()


@pytest.fixture
def caller(core: Services) -> Principal:
    principal, _ = make_tenant(core.engine)
    return principal


def _admission(core: Services, dispatcher: BackgroundDispatcher) -> Admission:
    """Admission as `ragline serve` has it: messages leave on the dispatcher's thread."""
    spec = effective_spec(
        core.settings, core.config, core.config.assistant_pipeline.generation.model
    )
    return Admission(core.config, core.jobs, dispatcher, core.budgets, spec, core.need_guardrails())


@pytest.fixture
def broker(redis_url: str) -> Iterator[dramatiq.Broker]:
    broker = make_broker(redis_url)
    yield broker
    broker.close()


def _final(jobs: JobRepository, job_id: str) -> Job | None:
    job = jobs.get(job_id)
    return job if JobStatus(job.status).final else None


def test_jobs_travel_through_redis_to_an_answer(
    core: Services, pipeline: Pipeline, broker: dramatiq.Broker, caller: Principal
) -> None:
    workers = AnsweringWorkers(core, broker, threads=2)
    workers.start()
    dispatcher = BackgroundDispatcher(core.jobs, sender(broker))
    try:
        job, _ = _admission(core, dispatcher).submit(
            caller, JobRequest(question="How long is a free trial?", user_id="u1", feature="sales")
        )
        # Sent after the response, by the dispatcher's thread, and recorded.
        wait_for(lambda: core.jobs.get(job.id).dispatched_at)
        done = wait_for(lambda: _final(core.jobs, job.id))
    finally:
        dispatcher.close()
        workers.stop()
    assert done.status == JobStatus.ANSWERED
    assert any(c["document_id"] == "product/free-trials" for c in done.citations)
    assert done.attempts == 1


def test_sent_jobs_are_recorded_together_and_a_claim_records_the_send(
    core: Services, broker: dramatiq.Broker, caller: Principal
) -> None:
    """The dispatcher marks what it sent in one statement per interval, not one per job; a
    job claimed before that (a fast worker) is marked by its claim. Either way the sweeper
    never takes a delivered job for a lost one."""
    dispatcher = BackgroundDispatcher(core.jobs, sender(broker))
    admission = _admission(core, dispatcher)
    try:
        jobs = [
            admission.submit(caller, JobRequest(question=f"Is MFA mandatory? ({n})", user_id="u1"))[
                0
            ]
            for n in range(5)
        ]
        wait_for(lambda: all(core.jobs.get(job.id).dispatched_at for job in jobs))
    finally:
        dispatcher.close()

    unsent, _ = core.jobs.submit(
        JobRequest(question="How long is a free trial?", user_id="u1"),
        account_id=caller.account_id,
        deadline=timedelta(seconds=60),
    )
    assert core.jobs.get(unsent.id).dispatched_at is None
    claim = core.jobs.claim(unsent.id, timedelta(seconds=30))
    assert claim is not None and claim.job.dispatched_at is not None
    due = core.jobs.due_for_dispatch(
        requeue_after=timedelta(seconds=30), now=utcnow() + timedelta(seconds=3)
    )
    assert not {job.id for job in jobs} & set(due)  # sent, recorded: not taken for lost


def test_a_duplicate_message_does_not_answer_twice(
    core: Services, pipeline: Pipeline, broker: dramatiq.Broker, caller: Principal
) -> None:
    send = sender(broker)
    job, _ = core.jobs.submit(
        JobRequest(question="Is MFA mandatory?", user_id="u1"),
        account_id=caller.account_id,
        deadline=timedelta(seconds=60),
    )
    for _ in range(3):
        send(job.id)
    workers = AnsweringWorkers(core, broker, threads=3)
    workers.start()
    try:
        done = wait_for(lambda: _final(core.jobs, job.id))
        broker.join(QUEUE_NAME, timeout=30_000)
    finally:
        workers.stop()
    assert done.status == JobStatus.ANSWERED
    assert core.jobs.get(job.id).attempts == 1


def test_a_job_whose_send_failed_is_recovered_by_the_sweeper(
    core: Services, pipeline: Pipeline, broker: dramatiq.Broker, caller: Principal
) -> None:
    # A broker on a port where nothing listens: the send fails, the job stays queued.
    dead = make_broker("redis://127.0.0.1:1/0")
    dispatcher = BackgroundDispatcher(core.jobs, sender(dead))
    job, created = _admission(core, dispatcher).submit(
        caller, JobRequest(question="How do I request parental leave?", user_id="u1")
    )
    dispatcher.close()  # its send has failed by now
    assert created
    assert core.jobs.get(job.id).status == JobStatus.QUEUED
    assert core.jobs.get(job.id).dispatched_at is None

    # The workers' own sweeper (every sweep_interval_ms) finds the never-sent job and sends it.
    workers = AnsweringWorkers(core, broker, threads=2)
    workers.start()
    try:
        done = wait_for(lambda: _final(core.jobs, job.id), timeout_s=60)
    finally:
        workers.stop()
    assert done.status == JobStatus.ANSWERED
    assert done.dispatched_at is not None
