"""Admission: validate a request, store the job, hand it to the broker.

The job row is committed before the message is sent; if sending fails (broker down) the
row stays queued with no dispatch time and the sweeper sends it later, so a 202 always
means the job will be processed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import structlog

from ragline.config import RaglineConfig
from ragline.jobs import JobRepository
from ragline.models import Job
from ragline.pipeline.validate import JobRequest, validate_request

log = structlog.get_logger("ragline.admission")

Send = Callable[[str], None]


class Admission:
    def __init__(self, config: RaglineConfig, jobs: JobRepository, send: Send) -> None:
        self.config = config
        self.jobs = jobs
        self.send = send

    def submit(
        self,
        request: JobRequest,
        *,
        idempotency_key: str | None = None,
        request_id: str | None = None,
    ) -> tuple[Job, bool]:
        validate_request(request, self.config.assistant_pipeline.input_validation)
        job, created = self.jobs.submit(
            request,
            deadline=timedelta(milliseconds=self.config.jobs.deadline_ms),
            idempotency_key=idempotency_key,
            request_id=request_id,
        )
        if created:
            dispatch(self.jobs, self.send, job.id)
            log.info("job_admitted", job_id=job.id, feature=job.feature)
        else:
            log.info("job_replayed", job_id=job.id)
        return job, created


def dispatch(jobs: JobRepository, send: Send, job_id: str) -> bool:
    """Send the job's message and record when; a failure is left to the sweeper."""
    try:
        send(job_id)
    except Exception as error:
        log.warning("job_dispatch_failed", job_id=job_id, error=type(error).__name__)
        return False
    jobs.mark_dispatched(job_id)
    return True
