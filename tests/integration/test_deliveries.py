"""Webhook deliveries on SQLite against a real HTTP receiver on loopback: signatures the
receivers' library verifies, retries with a stable webhook-id, timeouts, permanent failures,
resending, the lease between two deliverers, the SSRF check at delivery time, and what a
business system sees of a job."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from standardwebhooks.webhooks import Webhook

from ragline.config import Deliveries
from ragline.delivery import RETRYABLE, Deliverer, backoff, job_result
from ragline.errors import NotFound
from ragline.jobs import JobRepository, Outcome
from ragline.models import Account, Delivery, DeliveryStatus, Job, JobStatus, utcnow
from tests.support.reviews import finished_job as finish
from tests.support.tenants import make_tenant
from tests.support.waiting import wait_for

CONFIG = Deliveries(
    allow_private_targets=True, first_retry_s=0.05, max_retry_s=0.2, timeout_s=1, max_attempts=4
)
DEADLINE = timedelta(seconds=60)
LEASE = timedelta(seconds=30)
CITATIONS = [{"n": 1, "document": "leave.md", "title": "Annual leave"}]


# -- the receiver ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """How the receiver answers one request."""

    status: int = 200
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    """A real HTTP server on 127.0.0.1 that records every request and answers from a
    script (then 200), optionally sleeping first to force the sender's timeout."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._script: list[Step] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append(
                        Received(
                            path=self.path,
                            headers={k.lower(): v for k, v in self.headers.items()},
                            body=body,
                        )
                    )
                    step = receiver._script.pop(0) if receiver._script else Step()
                if step.delay_s:
                    receiver._release.wait(step.delay_s)
                payload = b'{"ok": true}'
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(step.status)
                    for name, value in step.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def script(self, *steps: int | Step) -> None:
        with self._lock:
            self._script = [s if isinstance(s, Step) else Step(status=s) for s in steps]

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.requests)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def account_id(sqlite_engine: Engine) -> str:
    principal, _ = make_tenant(sqlite_engine)
    return principal.account_id


@pytest.fixture
def deliverers(sqlite_engine: Engine) -> Iterator[list[Deliverer]]:
    """Deliverers made by a test, whose HTTP clients are closed afterwards."""
    made: list[Deliverer] = []
    yield made
    for deliverer in made:
        deliverer.client.close()


@pytest.fixture
def deliverer(sqlite_engine: Engine, deliverers: list[Deliverer]) -> Deliverer:
    made = Deliverer(sqlite_engine, CONFIG)
    deliverers.append(made)
    return made


# -- helpers --------------------------------------------------------------------------------


def finished_job(
    engine: Engine,
    account_id: str,
    callback_url: str | None,
    status: JobStatus = JobStatus.ANSWERED,
    answer: str | None = "Employees get 25 days of annual leave [1].",
) -> Job:
    """A finished job with a callback, as the deliverer finds it (tests/support/reviews.py
    finishes it the way the pipeline does)."""
    outcome = Outcome(
        status=status,
        answer=answer,
        citations=CITATIONS if status == JobStatus.ANSWERED else [],
        confidence=0.9,
        reason=None if status == JobStatus.ANSWERED else "low_confidence",
        prompt_version="p1",
        model_id="m1",
        index_version="v1",
    )
    job_id = finish(
        engine,
        account_id,
        outcome,
        question="How much leave do I get?",
        callback_url=callback_url,
        metadata={"ticket": 7},
    )
    return JobRepository(engine).get(job_id)


def deliveries_of(engine: Engine, job_id: str) -> list[Delivery]:
    with Session(engine) as session:
        return list(session.exec(select(Delivery).where(Delivery.job_id == job_id)))


def only_delivery(engine: Engine, job: Job) -> Delivery:
    rows = deliveries_of(engine, job.id)
    assert len(rows) == 1
    return rows[0]


def reload(engine: Engine, delivery_id: str) -> Delivery:
    with Session(engine) as session:
        delivery = session.get(Delivery, delivery_id)
    assert delivery is not None
    return delivery


