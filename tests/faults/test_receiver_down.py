"""The callback receiver is down for a while (503, then connection refused), then up: every
result still arrives, once per webhook-id, after retries."""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import JOB_COUNT, Verify
from tests.support.topology import Topology
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis]

OUTAGE_S = 3.0  # each way; backoff is 0.5 s doubling to 2 s, so several retries each


def test_webhooks_refused_for_a_while_arrive_once_each_after_retries(
    deployed: Topology, verify: Verify
) -> None:
    receiver = deployed.receiver
    submission = deployed.submit(JOB_COUNT, "receiver-down")
    wait_for(lambda: len(receiver.delivered()) >= JOB_COUNT // 5, timeout_s=90)
    receiver.down("503")
    time.sleep(OUTAGE_S)
    receiver.down("refuse")
    time.sleep(OUTAGE_S)
    receiver.up()
    report = verify(submission, note=f"{receiver.refused_count()} attempts answered 503")
    assert receiver.refused_count() > 0
    retried = sum(n for attempts, n in report.delivery_attempts.items() if attempts > 1)
    assert retried > 0, dict(report.delivery_attempts)
