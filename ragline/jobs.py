"""The job repository: admission with idempotency, the status compare-and-set that makes
the actor idempotent, outcomes, listing and cancelling, and what the sweeper must send
again."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import structlog
from sqlalchemy import and_, bindparam, func, or_, update
from sqlalchemy import select as sql_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine, RowMapping
from sqlmodel import Session, col, select

from ragline import audit, delivery, review
from ragline.accounts import Principal
from ragline.audit import Actor
from ragline.budget import Reservation, Spending
from ragline.db import retry_stale
from ragline.errors import Conflict, InvalidInput, NotFound
from ragline.models import Account, Job, JobStatus, utcnow
from ragline.pipeline.validate import JobRequest, storable
from ragline.provenance import VERSION_FIELDS, Versions
from ragline.reasons import ReviewReason
from ragline.rows import from_row, table, values
from ragline.visibility import may_read

log = structlog.get_logger("ragline.jobs")


def request_hash(request: JobRequest, *, key_id: str = "", idempotency_key: str = "") -> str:
    """What a replay is compared on: the request as its client sent it, before redaction
    (two bodies that differ only in an e-mail address are different requests), as
    canonical JSON so key order and spacing do not matter. The key's id and idempotency key
    salt it: the stored digest of a body holding personal data cannot be matched against a
    table of guesses made once for every row."""
    body = request.model_dump()
    if body["cache"]:
        del body["cache"]  # the default: hashes of bodies stored before the field are unchanged
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    salted = "\0".join((key_id, idempotency_key, canonical))
    return hashlib.sha256(salted.encode("utf-8")).hexdigest()


# The worker's statements, built once: SQLAlchemy caches their compiled form, and Core skips
# the ORM's per-statement session work (see ragline/rows.py).
_JOBS = table(Job)
_CLAIM = (
    update(_JOBS)
    .where(
        _JOBS.c.id == bindparam("p_job_id"),
        or_(
            _JOBS.c.status == JobStatus.QUEUED.value,
            and_(
                _JOBS.c.status == JobStatus.RUNNING.value,
                _JOBS.c.lease_expires_at < bindparam("p_now"),
            ),
        ),
    )
    .values(
        status=JobStatus.RUNNING.value,
        attempts=_JOBS.c.attempts + 1,
        started_at=bindparam("p_now"),
        updated_at=bindparam("p_now"),
        lease_expires_at=bindparam("p_lease_until"),
        # A claimed job's message evidently arrived, whether or not the dispatcher has
        # recorded the send yet (it marks sends in batches).
        dispatched_at=func.coalesce(_JOBS.c.dispatched_at, bindparam("p_now")),
    )
    .returning(*_JOBS.c)
)
# Fencing: only the attempt that holds the job (running, same attempt number) may write.
_HELD = and_(
    _JOBS.c.id == bindparam("p_job_id"),
    _JOBS.c.status == JobStatus.RUNNING.value,
    _JOBS.c.attempts == bindparam("p_attempt"),
)
_FINISH = (
    update(_JOBS)
    .where(_HELD)
    .values(
        {
            name: bindparam(f"p_{name}")
            for name in (
                "status",
                "reason",
                "answer",
                "citations",
                "confidence",
                *VERSION_FIELDS,
                "passages",
                "stage_timings",
                "error",
                "guardrails",
                "confidence_inputs",
                "trace",
                "decided_by",
                "cached_from",
            )
        }
        | {
            "finished_at": bindparam("p_now"),
            "updated_at": bindparam("p_now"),
            "lease_expires_at": None,
        }
    )
)
_BY_KEY = sql_select(_JOBS).where(
    _JOBS.c.key_id == bindparam("p_key_id"),
    _JOBS.c.idempotency_key == bindparam("p_key"),
)
_DISPATCHED = (
    update(_JOBS)
    .where(
        _JOBS.c.id.in_(bindparam("p_job_ids", expanding=True)),
        _JOBS.c.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
    )
    .values(dispatched_at=bindparam("p_now"))
)
_RELEASE = (
    update(_JOBS)
    .where(_HELD)
    .values(status=JobStatus.QUEUED.value, lease_expires_at=None, updated_at=bindparam("p_now"))
)
# Cancelling races claiming on the same row: whichever UPDATE commits first changes the
# status, and the other's WHERE no longer matches (claim() returns None, cancel() Conflict).
_CANCEL = (
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("p_job_id"), _JOBS.c.status == JobStatus.QUEUED.value)
    .values(
        status=JobStatus.CANCELLED.value,
        error=bindparam("p_detail"),
        finished_at=bindparam("p_now"),
        updated_at=bindparam("p_now"),
        lease_expires_at=None,
    )
    .returning(*_JOBS.c)
)


def _admit_statement(dialect: str) -> Any:
    """The admission INSERT: a row the unique indexes refuse (the API key's idempotency
    key taken) is skipped, not an error; RETURNING says whether it was stored."""
    dialect_insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return dialect_insert(_JOBS).on_conflict_do_nothing().returning(_JOBS.c.id)


@cache
def _job_defaults() -> dict[str, Any]:
    blank = Job(id="", account_id="", request_hash="", question="", deadline_at=utcnow())
    return values(blank)


def _blank_job() -> dict[str, Any]:
    """Every column of a new job with its default, so the admission's row names them all
    and a Job is built from it without pydantic's default factories (slow, per call)."""
    return {
        column: type(value)() if isinstance(value, list | dict) else value
        for column, value in _job_defaults().items()
    }