def secret_of(engine: Engine, account_id: str) -> str:
    with Session(engine) as session:
        account = session.get(Account, account_id)
    assert account is not None
    return account.webhook_secret


def drive(
    deliverer: Deliverer, engine: Engine, delivery_id: str, timeout_s: float = 10
) -> Delivery:
    """run_once until the delivery is delivered or failed (waiting out the retry times)."""

    def settled() -> Delivery | None:
        deliverer.run_once()
        delivery = reload(engine, delivery_id)
        return None if delivery.status == DeliveryStatus.PENDING else delivery

    return wait_for(settled, timeout_s=timeout_s, every_s=0.02)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the outbox row -------------------------------------------------------------------------


def test_finishing_a_job_with_a_callback_writes_one_pending_delivery(
    sqlite_engine: Engine, account_id: str, receiver: Receiver
) -> None:
    job = finished_job(sqlite_engine, account_id, receiver.url)
    delivery = only_delivery(sqlite_engine, job)
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.event == "job.answered"
    assert delivery.url == receiver.url
    assert delivery.account_id == account_id
    assert delivery.attempts == 0
    assert delivery.id.startswith("msg_")
    assert receiver.received() == []  # nothing is sent until the deliverer runs


def test_no_callback_url_and_escalation_write_no_delivery(
    sqlite_engine: Engine, account_id: str, receiver: Receiver
) -> None:
    plain = finished_job(sqlite_engine, account_id, None)
    escalated = finished_job(sqlite_engine, account_id, receiver.url, status=JobStatus.ESCALATED)
    assert deliveries_of(sqlite_engine, plain.id) == []
    assert deliveries_of(sqlite_engine, escalated.id) == []  # it waits for review


def test_a_rejected_job_delivers_a_job_rejected_event(
    sqlite_engine: Engine, account_id: str, receiver: Receiver
) -> None:
    job = finished_job(sqlite_engine, account_id, receiver.url, status=JobStatus.REJECTED)
    assert only_delivery(sqlite_engine, job).event == "job.rejected"


# -- sending --------------------------------------------------------------------------------


def test_an_answered_job_is_delivered_signed(
    sqlite_engine: Engine, account_id: str, receiver: Receiver, deliverer: Deliverer
) -> None:
    job = finished_job(sqlite_engine, account_id, receiver.url)
    delivery = only_delivery(sqlite_engine, job)

    assert deliverer.run_once() == 1

    [request] = receiver.received()
    assert request.path == "/hook"
    assert request.webhook_id == delivery.id
    assert request.headers["content-type"] == "application/json"
    payload = Webhook(secret_of(sqlite_engine, account_id)).verify(request.body, request.headers)
    assert payload["type"] == "job.answered"
    assert payload["timestamp"]
    data = payload["data"]
    assert data["id"] == job.id
    assert data["status"] == "answered"
    assert data["answer"] == "Employees get 25 days of annual leave [1]."
    assert data["citations"] == CITATIONS
    assert data["metadata"] == {"ticket": 7}
    assert data["decided_by"] == "model"
    assert data["versions"] == {"prompt_version": "p1", "model_id": "m1", "index_version": "v1"}

    stored = reload(sqlite_engine, delivery.id)
    assert stored.status == DeliveryStatus.DELIVERED
    assert stored.last_status_code == 200
    assert stored.last_error is None
    assert stored.attempts == 1
    assert stored.delivered_at is not None
    assert deliverer.run_once() == 0  # nothing more to send
    assert len(receiver.received()) == 1


def test_another_accounts_secret_does_not_verify(
    sqlite_engine: Engine, account_id: str, receiver: Receiver, deliverer: Deliverer
) -> None:
    other, _ = make_tenant(sqlite_engine, "globex")
    finished_job(sqlite_engine, account_id, receiver.url)
    deliverer.run_once()
    [request] = receiver.received()
    assert secret_of(sqlite_engine, other.account_id) != secret_of(sqlite_engine, account_id)
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(secret_of(sqlite_engine, other.account_id)).verify(request.body, request.headers)


