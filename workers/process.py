"""Answering workers for one process: dramatiq worker threads plus the sweeper.

`ragline worker` runs these on the Redis broker; `ragline serve` in embedded mode runs the
same inside the server on the in-process broker. The sweeper and the webhook deliverer run
beside them.
"""

from __future__ import annotations

import dramatiq
import structlog
from dramatiq.brokers.stub import StubBroker

from ragline.bootstrap import Services
from workers.actors import declare_answer_actor

log = structlog.get_logger("ragline.workers")


class AnsweringWorkers:
    def __init__(self, services: Services, broker: dramatiq.Broker, threads: int) -> None:
        """services: bootstrapped in Mode.WORKER or Mode.EMBEDDED, with this broker's send."""
        pipeline, sweeper = services.need_pipeline(), services.sweeper
        assert sweeper is not None
        declare_answer_actor(
            broker, pipeline.answer_job, time_limit_ms=services.config.jobs.lease_ms
        )
        self.broker = broker
        self.threads = threads
        # How often idle threads look for work, and so how long stop() waits for them. The
        # in-process queue is free to poll; Redis is polled at most every 500 ms per process.
        poll_ms = 100 if isinstance(broker, StubBroker) else 500
        self._worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=poll_ms)
        self.sweeper = sweeper
        self.deliverer = services.deliverer

    def start(self) -> None:
        self._worker.start()
        self.sweeper.start()
        self.deliverer.start()
        log.info("workers_started", threads=self.threads)

    def stop(self, timeout_ms: int = 30_000) -> None:
        """Stop taking messages and let the ones in flight finish (up to timeout_ms)."""
        self.sweeper.stop()
        self._worker.stop(timeout=timeout_ms)
        self.deliverer.stop()
        log.info("workers_stopped")
