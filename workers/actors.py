"""The answer_job actor: an id in, one ragline call, nothing else."""

from __future__ import annotations

from collections.abc import Callable

import dramatiq

from ragline.errors import PermanentError
from workers.broker import ANSWER_ACTOR, QUEUE_NAME

# A transient failure (database or store briefly down) is retried with backoff; the job
# also stays in the database, so the sweeper sends it again if retries run out.
MAX_RETRIES = 5
MIN_BACKOFF_MS = 1_000
MAX_BACKOFF_MS = 30_000


def declare_answer_actor(
    broker: dramatiq.Broker, answer_job: Callable[[str], object], time_limit_ms: int
) -> dramatiq.Actor[[str], None]:
    def answer(job_id: str) -> None:
        answer_job(job_id)

    return dramatiq.Actor(
        answer,
        broker=broker,
        actor_name=ANSWER_ACTOR,
        queue_name=QUEUE_NAME,
        priority=0,
        options={
            "max_retries": MAX_RETRIES,
            "min_backoff": MIN_BACKOFF_MS,
            "max_backoff": MAX_BACKOFF_MS,
            "time_limit": time_limit_ms,
            "throws": (PermanentError,),
        },
    )