def test_server_errors_are_retried_with_the_same_webhook_id(
    sqlite_engine: Engine, account_id: str, receiver: Receiver, deliverer: Deliverer
) -> None:
    receiver.script(503, 503, 200)
    job = finished_job(sqlite_engine, account_id, receiver.url)
    delivery = only_delivery(sqlite_engine, job)

    final = drive(deliverer, sqlite_engine, delivery.id)

    assert final.status == DeliveryStatus.DELIVERED
    assert final.attempts == 3
    assert final.last_status_code == 200
    requests = receiver.received()
    assert len(requests) == 3
    assert {r.webhook_id for r in requests} == {delivery.id}
    secret = secret_of(sqlite_engine, account_id)
    for request in requests:  # every attempt is freshly signed and verifies
        assert Webhook(secret).verify(request.body, request.headers)["data"]["id"] == job.id


def test_a_retry_waits_for_its_backoff(
    sqlite_engine: Engine, account_id: str, receiver: Receiver, deliverers: list[Deliverer]
) -> None:
    slow = Deliverer(
        sqlite_engine, CONFIG.model_copy(update={"first_retry_s": 30, "max_retry_s": 60})
    )
    deliverers.append(slow)
    receiver.script(503)
    job = finished_job(sqlite_engine, account_id, receiver.url)
    delivery = only_delivery(sqlite_engine, job)

    before = utcnow()
    assert slow.run_once() == 1
    assert slow.run_once() == 0  # not due for 30 s

    stored = reload(sqlite_engine, delivery.id)
    assert stored.status == DeliveryStatus.PENDING
    assert stored.attempts == 1
    assert stored.last_status_code == 503
    assert stored.last_error == "HTTP 503"
    assert stored.next_attempt_at >= before + timedelta(seconds=29)
    assert len(receiver.received()) == 1


def test_backoff_doubles_up_to_the_maximum() -> None:
    assert [backoff(CONFIG, n) for n in range(0, 6)] == [0.05, 0.05, 0.1, 0.2, 0.2, 0.2]


def test_a_receiver_slower_than_the_timeout_is_a_retryable_failure(
    sqlite_engine: Engine, account_id: str, receiver: Receiver, deliverer: Deliverer
) -> None:
    receiver.script(Step(delay_s=CONFIG.timeout_s + 2), 200)
    job = finished_job(sqlite_engine, account_id, receiver.url)
    delivery = only_delivery(sqlite_engine, job)

    assert deliverer.run_once() == 1  # returns after timeout_s

    stored = reload(sqlite_engine, delivery.id)
    assert stored.status == DeliveryStatus.PENDING
    assert stored.attempts == 1
    assert stored.last_status_code is None
    assert stored.last_error == "ReadTimeout"

    final = drive(deliverer, sqlite_engine, delivery.id)
    assert final.status == DeliveryStatus.DELIVERED
    assert final.attempts == 2
    assert final.last_error is None
    assert [r.webhook_id for r in receiver.received()] == [delivery.id, delivery.id]


def test_a_refused_connection_is_a_retryable_failure(
    sqlite_engine: Engine, account_id: str, deliverer: Deliverer
) -> None:
    job = finished_job(sqlite_engine, account_id, f"http://127.0.0.1:{free_port()}/hook")
    delivery = only_delivery(sqlite_engine, job)

    assert deliverer.run_once() == 1

    stored = reload(sqlite_engine, delivery.id)
    assert stored.status == DeliveryStatus.PENDING
    assert stored.attempts == 1
    assert stored.last_error == "ConnectError"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_a_client_error_fails_at_once(
    sqlite_engine: Engine,
    account_id: str,
    receiver: Receiver,
    deliverer: Deliverer,
    status: int,
) -> None:
    receiver.script(status)
    job = finished_job(sqlite_engine, account_id, receiver.url)
    delivery = only_delivery(sqlite_engine, job)

    assert deliverer.run_once() == 1

    stored = reload(sqlite_engine, delivery.id)
    assert stored.status == DeliveryStatus.FAILED
    assert stored.attempts == 1
    assert stored.last_status_code == status
    assert stored.last_error == f"HTTP {status}"
    assert deliverer.run_once() == 0
    assert len(receiver.received()) == 1


