"""The sweeper: sends again every job whose message may be lost (never sent, lost with a
broker restart, or held by a worker that died). The actor's compare-and-set makes a
duplicate message harmless. It also applies the review queue's service levels and, every
retention.interval_s, the retention periods."""

from __future__ import annotations

import time
from datetime import timedelta

import structlog

from ragline.background import BackgroundLoop
from ragline.budget import BudgetBook, Reservation
from ragline.dispatch import Send, dispatch
from ragline.jobs import JobRepository
from ragline.models import utcnow
from ragline.reasons import ReviewReason
from ragline.retention import Retention
from ragline.review import ReviewQueue, sla

log = structlog.get_logger("ragline.sweeper")


class Sweeper:
    def __init__(
        self,
        jobs: JobRepository,
        send: Send,
        *,
        interval_s: float,
        requeue_after: timedelta,
        review: ReviewQueue,
        budgets: BudgetBook,
        deadline_grace: timedelta,
        retention: Retention | None = None,
    ) -> None:
        self.jobs = jobs
        self.retention = retention
        self.review = review
        self.budgets = budgets
        self.deadline_grace = deadline_grace
        self.send = send
        self.requeue_after = requeue_after
        self._loop = BackgroundLoop("ragline-sweeper", interval_s, self.sweep)

    def sweep(self) -> int:
        """One pass; returns how many jobs were sent again."""
        self.escalate_overdue()
        sent = 0
        for job_id in self.jobs.due_for_dispatch(requeue_after=self.requeue_after):
            if dispatch(self.jobs, self.send, job_id):
                sent += 1
        if sent:
            log.info("jobs_redispatched", count=sent)
        self.review.enforce_sla()
        if self.retention is not None and self.retention.due(time.monotonic()):
            self.retention.apply()
        return sent

    def escalate_overdue(self) -> int:
        """Jobs past their deadline that no worker will finish go to a person (`timeout`),
        with or without workers running; a dead worker's reservation is given back."""
        due = utcnow() + sla(self.review.config, ReviewReason.TIMEOUT)
        escalated = self.jobs.escalate_overdue(grace=self.deadline_grace, review_due=due)
        for job in escalated:
            if job.reservation:
                self.budgets.release(Reservation.of(job.reservation), job.id)
        if escalated:
            log.warning("jobs_escalated_past_deadline", count=len(escalated))
        return len(escalated)

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()
