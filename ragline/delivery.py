"""Webhook delivery: the deliverer sends the outbox rows (models.Delivery) written with each
final result, signed as Standard Webhooks define, at least once.

Each row is leased with a compare-and-set on its attempt count before it is sent, so two
deliverers never send the same attempt; a crash after sending and before recording means
one more delivery with the same `webhook-id`, which receivers de-duplicate. 2xx is success;
408, 429, 5xx, timeouts and connection errors are retried with exponential backoff up to
max_attempts; any other status, or a callback URL that became unacceptable, fails at once.
A failed delivery stays visible and an operator can send it again.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import httpx
import structlog
from sqlalchemy import insert, update
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from ragline import audit, metrics
from ragline.audit import SYSTEM, Actor
from ragline.background import BackgroundLoop
from ragline.config import Deliveries
from ragline.errors import DatabaseUnavailable, InvalidInput, NotFound
from ragline.models import Account, Delivery, DeliveryStatus, Job, JobStatus, utcnow
from ragline.rows import table, values
from ragline.webhooks import check_callback_url, headers

log = structlog.get_logger("ragline.delivery")

RETRYABLE = frozenset({408, 425, 429})
RECONNECT_S = 0.5  # how often a leased attempt tries the database again while it is down


def result_delivery(job: Job, status: str) -> Delivery:
    """The outbox row for a job's final result (the job asked for a callback)."""
    assert job.callback_url is not None
    return Delivery(
        id=f"msg_{uuid.uuid4().hex}",
        job_id=job.id,
        account_id=job.account_id,
        url=job.callback_url,
        event=f"job.{status}",
    )


def schedule_result(connection: Connection, job: Job, status: str) -> None:
    """The outbox row for a final result, when the job asked for a callback, written in
    the caller's transaction (the worker's outcome): a result never misses its callback."""
    if job.callback_url:
        connection.execute(insert(table(Delivery)), values(result_delivery(job, status)))


def add_result_delivery(session: Session, job: Job, status: str) -> None:
    """The same in a session's transaction (a reviewer's decision)."""
    if job.callback_url:
        session.add(result_delivery(job, status))


T = TypeVar("T")