@pytest.mark.parametrize("status", sorted(RETRYABLE))
def test_408_425_and_429_are_retried(
    sqlite_engine: Engine,
    account_id: str,
    receiver: Receiver,
    deliverer: Deliverer,
    status: int,
) -> None:
    receiver.script(status, 200)
    job = finished_job(sqlite_engine, account_id, receiver.url)
    delivery = only_delivery(sqlite_engine, job)

    final = drive(deliverer, sqlite_engine, delivery.id)

    assert final.status == DeliveryStatus.DELIVERED
    assert final.attempts == 2
    assert len(receiver.received()) == 2


def test_a_redirect_is_not_followed(
    sqlite_engine: Engine, account_id: str, receiver: Receiver, deliverer: Deliverer
) -> None:
    # A redirect could point anywhere (the SSRF check saw only the first URL).
    receiver.script(Step(status=302, headers={"Location": receiver.url + "/elsewhere"}))
    job = finished_job(sqlite_engine, account_id, receiver.url)
    delivery = only_delivery(sqlite_engine, job)

    final = drive(deliverer, sqlite_engine, delivery.id)

    assert final.status == DeliveryStatus.FAILED
    assert final.last_status_code == 302
    assert [r.path for r in receiver.received()] == ["/hook"]


def test_after_max_attempts_it_fails_and_resend_delivers_with_the_same_id(
    sqlite_engine: Engine, account_id: str, receiver: Receiver, deliverer: Deliverer
) -> None:
    receiver.script(*[500] * CONFIG.max_attempts)
    job = finished_job(sqlite_engine, account_id, receiver.url)
    delivery = only_delivery(sqlite_engine, job)

    failed = drive(deliverer, sqlite_engine, delivery.id)

    assert failed.status == DeliveryStatus.FAILED
    assert failed.attempts == CONFIG.max_attempts
    assert failed.last_status_code == 500
    assert failed.last_error == "HTTP 500"
    assert len(receiver.received()) == CONFIG.max_attempts
    assert deliverer.run_once() == 0  # a failed delivery stays failed

    resent = deliverer.resend(delivery.id, account_id)
    assert resent.id == delivery.id
    assert resent.status == DeliveryStatus.PENDING
    assert resent.attempts == 0
    stored = reload(sqlite_engine, delivery.id)
    assert stored.status == DeliveryStatus.PENDING and stored.attempts == 0

    final = drive(deliverer, sqlite_engine, delivery.id)

    assert final.status == DeliveryStatus.DELIVERED
    assert final.attempts == 1
    assert final.last_status_code == 200
    requests = receiver.received()
    assert len(requests) == CONFIG.max_attempts + 1
    assert requests[-1].webhook_id == requests[0].webhook_id == delivery.id
    payload = Webhook(secret_of(sqlite_engine, account_id)).verify(
        requests[-1].body, requests[-1].headers
    )
    assert payload["data"]["id"] == job.id


def test_two_deliverers_send_each_attempt_once(
    sqlite_engine: Engine, account_id: str, receiver: Receiver, deliverers: list[Deliverer]
) -> None:
    # The receiver is slow so that both deliverers see the rows as due at the same time.
    receiver.script(*[Step(delay_s=0.05)] * 10)
    jobs = [finished_job(sqlite_engine, account_id, receiver.url) for _ in range(5)]
    ids = {only_delivery(sqlite_engine, job).id for job in jobs}
    pair = [Deliverer(sqlite_engine, CONFIG) for _ in range(2)]
    deliverers.extend(pair)
    start = threading.Barrier(len(pair))
    sent: list[int] = []
    errors: list[BaseException] = []

    def run(deliverer: Deliverer) -> None:
        try:
            start.wait()
            sent.append(deliverer.run_once())
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(d,)) for d in pair]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sum(sent) == len(ids)
    requests = receiver.received()
    assert sorted(r.webhook_id for r in requests) == sorted(ids)  # each exactly once
    for delivery_id in ids:
        stored = reload(sqlite_engine, delivery_id)
        assert stored.status == DeliveryStatus.DELIVERED
        assert stored.attempts == 1


