"""Locust users for bench/admission.py: each POSTs jobs as a business system would."""

from __future__ import annotations

import os
import uuid

from locust import FastHttpUser, constant, task

KEY = os.environ.get("BENCH_KEY", "")
BODY = {
    "question": "How many days of annual leave do I get?",
    "user_id": "bench-user",
    "feature": "handbook",
}


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
