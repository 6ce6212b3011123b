"""Handing committed jobs to the broker.

The database is the system of record: a job is committed before its message is sent, and a
job whose message never left (broker down, process killed) is queued with no dispatch time,
so the sweeper sends it (after a two-second grace, see JobRepository.due_for_dispatch). A
send is therefore never what makes a 202 true, and admission need not wait for it:
BackgroundDispatcher sends on its own thread, after the response.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import structlog

from ragline.jobs import JobRepository

log = structlog.get_logger("ragline.dispatch")

Send = Callable[[str], None]
BATCH = 256  # ids sent, then marked dispatched in one statement
# How long sent ids wait to be marked dispatched together: one UPDATE per interval instead
# of one per job. Well inside the sweeper's two-second grace for unmarked jobs, so a job
# that is sent is not sent again.
MARK_EVERY_S = 0.25


def dispatch(jobs: JobRepository, send: Send, job_id: str) -> bool:
    """Send the job's message and record when; a failure is left to the sweeper."""
    if not _send(send, job_id):
        return False
    jobs.mark_dispatched(job_id)
    return True


def _send(send: Send, job_id: str) -> bool:
    try:
        send(job_id)
    except Exception as error:
        log.warning("job_dispatch_failed", job_id=job_id, error=type(error).__name__)
        return False
    return True


class Dispatcher:
    """Sends each job in the caller's thread (the sweeper, tests, the sandbox)."""

    def __init__(self, jobs: JobRepository, send: Send) -> None:
        self.jobs = jobs
        self.send = send

    def dispatch(self, job_id: str) -> None:
        dispatch(self.jobs, self.send, job_id)

    def close(self) -> None:
        """Nothing is pending: every dispatch finished in its caller."""


class BackgroundDispatcher(Dispatcher):
    """Sends on one daemon thread, in batches: dispatch() only queues the id. When the
    queue is full (the broker slower than admission) the caller sends itself, so memory
    stays bounded and admission slows down instead. Sent ids are marked dispatched together
    every MARK_EVERY_S (a database write per job would cost admission as much as its own
    insert). close() sends and marks what is queued."""

    def __init__(self, jobs: JobRepository, send: Send, capacity: int = 10_000) -> None:
        super().__init__(jobs, send)
        self._pending: queue.Queue[str | None] = queue.Queue(capacity)
        self._unmarked: list[str] = []
        self._mark_due = 0.0
        self._thread = threading.Thread(target=self._run, name="ragline-dispatch", daemon=True)
        self._thread.start()

    def dispatch(self, job_id: str) -> None:
        try:
            self._pending.put_nowait(job_id)
        except queue.Full:
            super().dispatch(job_id)

    def close(self, timeout_s: float = 10.0) -> None:
        self._pending.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            try:
                first = self._pending.get(timeout=self._until_mark())
            except queue.Empty:
                self._mark()
                continue
            batch, stopping = ([] if first is None else [first]), first is None
            while not stopping and len(batch) < BATCH:
                try:
                    more = self._pending.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                else:
                    batch.append(more)
            self._send_all(batch)
            if stopping or len(self._unmarked) >= BATCH or self._until_mark() == 0:
                self._mark()
            if stopping:
                return

    def _until_mark(self) -> float | None:
        """Seconds until the sent ids are due to be marked; None: nothing to mark."""
        if not self._unmarked:
            return None
        return max(0.0, self._mark_due - time.monotonic())

    def _send_all(self, batch: list[str]) -> None:
        sent = [job_id for job_id in batch if _send(self.send, job_id)]
        if sent and not self._unmarked:
            self._mark_due = time.monotonic() + MARK_EVERY_S
        self._unmarked.extend(sent)

    def _mark(self) -> None:
        marking, self._unmarked = self._unmarked, []
        try:
            self.jobs.mark_dispatched(*marking)
        except Exception as error:
            # Sent but not marked: the sweeper sends them again; a duplicate message is a
            # no-op for the actor's compare-and-set.
            log.warning("jobs_dispatch_unrecorded", count=len(marking), error=type(error).__name__)
