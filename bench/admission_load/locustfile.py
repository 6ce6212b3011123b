"""Locust users for bench/admission.py: each POSTs jobs as a business system would.

Each request's exact time (ms, float) is appended to BENCH_TIMES: locust's own percentiles
are rounded to whole milliseconds, too coarse for an endpoint that answers in about one."""

from __future__ import annotations

import os
import uuid
from typing import Any

from locust import FastHttpUser, constant, events, task

KEY = os.environ.get("BENCH_KEY", "")
TIMES = os.environ.get("BENCH_TIMES", "")
BODY = {
    "question": "How many days of annual leave do I get?",
    "user_id": "bench-user",
    "feature": "handbook",
}
_recorded: list[float] = []


@events.request.add_listener  # type: ignore[misc]
def record(response_time: float, exception: BaseException | None, **_: Any) -> None:
    if exception is None:
        _recorded.append(response_time)


@events.quitting.add_listener  # type: ignore[misc]
def save(**_: Any) -> None:
    if TIMES:
        with open(TIMES, "w") as handle:
            handle.write("\n".join(f"{value:.4f}" for value in _recorded))


class Submitter(FastHttpUser):  # type: ignore[misc]
    wait_time = constant(0)

    @task
    def submit(self) -> None:
        self.client.post(
            "/v1/jobs",
            json=BODY,
            headers={"Authorization": f"Bearer {KEY}", "Idempotency-Key": uuid.uuid4().hex},
            name="POST /v1/jobs",
        )
