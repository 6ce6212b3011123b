"""The broker: Redis when RAGLINE_REDIS_URL is set, else dramatiq's in-process StubBroker.

Actors are declared on an explicit broker (never dramatiq's global one), so importing this
module opens no connection.
"""

from __future__ import annotations

from collections.abc import Callable

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

QUEUE_NAME = "ragline-jobs"
ANSWER_ACTOR = "answer_job"


def make_broker(redis_url: str | None) -> dramatiq.Broker:
    broker: dramatiq.Broker = (
        RedisBroker(url=redis_url)  # type: ignore[no-untyped-call]
        if redis_url
        else StubBroker()
    )
    broker.declare_queue(QUEUE_NAME)
    return broker


def sender(broker: dramatiq.Broker) -> Callable[[str], None]:
    """Send answer_job(job_id) without needing the actor's code in this process (the API)."""

    def send(job_id: str) -> None:
        broker.enqueue(
            dramatiq.Message(
                queue_name=QUEUE_NAME,
                actor_name=ANSWER_ACTOR,
                args=(job_id,),
                kwargs={},
                options={},
            )
        )

    return send


def ping(broker: dramatiq.Broker) -> str:
    if isinstance(broker, RedisBroker):
        broker.client.ping()
        return "redis"
    return "in-process"