class LeaseTogether(Deliverer):
    """A deliverer that waits, between reading the due rows and leasing one, until its
    rival has read them too: both have seen the row as due, so only the lease decides."""

    def __init__(self, engine: Engine, config: Deliveries, meet: threading.Barrier) -> None:
        super().__init__(engine, config)
        self.meet = meet

    def _lease(self, delivery_id: str, attempts: int) -> bool:
        self.meet.wait(timeout=10)
        return super()._lease(delivery_id, attempts)


def test_two_deliverers_that_both_saw_a_due_delivery_send_it_once(
    sqlite_engine: Engine, account_id: str, receiver: Receiver, deliverers: list[Deliverer]
) -> None:
    for _ in range(3):  # a few rounds: either deliverer may win the lease
        job = finished_job(sqlite_engine, account_id, receiver.url)
        delivery = only_delivery(sqlite_engine, job)
        meet = threading.Barrier(2)
        pair = [LeaseTogether(sqlite_engine, CONFIG, meet) for _ in range(2)]
        deliverers.extend(pair)
        sent: list[int] = []
        errors: list[BaseException] = []

        def run(
            deliverer: Deliverer, sent: list[int] = sent, errors: list[BaseException] = errors
        ) -> None:
            try:
                sent.append(deliverer.run_once())
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

        threads = [threading.Thread(target=run, args=(d,)) for d in pair]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

        assert errors == []
        assert sorted(sent) == [0, 1]
        assert [r.webhook_id for r in receiver.received()].count(delivery.id) == 1
        stored = reload(sqlite_engine, delivery.id)
        assert stored.status == DeliveryStatus.DELIVERED
        assert stored.attempts == 1


def test_a_private_target_is_refused_at_delivery_time(
    sqlite_engine: Engine, account_id: str, receiver: Receiver, deliverers: list[Deliverer]
) -> None:
    # Admission would refuse it too; here the row exists (written before the configuration
    # changed, or the name resolves differently now) and the deliverer checks again.
    strict = Deliverer(sqlite_engine, CONFIG.model_copy(update={"allow_private_targets": False}))
    deliverers.append(strict)
    job = finished_job(sqlite_engine, account_id, receiver.url)
    delivery = only_delivery(sqlite_engine, job)

    assert strict.run_once() == 1

    stored = reload(sqlite_engine, delivery.id)
    assert stored.status == DeliveryStatus.FAILED
    assert stored.attempts == 1
    assert stored.last_status_code is None
    assert stored.last_error is not None
    assert "private or loopback" in stored.last_error
    assert receiver.received() == []
    assert strict.run_once() == 0


def test_a_url_httpx_cannot_send_fails_at_once_without_stopping_the_batch(
    sqlite_engine: Engine, account_id: str, receiver: Receiver, deliverer: Deliverer
) -> None:
    poison = only_delivery(
        sqlite_engine, finished_job(sqlite_engine, account_id, receiver.url + "\x01")
    )
    good = only_delivery(sqlite_engine, finished_job(sqlite_engine, account_id, receiver.url))

    assert deliverer.run_once() == 2

    stored = reload(sqlite_engine, poison.id)
    assert stored.status == DeliveryStatus.FAILED
    assert stored.attempts == 1
    assert stored.last_error
    assert reload(sqlite_engine, good.id).status == DeliveryStatus.DELIVERED
    assert [r.webhook_id for r in receiver.received()] == [good.id]


# -- operators ------------------------------------------------------------------------------


