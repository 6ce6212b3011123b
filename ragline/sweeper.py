"""The sweeper: sends again every job whose message may be lost (never sent, lost with a
broker restart, or held by a worker that died). The actor's compare-and-set makes a
duplicate message harmless. It also applies the review queue's service levels."""

from __future__ import annotations

from datetime import timedelta

import structlog

from ragline.admission import Send, dispatch
from ragline.background import BackgroundLoop
from ragline.jobs import JobRepository
from ragline.review import ReviewQueue

log = structlog.get_logger("ragline.sweeper")


class Sweeper:
    def __init__(
        self,
        jobs: JobRepository,
        send: Send,
        *,
        interval_s: float,
        requeue_after: timedelta,
        review: ReviewQueue | None = None,
    ) -> None:
        self.jobs = jobs
        self.review = review
        self.send = send
        self.requeue_after = requeue_after
        self._loop = BackgroundLoop("ragline-sweeper", interval_s, self.sweep)

    def sweep(self) -> int:
        """One pass; returns how many jobs were sent again."""
        sent = 0
        for job_id in self.jobs.due_for_dispatch(requeue_after=self.requeue_after):
            if dispatch(self.jobs, self.send, job_id):
                sent += 1
        if sent:
            log.info("jobs_redispatched", count=sent)
        if self.review is not None:
            self.review.enforce_sla()
        return sent

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()