@dataclass(frozen=True)
class Outcome:
    """What a finished pipeline run stores on its job."""

    status: JobStatus
    reason: str | None = None
    answer: str | None = None
    citations: list[dict[str, Any]] = field(default_factory=list)
    confidence: float | None = None
    prompt_version: str | None = None
    model_id: str | None = None
    index_version: str | None = None
    scorer_version: str | None = None
    passages: list[dict[str, Any]] = field(default_factory=list)
    stage_timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    guardrails: dict[str, Any] = field(default_factory=dict)
    confidence_inputs: dict[str, Any] = field(default_factory=dict)
    trace: dict[str, Any] = field(default_factory=dict)
    # The job whose final answer this one was given (the answer cache, ragline/cache/).
    cached_from: str | None = None
    # Not stored on the job: what the answer cache files the outcome under.
    question_vector: Any = field(default=None, repr=False, compare=False)
    cache_key: str | None = None


def _decided_by(outcome: Outcome) -> str | None:
    if outcome.status == JobStatus.ESCALATED:
        return None  # a reviewer decides
    return "cache" if outcome.cached_from else "model"


@dataclass(frozen=True)
class Claim:
    """A worker's right to run one attempt of a job until the lease expires."""

    job: Job
    attempt: int


MAX_PAGE = 200
# A listing reads at most this many batches of limit + 1 rows per page: a key that may read
# few of its account's jobs gets short (even empty) pages with a cursor, never a long scan.
SCAN_BATCHES = 5
_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,512}")  # urlsafe base64, unpadded
_BAD_CURSOR = "cursor is not one this API issued: pass next_cursor from the last page as it is"


@dataclass(frozen=True)
class Position:
    """Where a listing stopped: the last job it looked at, in (created_at, id) order. Sent
    to clients as an opaque cursor (urlsafe base64 of JSON); an altered one that still
    decodes is merely another position, since every page applies scope and filters again."""

    created_at: datetime
    id: str

    def encode(self) -> str:
        data = {"v": 1, "at": self.created_at.isoformat(), "id": self.id}
        text = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(text).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> Position:
        """The position a cursor names; InvalidInput (field `cursor`) for anything else."""
        if not _CURSOR.fullmatch(cursor):
            raise InvalidInput(_BAD_CURSOR, field="cursor")
        try:
            data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            if not isinstance(data, dict) or set(data) != {"v", "at", "id"} or data["v"] != 1:
                raise ValueError("unknown shape")
            at, job_id = data["at"], data["id"]
            if not isinstance(at, str) or not isinstance(job_id, str):
                raise ValueError("not text")
            created_at = datetime.fromisoformat(at)
            if created_at.tzinfo is None:
                raise ValueError("naive time")
            created_at = created_at.astimezone(UTC)
        except (ValueError, binascii.Error, OverflowError):
            raise InvalidInput(_BAD_CURSOR, field="cursor") from None
        if not 1 <= len(job_id) <= 32 or not storable(job_id):
            raise InvalidInput(_BAD_CURSOR, field="cursor")
        return cls(created_at, job_id)