def job_result(job: Job) -> dict[str, Any]:
    """What a business system receives (and what GET /v1/jobs/{id} shows) for a job."""
    delivered = job.status == JobStatus.ANSWERED or (
        job.status == JobStatus.REJECTED
        and (job.decided_by or "").startswith(("reviewer", "system"))
    )
    return {
        "id": job.id,
        "status": job.status,
        "reason": job.reason,
        "detail": job.error,
        "answer": job.answer if delivered else None,
        "citations": job.citations if job.status == JobStatus.ANSWERED else [],
        "confidence": job.confidence,
        "decided_by": job.decided_by,
        "user_id": job.user_id,
        "feature": job.feature,
        "metadata": job.meta,
        "versions": {
            "prompt_version": job.prompt_version,
            "model_id": job.model_id,
            "index_version": job.index_version,
        },
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def backoff(config: Deliveries, attempts: int) -> float:
    return float(min(config.max_retry_s, config.first_retry_s * 2 ** max(0, attempts - 1)))


class Deliverer:
    def __init__(
        self, engine: Engine, config: Deliveries, client: httpx.Client | None = None
    ) -> None:
        self.engine = engine
        self.config = config
        self._client = client
        self._loop = BackgroundLoop(
            "ragline-deliverer",
            config.poll_interval_ms / 1000,
            self.run_once,
            drain=True,  # a backlog is sent at once, not one row per interval
            join_timeout_s=config.timeout_s + 5,
        )

    @property
    def client(self) -> httpx.Client:
        """Made on first send: the API process only lists and re-queues deliveries."""
        if self._client is None:
            self._client = httpx.Client(follow_redirects=False)
        return self._client

    def run_once(self, limit: int = 20) -> int:
        """Send every due delivery (up to limit); returns how many attempts were made."""
        now = utcnow()
        with Session(self.engine) as session:
            due = session.exec(
                select(Delivery)
                .where(
                    col(Delivery.status) == DeliveryStatus.PENDING,
                    col(Delivery.next_attempt_at) <= now,
                )
                .order_by(col(Delivery.next_attempt_at))
                .limit(limit)
            ).all()
            leases = [(d.id, d.attempts) for d in due]
        sent = 0
        for delivery_id, attempts in leases:
            if self._lease(delivery_id, attempts):
                self._attempt(delivery_id)
                sent += 1
        return sent

    @property
    def _hold(self) -> timedelta:
        """How long a lease keeps other deliverers off a row: the send, plus a margin."""
        return timedelta(seconds=self.config.timeout_s + 30)

    def _lease(self, delivery_id: str, attempts: int) -> bool:
        hold = self._hold
        with Session(self.engine) as session:
            result = session.execute(
                update(Delivery)
                .where(
                    col(Delivery.id) == delivery_id,
                    col(Delivery.status) == DeliveryStatus.PENDING,
                    col(Delivery.attempts) == attempts,
                )
                .values(attempts=attempts + 1, next_attempt_at=utcnow() + hold)
            )
            session.commit()
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def _despite_outage(self, operation: Callable[[], T], until: float) -> T:
        """A leased attempt's database work, tried again while the database is unreachable
        and the lease holds. Given up, the row would wait out its lease before being sent
        (loading failed) or be sent twice (recording failed after sending)."""
        while True:
            try:
                return operation()
            except DatabaseUnavailable as error:
                if time.monotonic() >= until or self._loop.stopping.wait(RECONNECT_S):
                    raise
                log.warning("delivery_waiting_for_database", error=str(error))

    def _load(self, delivery_id: str) -> tuple[Delivery, Job, Account]:
        with Session(self.engine, expire_on_commit=False) as session:
            delivery = session.get(Delivery, delivery_id)
            assert delivery is not None
            job = session.get(Job, delivery.job_id)
            account = session.get(Account, delivery.account_id)
        assert job is not None and account is not None
        return delivery, job, account

    def _attempt(self, delivery_id: str) -> None:
        # The database work must fit in the lease with the send (timeout_s) after it.
        until = time.monotonic() + (self._hold.total_seconds() - self.config.timeout_s)
        delivery, job, account = self._despite_outage(lambda: self._load(delivery_id), until)
        with structlog.contextvars.bound_contextvars(
            job_id=job.id, delivery_id=delivery.id, attempt=delivery.attempts
        ):
            try:
                check_callback_url(delivery.url, allow_private=self.config.allow_private_targets)
            except InvalidInput as error:
                self._record(until, delivery, failed=True, code=None, error=str(error))
                return
            body = json.dumps(
                {
                    "type": delivery.event,
                    "timestamp": utcnow().isoformat(),
                    "data": job_result(job),
                },
                separators=(",", ":"),
            ).encode()
            signed = headers(signing_secrets(account), delivery.id, int(time.time()), body)
            try:
                response = self.client.post(
                    delivery.url, content=body, headers=signed, timeout=self.config.timeout_s
                )
            except httpx.HTTPError as error:
                self._record(until, delivery, failed=False, code=None, error=type(error).__name__)
                return
            except Exception as error:  # e.g. httpx.InvalidURL: sending again cannot help
                self._record(until, delivery, failed=True, code=None, error=type(error).__name__)
                return
            code = response.status_code
            if 200 <= code < 300:
                self._record(until, delivery, delivered=True, code=code)
            else:
                retry = code >= 500 or code in RETRYABLE
                self._record(until, delivery, failed=not retry, code=code, error=f"HTTP {code}")

    def _record(
        self,
        until: float,
        delivery: Delivery,
        *,
        delivered: bool = False,
        failed: bool = False,
        code: int | None,
        error: str | None = None,
    ) -> None:
        out_of_attempts = delivery.attempts >= self.config.max_attempts
        if delivered:
            values: dict[str, Any] = {"status": DeliveryStatus.DELIVERED, "delivered_at": utcnow()}
        elif failed or out_of_attempts:
            values = {"status": DeliveryStatus.FAILED}
        else:
            wait = backoff(self.config, delivery.attempts)
            values = {"next_attempt_at": utcnow() + timedelta(seconds=wait)}
        values.update(last_status_code=code, last_error=error)

        def store() -> None:
            with Session(self.engine) as session:
                session.execute(
                    update(Delivery)
                    .where(
                        col(Delivery.id) == delivery.id,
                        col(Delivery.attempts) == delivery.attempts,
                    )
                    .values(**values)
                )
                session.commit()

        self._despite_outage(store, until)
        metrics.WEBHOOK_ATTEMPTS.labels(
            "delivered" if delivered else "failed" if "status" in values else "retry"
        ).inc()
        log.info(
            "webhook_attempt",
            status=str(values.get("status", "retry")),
            status_code=code,
            error=error,
        )

    # -- operators -------------------------------------------------------------------------

    def list(
        self, account_id: str | None, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Delivery]:
        query = select(Delivery)
        if account_id is not None:
            query = query.where(col(Delivery.account_id) == account_id)
        if status is not None:
            query = query.where(col(Delivery.status) == status)
        with Session(self.engine) as session:
            return list(
                session.exec(
                    query.order_by(col(Delivery.created_at).desc()).limit(limit).offset(offset)
                )
            )

    def resend(self, delivery_id: str, account_id: str | None, actor: Actor = SYSTEM) -> Delivery:
        """Send a delivery again from attempt one (same webhook-id)."""
        with Session(self.engine, expire_on_commit=False) as session:
            delivery = session.get(Delivery, delivery_id)
            if delivery is None or (account_id is not None and delivery.account_id != account_id):
                raise NotFound(f"delivery {delivery_id} not found")
            audit.append(
                session,
                actor,
                "delivery.resend",
                f"delivery:{delivery_id}",
                account_id=delivery.account_id,
                before={"status": delivery.status, "attempts": delivery.attempts},
            )
            delivery.status = DeliveryStatus.PENDING
            delivery.attempts = 0
            delivery.next_attempt_at = utcnow()
            session.add(delivery)
            session.commit()
            return delivery

    # -- background ------------------------------------------------------------------------

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()


def signing_secrets(account: Account) -> list[str]:
    """The current secret, and the rotated-out one while its overlap lasts."""
    secrets_in_use = [account.webhook_secret]
    until = account.previous_secret_until
    if account.previous_webhook_secret and until is not None and utcnow() < until:
        secrets_in_use.append(account.previous_webhook_secret)
    return secrets_in_use
