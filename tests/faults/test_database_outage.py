"""PostgreSQL is unavailable for a few seconds in the middle of a batch (every open
connection reset, new ones refused, through the topology's proxy): the API answers 503
problem+json, never 500; the workers retry and carry on; nothing is half-written."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from ragline.models import Account, BudgetCounter, Job, JobStatus, ReviewItem, UsageRecord
from tests.faults.conftest import JOB_COUNT, Verify
from tests.support.topology import ACCOUNT, QUESTIONS, Submission, Topology
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis]

OUTAGE_S = 4.5  # longer than the actor's first retries and the sweeper's requeue delay


@dataclass
class Probes:
    """What the API answered while the database was away."""

    answers: Counter[str] = field(default_factory=Counter)  # "GET /v1/jobs/{id} 503": n
    wrong: list[str] = field(default_factory=list)  # anything but a 503 problem
    refused: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> job body
    health: list[dict[str, Any]] = field(default_factory=list)


def test_the_database_down_for_seconds_answers_503_and_leaves_nothing_half_written(
    deployed: Topology, verify: Verify
) -> None:
    # Submitted slowly enough that the outage also hits admissions in flight.
    submission = deployed.submit(JOB_COUNT, "database-down", concurrency=2)
    wait_for(lambda: deployed.final_count(submission) >= JOB_COUNT // 5, timeout_s=90)
    known_job = submission.ids()[0]
    reset = deployed.database.cut()
    admitted_at_cut = len(submission.ids())
    try:
        probes = _probe(deployed, known_job, OUTAGE_S)
    finally:
        deployed.database.restore()
    batch = _together(submission.wait(), _submit_again(deployed, probes.refused))
    report = verify(
        batch,
        note=f"database cut for {OUTAGE_S}s ({reset} connections reset) with "
        f"{admitted_at_cut} jobs admitted; API meanwhile: {dict(probes.answers)}, "
        f"the {len(probes.refused)} POSTs refused sent again after",
    )
    assert not probes.wrong, "\n".join(probes.wrong)
    assert probes.answers["POST /v1/jobs 503"] and probes.answers["GET /v1/jobs/{id} 503"]
    assert all(h["components"]["database"]["status"] == "down" for h in probes.health), (
        probes.health
    )
    half_written = _half_written(deployed, batch.ids())
    assert not half_written, "\n".join(half_written)
    retried = sum(n for attempts, n in report.attempts.items() if attempts > 1)
    assert all(worker.running for worker in deployed.workers), "a worker died"
    # The workers and the API go on with the database back, on new connections.
    verify(deployed.submit(20, "after-database-down"), note=f"{retried} jobs ran more than once")


def _probe(deployed: Topology, job_id: str, seconds: float) -> Probes:
    """Submit, read and check health against the API until `seconds` have passed."""
    probes = Probes()
    headers = {"Authorization": f"Bearer {deployed.key}"}
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=deployed.base_url, headers=headers, timeout=30) as client:
        n = 0
        while time.monotonic() < deadline:
            key = f"database-down-refused-{n}"
            body = {
                "question": QUESTIONS[n % len(QUESTIONS)],
                "user_id": f"faults-refused-{n}",
                "callback_url": deployed.receiver.url,
            }
            submitted = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": key})
            _expect_problem(probes, "POST /v1/jobs", submitted)
            if submitted.status_code != 202:
                probes.refused[key] = body
            _expect_problem(probes, "GET /v1/jobs/{id}", client.get(f"/v1/jobs/{job_id}"))
            health = client.get("/v1/health")
            probes.answers[f"GET /v1/health {health.status_code}"] += 1
            probes.health.append(health.json())
            n += 1
            time.sleep(0.2)
    return probes


def _expect_problem(probes: Probes, request: str, response: httpx.Response) -> None:
    probes.answers[f"{request} {response.status_code}"] += 1
    problem = response.headers.get("content-type", "").startswith("application/problem+json")
    if response.status_code != 503 or not problem or response.json().get("status") != 503:
        probes.wrong.append(f"{request}: HTTP {response.status_code} {response.text[:300]}")


def _submit_again(deployed: Topology, refused: dict[str, dict[str, Any]]) -> Submission:
    """What a client does with a 503: send the same request again, with the same key."""
    submission = Submission(total=len(refused))
    headers = {"Authorization": f"Bearer {deployed.key}"}
    with httpx.Client(base_url=deployed.base_url, headers=headers, timeout=30) as client:
        for key, body in refused.items():

            def accepted(key: str = key, body: dict[str, Any] = body) -> str | None:
                response = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": key})
                return str(response.json()["id"]) if response.status_code == 202 else None

            submission.job_ids[key] = wait_for(accepted, timeout_s=60, every_s=0.5)
    submission.finished = time.monotonic()
    submission.done.set()
    return submission


def _together(first: Submission, then: Submission) -> Submission:
    """Two submissions checked as one batch, timed from the first."""
    batch = Submission(
        total=first.total + then.total,
        job_ids={**first.job_ids, **then.job_ids},
        started=first.started,
        finished=then.finished,
    )
    batch.done.set()
    return batch


def _half_written(deployed: Topology, job_ids: list[str]) -> list[str]:
    """What a transaction cut short would leave: a final job still leased or holding a
    budget reservation, an outcome stored by a stale attempt, a review item without its
    escalation (or the reverse), money reserved with nothing running, or spend counters
    that disagree with the usage ledger."""
    assert deployed.engine is not None
    found = []
    with Session(deployed.engine) as session:
        jobs = session.exec(select(Job).where(col(Job.id).in_(job_ids))).all()
        in_review = set(
            session.exec(select(ReviewItem.job_id).where(col(ReviewItem.job_id).in_(job_ids)))
        )
        reserved = session.exec(select(func.sum(BudgetCounter.reserved_micros))).one() or 0
        account_id = session.exec(select(Account.id).where(Account.name == ACCOUNT)).one()
        ledger = (
            session.exec(
                select(func.sum(UsageRecord.cost_micros)).where(
                    UsageRecord.account_id == account_id
                )
            ).one()
            or 0
        )
        counted = (
            session.exec(
                select(func.sum(BudgetCounter.spent_micros)).where(
                    col(BudgetCounter.id).like(f"account:{ACCOUNT}:daily:%")
                )
            ).one()
            or 0
        )
    for job in jobs:
        if job.lease_expires_at is not None or job.finished_at is None:
            found.append(f"{job.id}: {job.status} but leased or never finished")
        if job.reservation is not None:
            found.append(f"{job.id}: {job.status} still holding {job.reservation}")
        if job.attempts < 1 or (job.trace and job.trace.get("attempt") != job.attempts):
            found.append(f"{job.id}: outcome of attempt {job.trace.get('attempt')}/{job.attempts}")
        if (job.id in in_review) != (job.status == JobStatus.ESCALATED):
            found.append(f"{job.id}: {job.status}, review item: {job.id in in_review}")
    if reserved:
        found.append(f"{reserved} micros still reserved with every job final")
    if ledger != counted:
        found.append(f"the usage ledger says {ledger} micros spent, the counters {counted}")
    return found