def parse_statuses(values: list[str]) -> frozenset[JobStatus]:
    """Status names, each value one name or several separated by commas; blanks ignored."""
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - {status.value for status in JobStatus})
    if unknown:
        known = ", ".join(JobStatus)
        raise InvalidInput(f"unknown status {', '.join(unknown)}: one of {known}", field="status")
    return frozenset(JobStatus(name) for name in names)


@dataclass(frozen=True)
class JobFilter:
    """What a listing keeps: any of the statuses (none given: all), exact feature and
    user_id, created in [created_after, created_before)."""

    statuses: frozenset[JobStatus] = frozenset()
    feature: str | None = None
    user_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def __post_init__(self) -> None:
        after, before = self.created_after, self.created_before
        if after is not None and before is not None and after > before:
            raise InvalidInput(
                f"created_after ({after.isoformat()}) is later than created_before "
                f"({before.isoformat()})",
                field="created_after",
            )

    def conditions(self, account_id: str | None) -> list[Any]:
        found: list[Any] = []
        if account_id is not None:
            found.append(_JOBS.c.account_id == account_id)
        if self.statuses:
            found.append(_JOBS.c.status.in_(sorted(status.value for status in self.statuses)))
        if self.feature is not None:
            found.append(_JOBS.c.feature == self.feature)
        if self.user_id is not None:
            found.append(_JOBS.c.user_id == self.user_id)
        if self.created_after is not None:
            found.append(_JOBS.c.created_at >= self.created_after)
        if self.created_before is not None:
            found.append(_JOBS.c.created_at < self.created_before)
        return found


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    next: Position | None  # None: nothing follows


def _visible(job: Job, account_id: str | None, reader: Principal | None) -> bool:
    """In the account (if one is given) and readable by the reader (if one is given)."""
    if account_id is not None and job.account_id != account_id:
        return False
    return reader is None or may_read(reader, job)


def _older_than(position: Position) -> Any:
    return or_(
        _JOBS.c.created_at < position.created_at,
        and_(_JOBS.c.created_at == position.created_at, _JOBS.c.id < position.id),
    )


class JobRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # For single statements: each its own transaction, no BEGIN/COMMIT round trips.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._admit = _admit_statement(engine.dialect.name)
        self._account_names: dict[str, str] = {}

    def submit(
        self,
        request: JobRequest,
        *,
        account_id: str,
        deadline: timedelta,
        key_id: str | None = None,
        groups: tuple[str, ...] = ("everyone",),
        idempotency_key: str | None = None,
        sent_hash: str | None = None,
        request_id: str | None = None,
        guardrails: dict[str, Any] | None = None,
    ) -> tuple[Job, bool]:
        """Store a new queued job; return (job, created). A replayed key returns the first
        job (Conflict if it was for another body). Idempotency keys are per API key: another
        key, even of the same account and with other document groups, never gets this key's
        job back. request is as admitted (its question already redacted); sent_hash is
        request_hash of the request before redaction (the request itself when None);
        guardrails is what admission's redaction recorded.

        One statement, one round trip: INSERT … ON CONFLICT DO NOTHING RETURNING. When the
        key's unique index refuses the row (a replay, or two requests racing with one key)
        the job holding the key is read; that is the replay path only."""
        if idempotency_key is not None and not key_id:
            raise ValueError("an idempotency key is scoped by the API key: key_id is required")
        digest = (
            ""
            if idempotency_key is None
            else sent_hash
            or request_hash(request, key_id=key_id or "", idempotency_key=idempotency_key)
        )
        now = utcnow()
        row = {
            **_blank_job(),
            "id": uuid.uuid4().hex,
            "account_id": account_id,
            "key_id": key_id,
            "groups": list(groups),
            "idempotency_key": idempotency_key,
            "request_hash": digest,
            "request_id": request_id,
            "question": request.question,
            "user_id": request.user_id,
            "feature": request.feature,
            "metadata": dict(request.metadata),
            "priority": request.priority,
            "callback_url": request.callback_url,
            "use_cache": request.cache,
            "guardrails": dict(guardrails or {}),
            "created_at": now,
            "updated_at": now,
            "deadline_at": now + deadline,
        }

        def insert() -> bool:
            # Autocommit: one statement is its own transaction, without BEGIN and COMMIT
            # round trips. Safe to run again (retry_stale): a repeat with a key meets the
            # unique index and reads the job back as a replay.
            with self._autocommit.connect() as connection:
                return connection.execute(self._admit, row).first() is not None

        if retry_stale(insert):
            return from_row(Job, row), True
        existing = (
            None
            if idempotency_key is None or key_id is None
            else self._by_idempotency_key(key_id, idempotency_key)
        )
        if existing is None:  # no key, so only the random id could clash: never expected
            raise Conflict("the job could not be stored (its id was taken); submit it again")
        return self._replay(existing, digest), False

    def replay(self, key_id: str, idempotency_key: str, sent_hash: str) -> Job | None:
        """The job this API key's idempotency key already made (Conflict if it was for
        another body: sent_hash is request_hash of the request as sent), or None."""
        existing = self._by_idempotency_key(key_id, idempotency_key)
        return None if existing is None else self._replay(existing, sent_hash)

    @staticmethod
    def _replay(existing: Job, digest: str) -> Job:
        if existing.request_hash != digest:
            raise Conflict("Idempotency-Key was already used with a different request body")
        return existing

    def _by_idempotency_key(self, key_id: str, key: str) -> Job | None:
        def read() -> RowMapping | None:
            with self._autocommit.connect() as connection:
                params = {"p_key_id": key_id, "p_key": key}
                return connection.execute(_BY_KEY, params).mappings().first()

        row = retry_stale(read)
        return None if row is None else from_row(Job, row)

    def get(
        self, job_id: str, account_id: str | None = None, *, reader: Principal | None = None
    ) -> Job:
        """The job; with account_id, only if it belongs to that account; with a reader, only
        if it may read it (its key's groups, ragline/visibility.py). Otherwise NotFound,
        exactly like a missing job, so ids cannot be probed."""
        job = retry_stale(lambda: self._get(job_id))
        if job is None or not _visible(job, account_id, reader):
            raise NotFound(f"job {job_id} not found")
        return job

    def _get(self, job_id: str) -> Job | None:
        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(Job, job_id)

    def page(
        self,
        account_id: str | None,
        filters: JobFilter = JobFilter(),
        limit: int = 50,
        after: Position | None = None,
        *,
        reader: Principal | None = None,
    ) -> JobPage:
        """Newest first, in (created_at, id) order, resuming after a position: a keyset,
        so jobs submitted while a client pages come ahead of its first page and never
        shift the pages still to read. With account_id, only that account's jobs; with a
        reader, only those it may read (as get): a page then holds fewer than `limit` (none
        when SCAN_BATCHES batches held nothing readable), and `next` still moves past every
        job looked at. `next` is None when nothing follows."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be 1 to {MAX_PAGE}", field="limit")
        query = sql_select(_JOBS).order_by(_JOBS.c.created_at.desc(), _JOBS.c.id.desc())
        for condition in filters.conditions(account_id):
            query = query.where(condition)
        batch = limit + 1  # one more than a page: a full page knows whether more follow
        found: list[Job] = []
        position = after
        with self.engine.connect() as connection:
            for _ in range(SCAN_BATCHES):
                scan = query if position is None else query.where(_older_than(position))
                rows = connection.execute(scan.limit(batch)).mappings().all()
                for row in rows:
                    if len(found) == limit:  # a job past the full page: more follow
                        return JobPage(found, position)
                    job = from_row(Job, row)
                    position = Position(job.created_at, job.id)
                    if reader is None or may_read(reader, job):
                        found.append(job)
                if len(rows) < batch:
                    return JobPage(found, None)
        return JobPage(found, position)

    def cancel(
        self,
        job_id: str,
        account_id: str | None = None,
        *,
        reader: Principal | None = None,
        budgets: Spending,
    ) -> Job:
        """Cancel a job that is still queued: it is final at once (finished_at set), no
        worker runs it (a claim matches queued jobs only, and whichever of the two UPDATEs
        commits first wins) and it owes no webhook. NotFound as get(); Conflict naming the
        status when the job is running or final. A budget reservation an earlier attempt
        left on it is given back."""
        detail = "cancelled while queued" + (f" by API key {reader.key_id}" if reader else "")
        job = self._cancel_queued(job_id, account_id, reader, detail)
        if job.reservation:
            budgets.release(Reservation.of(job.reservation), job.id)
        log.info("job_cancelled", job_id=job.id, key_id=reader.key_id if reader else None)
        return job

    def _cancel_queued(
        self, job_id: str, account_id: str | None, reader: Principal | None, detail: str
    ) -> Job:
        for _ in range(3):
            # The scope is checked on the row the UPDATE locked, and a job outside it rolls
            # back: no read ahead of the UPDATE that a worker's claim could slip past.
            with self.engine.begin() as connection:
                row = (
                    connection.execute(
                        _CANCEL, {"p_job_id": job_id, "p_detail": detail, "p_now": utcnow()}
                    )
                    .mappings()
                    .first()
                )
                if row is not None:
                    job = from_row(Job, row)
                    if not _visible(job, account_id, reader):
                        raise NotFound(f"job {job_id} not found")
                    actor = reader.actor if reader else Actor.system("ragline")
                    audit.append(
                        connection,
                        actor,
                        "job.cancel",
                        f"job:{job.id}",
                        account_id=job.account_id,
                        before={"status": JobStatus.QUEUED.value},
                        after={"status": job.status},
                    )
                    return job
            status = self.get(job_id, account_id, reader=reader).status
            if status != JobStatus.QUEUED:
                raise Conflict(f"job {job_id} is {status}: only a queued job can be cancelled")
            # Claimed and given back to the queue between the two statements: try again.
        raise Conflict(f"job {job_id} kept changing state; try again")

    def account_name(self, account_id: str) -> str:
        # Accounts are never renamed nor deleted, so a worker asks once per account, not
        # once per job (budgets are kept by account name).
        name = self._account_names.get(account_id)
        if name is not None:
            return name
        with Session(self.engine) as session:
            account = session.get(Account, account_id)
        if account is None:
            raise NotFound(f"account {account_id} not found")
        if len(self._account_names) < 100_000:
            self._account_names[account_id] = account.name
        return account.name

    def queue_depth(self) -> int:
        with Session(self.engine) as session:
            count = session.exec(
                select(func.count()).select_from(Job).where(col(Job.status) == JobStatus.QUEUED)
            ).one()
        return int(count)

    def mark_dispatched(self, *job_ids: str) -> None:
        """Record that these jobs' messages were sent (one statement for a batch)."""
        if not job_ids:
            return
        with self._autocommit.connect() as connection:
            connection.execute(_DISPATCHED, {"p_job_ids": list(job_ids), "p_now": utcnow()})

    def claim(self, job_id: str, lease: timedelta) -> Claim | None:
        """Compare-and-set queued (or running past its lease) → running. None: not ours."""
        return retry_stale(lambda: self._claim(job_id, lease))

    def _claim(self, job_id: str, lease: timedelta) -> Claim | None:
        now = utcnow()
        # One statement, its own transaction (autocommit: no BEGIN/COMMIT round trips). It
        # stays a durable commit: a claim lost in a crash would let another worker take the
        # same attempt number, and fencing by attempt would no longer tell the two apart.
        with self._autocommit.connect() as connection:
            row = (
                connection.execute(
                    _CLAIM, {"p_job_id": job_id, "p_now": now, "p_lease_until": now + lease}
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        job = from_row(Job, row)
        return Claim(job=job, attempt=job.attempts)

    def finish(
        self,
        claim: Claim,
        outcome: Outcome,
        *,
        review_due: datetime | None = None,
        sampled: bool = False,
    ) -> bool:
        """Store the outcome if this attempt still holds the job (fencing by attempt number).

        In the same transaction: the escalation's review item (due at review_due), a sampled
        answer's review item, and the webhook delivery of a final result, so an escalated
        job is never missing from the queue and a result never misses its callback.
        """
        now = utcnow()
        job = claim.job
        reviewed = outcome.status == JobStatus.ESCALATED or (
            sampled and outcome.status == JobStatus.ANSWERED
        )
        delivered = bool(job.callback_url) and outcome.status != JobStatus.ESCALATED
        # Most outcomes are the job's row alone: one autocommit statement, without the BEGIN
        # and COMMIT round trips a transaction costs.
        transaction = self.engine.begin() if reviewed or delivered else self._autocommit.connect()
        with transaction as connection:
            result = connection.execute(
                _FINISH,
                {
                    "p_job_id": job.id,
                    "p_attempt": claim.attempt,
                    "p_status": outcome.status,
                    "p_reason": outcome.reason,
                    "p_answer": outcome.answer,
                    "p_citations": outcome.citations,
                    "p_confidence": outcome.confidence,
                    **{f"p_{k}": v for k, v in Versions.of(outcome).as_dict().items()},
                    "p_passages": outcome.passages,
                    "p_stage_timings": outcome.stage_timings,
                    "p_error": outcome.error,
                    "p_guardrails": outcome.guardrails,
                    "p_confidence_inputs": outcome.confidence_inputs,
                    "p_trace": outcome.trace,
                    "p_decided_by": _decided_by(outcome),
                    "p_cached_from": outcome.cached_from,
                    "p_now": now,
                },
            )
            if result.rowcount != 1:  # another attempt holds the job: nothing was written
                return False
            if outcome.status == JobStatus.ESCALATED:
                review.open_item(
                    connection, job, outcome.reason or "unknown", outcome.answer, review_due, now
                )
            elif reviewed:
                review.open_item(
                    connection, job, ReviewReason.SAMPLED, outcome.answer, review_due, now
                )
            if delivered:
                # An escalated job waits for review; its result is delivered after the decision.
                delivery.schedule_result(connection, job, outcome.status)
        return True

    def escalate_overdue(
        self, *, grace: timedelta, review_due: datetime, limit: int = 200
    ) -> list[Job]:
        """Jobs `grace` past their deadline that no worker is finishing: still queued (no
        worker runs, or none took it) or running with an expired lease (the worker died).
        Each is escalated with reason `timeout` and put on the review queue, in one
        transaction per job; a job a worker finishes meanwhile is left as it finished.
        Returns the jobs escalated, as they were (their budget reservation, if any, is the
        caller's to release)."""
        now = utcnow()
        abandoned = and_(
            _JOBS.c.deadline_at < now - grace,
            or_(
                _JOBS.c.status == JobStatus.QUEUED.value,
                and_(
                    _JOBS.c.status == JobStatus.RUNNING.value,
                    _JOBS.c.lease_expires_at < now,
                ),
            ),
        )
        with self.engine.connect() as connection:
            rows = connection.execute(
                sql_select(_JOBS).where(abandoned).order_by(_JOBS.c.deadline_at).limit(limit)
            ).mappings()
            candidates = [from_row(Job, row) for row in rows]
        escalated = []
        for job in candidates:
            with self.engine.begin() as connection:
                changed = connection.execute(
                    update(_JOBS)
                    .where(_JOBS.c.id == job.id, _JOBS.c.status == job.status, abandoned)
                    .values(
                        status=JobStatus.ESCALATED.value,
                        reason=ReviewReason.TIMEOUT.value,
                        error=f"the deadline passed while the job was {job.status} "
                        "(no worker finished it)",
                        finished_at=now,
                        updated_at=now,
                        lease_expires_at=None,
                    )
                )
                if changed.rowcount != 1:  # a worker took or finished it meanwhile
                    continue
                review.open_item(connection, job, ReviewReason.TIMEOUT, None, review_due, now)
            escalated.append(job)
        return escalated

    def release(self, claim: Claim) -> None:
        """Give the job back to the queue (a transient failure); the next attempt claims it."""
        with self.engine.begin() as connection:
            connection.execute(
                _RELEASE,
                {"p_job_id": claim.job.id, "p_attempt": claim.attempt, "p_now": utcnow()},
            )

    def due_for_dispatch(
        self, *, requeue_after: timedelta, limit: int = 500, now: datetime | None = None
    ) -> list[str]:
        """Jobs whose message may be lost: queued and not sent recently, or running past
        their lease (the worker died)."""
        now = now or utcnow()
        stale = now - requeue_after
        with Session(self.engine) as session:
            rows = session.exec(
                select(Job.id)
                .where(
                    or_(
                        and_(
                            col(Job.status) == JobStatus.QUEUED,
                            or_(
                                col(Job.dispatched_at).is_(None),
                                col(Job.dispatched_at) < stale,
                            ),
                            col(Job.created_at) < now - timedelta(seconds=2),
                        ),
                        and_(
                            col(Job.status) == JobStatus.RUNNING,
                            col(Job.lease_expires_at) < now,
                            or_(
                                col(Job.dispatched_at).is_(None),
                                col(Job.dispatched_at) < stale,
                            ),
                        ),
                    )
                )
                .order_by(col(Job.created_at))
                .limit(limit)
            )
            return list(rows)