def test_list_filters_by_account_and_status(
    sqlite_engine: Engine, account_id: str, receiver: Receiver, deliverer: Deliverer
) -> None:
    other, _ = make_tenant(sqlite_engine, "globex")
    receiver.script(404)  # the first delivery sent fails at once
    mine_failed = only_delivery(
        sqlite_engine, finished_job(sqlite_engine, account_id, receiver.url)
    )
    deliverer.run_once()
    mine_pending = only_delivery(
        sqlite_engine, finished_job(sqlite_engine, account_id, receiver.url)
    )
    theirs = only_delivery(
        sqlite_engine, finished_job(sqlite_engine, other.account_id, receiver.url)
    )

    def ids(rows: list[Delivery]) -> set[str]:
        return {row.id for row in rows}

    assert ids(deliverer.list(account_id)) == {mine_failed.id, mine_pending.id}
    assert ids(deliverer.list(other.account_id)) == {theirs.id}
    assert ids(deliverer.list(None)) == {mine_failed.id, mine_pending.id, theirs.id}
    assert ids(deliverer.list(account_id, status=DeliveryStatus.FAILED)) == {mine_failed.id}
    assert ids(deliverer.list(account_id, status="pending")) == {mine_pending.id}
    assert ids(deliverer.list(other.account_id, status="failed")) == set()
    assert ids(deliverer.list(None, status="pending")) == {mine_pending.id, theirs.id}
    assert len(deliverer.list(None, limit=2)) == 2
    assert ids(deliverer.list(None, limit=2)) | ids(deliverer.list(None, limit=2, offset=2)) == {
        mine_failed.id,
        mine_pending.id,
        theirs.id,
    }


def test_resend_of_another_accounts_delivery_is_not_found(
    sqlite_engine: Engine, account_id: str, receiver: Receiver, deliverer: Deliverer
) -> None:
    other, _ = make_tenant(sqlite_engine, "globex")
    receiver.script(404)
    theirs = only_delivery(
        sqlite_engine, finished_job(sqlite_engine, other.account_id, receiver.url)
    )
    deliverer.run_once()
    assert reload(sqlite_engine, theirs.id).status == DeliveryStatus.FAILED

    with pytest.raises(NotFound):
        deliverer.resend(theirs.id, account_id)
    with pytest.raises(NotFound):
        deliverer.resend("msg_missing", account_id)
    with pytest.raises(NotFound):
        deliverer.resend("msg_missing", None)
    assert reload(sqlite_engine, theirs.id).status == DeliveryStatus.FAILED  # untouched

    assert deliverer.resend(theirs.id, None).status == DeliveryStatus.PENDING  # an operator
    assert deliverer.resend(theirs.id, other.account_id).status == DeliveryStatus.PENDING


# -- what a business system sees ------------------------------------------------------------


def test_job_result_of_an_escalated_job_shows_no_answer(
    sqlite_engine: Engine, account_id: str
) -> None:
    job = finished_job(sqlite_engine, account_id, None, status=JobStatus.ESCALATED)
    assert job.answer  # the draft is kept for the reviewer ...
    result = job_result(job)
    assert result["status"] == "escalated"
    assert result["answer"] is None  # ... but not shown
    assert result["citations"] == []
    assert result["decided_by"] is None
    json.dumps(result)  # serialisable as the webhook body


def test_job_result_of_an_answered_job_shows_answer_and_citations(
    sqlite_engine: Engine, account_id: str
) -> None:
    job = finished_job(sqlite_engine, account_id, None)
    result = job_result(job)
    assert result["id"] == job.id
    assert result["status"] == "answered"
    assert result["answer"] == "Employees get 25 days of annual leave [1]."
    assert result["citations"] == CITATIONS
    assert result["confidence"] == 0.9
    assert result["decided_by"] == "model"
    assert result["user_id"] == "u1" and result["feature"] == "handbook"
    assert result["finished_at"] is not None
    json.dumps(result)


def test_job_result_of_a_model_rejection_hides_the_answer(
    sqlite_engine: Engine, account_id: str
) -> None:
    job = finished_job(sqlite_engine, account_id, None, status=JobStatus.REJECTED)
    result = job_result(job)
    assert result["status"] == "rejected"
    assert result["answer"] is None
    assert result["citations"] == []
