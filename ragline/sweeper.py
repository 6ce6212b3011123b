"""The sweeper: sends again every job whose message may be lost (never sent, lost with a
broker restart, or held by a worker that died). The actor's compare-and-set makes a
duplicate message harmless. It also applies the review queue's service levels."""

from __future__ import annotations

import threading
from datetime import timedelta

import structlog

from ragline.admission import Send, dispatch
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
        self.interval_s = interval_s
        self.requeue_after = requeue_after
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sweep()
            except Exception as error:  # the database may be down; try again next tick
                log.warning("sweep_failed", error=type(error).__name__)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ragline-sweeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
