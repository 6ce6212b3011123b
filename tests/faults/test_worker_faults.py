"""A worker process dies (SIGKILL) or is stopped (SIGTERM) in the middle of a batch."""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import JOB_COUNT, Verify
from tests.support.topology import Topology
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis]


def test_a_worker_killed_mid_batch_loses_no_job_and_answers_none_twice(
    deployed: Topology, verify: Verify
) -> None:
    submission = deployed.submit(JOB_COUNT, "sigkill")
    victim = deployed.workers[0]
    wait_for(lambda: deployed.final_count(submission) >= JOB_COUNT // 4, timeout_s=90)

    def running_on_victim() -> set[str]:
        """Jobs the victim started that the database still has running: its log can lag
        the database by a job's last step, and jobs take milliseconds to retrieve for."""
        started = victim.in_flight()
        jobs = deployed.jobs(started) if started else {}
        return started if any(j.status == "running" for j in jobs.values()) else set()

    in_flight = wait_for(running_on_victim, timeout_s=30, every_s=0.005)
    victim.kill()
    # Running when the process died: only the lease's expiry and the sweeper bring these back.
    abandoned = [j.id for j in deployed.jobs(in_flight).values() if j.status == "running"]
    victim.start()  # loads its models while the other worker goes on
    report = verify(
        submission,
        # Killed between sending a webhook and recording it, a worker's delivery is sent
        # again with the same webhook-id: at least once, by design (README "Webhooks").
        allow_redelivery=True,
        note=f"killed with {sorted(in_flight)} in flight, {len(abandoned)} of them running",
    )
    assert abandoned, f"the kill hit no running job (in flight: {in_flight})"
    rerun = deployed.jobs(abandoned)
    assert all(job.attempts >= 2 for job in rerun.values()), {
        job.id: job.attempts for job in rerun.values()
    }
    assert report.statuses.total() == JOB_COUNT


def test_a_worker_stopped_mid_batch_finishes_its_jobs_in_flight(
    deployed: Topology, verify: Verify
) -> None:
    submission = deployed.submit(JOB_COUNT, "sigterm")
    victim = deployed.workers[0]
    wait_for(lambda: deployed.final_count(submission) >= JOB_COUNT // 4, timeout_s=90)
    in_flight = wait_for(victim.in_flight, timeout_s=30, every_s=0.01)
    began = time.monotonic()
    assert victim.terminate(timeout_s=60) == 0
    stop_s = time.monotonic() - began
    stopping = victim.starts
    finished = {e["job_id"] for e in victim.events("job_finished", stopping)}
    released = {e["job_id"] for e in victim.events("job_released", stopping)}
    assert victim.events("workers_stopped", stopping), victim.log_path.read_text()[-3000:]
    assert "Traceback" not in victim.log_path.read_text()
    victim.start()
    report = verify(
        submission, note=f"SIGTERM with {sorted(in_flight)} in flight; stopped in {stop_s:.1f}s"
    )
    # Finished before the process exited, or handed back: never left to a lease's expiry.
    assert in_flight <= finished | released, in_flight - finished - released
    assert set(report.attempts) == {1}, f"jobs run more than once: {dict(report.attempts)}"
