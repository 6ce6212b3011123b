"""The Redis broker restarts, empty (it keeps nothing on disk here), in the middle of a batch:
the database is the system of record and the sweeper sends the lost messages again."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.faults.conftest import JOB_COUNT, Verify
from tests.support.topology import QUESTIONS, Submission, Topology
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis]


def test_jobs_queued_when_redis_restarts_are_recovered_from_the_database(
    deployed: Topology, verify: Verify
) -> None:
    submission = deployed.submit(JOB_COUNT, "redis-restart").wait()
    ids = submission.ids()
    wait_for(lambda: deployed.final_count(submission) >= JOB_COUNT // 5, timeout_s=90)
    deployed.redis.restart(down_s=1.0)
    queued = [job_id for job_id, job in deployed.jobs(ids).items() if job.status == "queued"]
    assert len(queued) >= JOB_COUNT // 4, f"only {len(queued)} jobs were queued at the restart"
    verify(submission, note=f"{len(queued)} jobs were queued when Redis restarted")
    # Admission and the workers keep going on the new Redis.
    verify(deployed.submit(20, "after-redis-restart"))


def test_a_job_submitted_while_redis_is_down_is_accepted_and_answered_when_it_is_back(
    deployed: Topology, verify: Verify
) -> None:
    headers = {"Authorization": f"Bearer {deployed.key}", "Idempotency-Key": "redis-down-1"}
    body = {
        "question": QUESTIONS[0],
        "user_id": "faults-down",
        "callback_url": deployed.receiver.url,
    }
    submission = Submission(total=1)
    deployed.redis.kill()
    try:
        response = httpx.post(
            f"{deployed.base_url}/v1/jobs", json=body, headers=headers, timeout=30
        )
    finally:
        deployed.redis.start()
    submission.finished = time.monotonic()
    submission.done.set()
    assert response.status_code == 202, f"HTTP {response.status_code}: {response.text}"
    submission.job_ids["redis-down-1"] = response.json()["id"]
    verify(submission)
