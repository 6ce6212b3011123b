"""SQLModel tables: the database is the system of record; the queue is only transport."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from ragline import secret_box
from ragline.webhooks import new_secret


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, naive UTC in the database: SQLite has no time zones,
    and one representation on both backends keeps comparisons in SQL exact."""

    impl = DateTime()
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: ragline stores aware UTC times only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class SealedString(TypeDecorator[str]):
    """A secret encrypted at rest (ragline/secret_box.py): sealed when written, opened when
    read, so no repository ever handles its ciphertext."""

    impl = String(512)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else secret_box.ring().seal(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else secret_box.ring().open(value)


def _time(*, index: bool = False, default_now: bool = False) -> Any:
    if default_now:
        return Field(default_factory=utcnow, sa_type=UTCDateTime, index=index)
    return Field(default=None, sa_type=UTCDateTime, index=index)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    ANSWERED = "answered"
    ESCALATED = "escalated"
    REJECTED = "rejected"
    FAILED = "failed"
    CANCELLED = "cancelled"  # by a submitter while still queued: never run, owes no webhook

    @property
    def final(self) -> bool:
        return self not in (JobStatus.QUEUED, JobStatus.RUNNING)


class Role(StrEnum):
    SUBMITTER = "submitter"
    REVIEWER = "reviewer"
    INDEXER = "indexer"
    ADMIN = "admin"


class Account(SQLModel, table=True):
    """A tenant: its keys, jobs, reviews and spend are invisible to every other account."""

    __tablename__ = "accounts"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(unique=True, max_length=64)
    # Signs this account's webhooks (Standard Webhooks); shown and rotated by admins.
    # Encrypted at rest (SealedString).
    webhook_secret: str = Field(default_factory=new_secret, sa_type=SealedString)
    # After a rotation the old secret still signs deliveries (a second signature) until
    # this time, so receivers can switch over without failing any delivery.
    previous_webhook_secret: str | None = Field(default=None, sa_type=SealedString)
    previous_secret_until: datetime | None = _time()
    created_at: datetime = _time(default_now=True)


class ApiKey(SQLModel, table=True):
    """An API key: `rl_<id>_<secret>`. Only a hash of the secret is stored."""

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=16)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=32)
    name: str = Field(default="", max_length=128)
    secret_hash: str = Field(max_length=64)
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    groups: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    created_at: datetime = _time(default_now=True)
    expires_at: datetime | None = _time()
    revoked_at: datetime | None = _time()
    # Updated at most once a minute (ragline.accounts.LAST_USED_EVERY): a key nobody uses
    # any more shows as such, without a write per request.
    last_used_at: datetime | None = _time()


class PageSession(SQLModel, table=True):
    """A signed-in browser on the web pages (ragline/page_sessions.py). The id is the SHA-256
    of the cookie's token: the token itself is only in the browser."""

    __tablename__ = "page_sessions"

    id: str = Field(primary_key=True, max_length=64)
    key_id: str = Field(foreign_key="api_keys.id", index=True, max_length=16)
    csrf: str = Field(max_length=64)
    created_at: datetime = _time(default_now=True)
    last_seen_at: datetime = _time(default_now=True)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class Job(SQLModel, table=True):
    __tablename__ = "jobs"
    __table_args__ = (
        # Idempotency keys are the API key's own: another key of the account (perhaps with
        # fewer document groups) never gets this key's job back.
        UniqueConstraint("key_id", "idempotency_key", name="uq_jobs_key_idempotency"),
        # GET /v1/jobs: an account's jobs newest first, resumed from a (created_at, id) cursor.
        Index("ix_jobs_account_created_id", "account_id", "created_at", "id"),
    )

    id: str = Field(primary_key=True, max_length=32)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=32)
    key_id: str | None = Field(default=None, max_length=16)
    groups: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    idempotency_key: str | None = Field(default=None, max_length=255)
    request_hash: str = Field(max_length=64)
    request_id: str | None = Field(default=None, max_length=64)

    question: str = Field(sa_column=Column(Text, nullable=False))
    user_id: str | None = Field(default=None, max_length=255)
    feature: str | None = Field(default=None, max_length=255)
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column("metadata", JSON))
    priority: str = Field(default="normal", max_length=8)
    callback_url: str | None = Field(default=None, sa_column=Column(Text))
    # Who decided the final answer: "model", "reviewer:<name>" or "system:sla".
    decided_by: str | None = Field(default=None, max_length=255)
    # The request's `cache` (false: never answered from, nor stored in, the answer cache).
    use_cache: bool = True
    # The job whose answer this one was given from the answer cache (ragline/cache/).
    cached_from: str | None = Field(default=None, max_length=32)

    status: str = Field(default=JobStatus.QUEUED, index=True, max_length=16)
    reason: str | None = Field(default=None, max_length=32)
    error: str | None = Field(default=None, sa_column=Column(Text))
    answer: str | None = Field(default=None, sa_column=Column(Text))
    citations: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    confidence: float | None = None

    prompt_version: str | None = Field(default=None, max_length=128)
    model_id: str | None = Field(default=None, max_length=255)
    index_version: str | None = Field(default=None, max_length=64)
    # The decision scorer that routed the answer (ragline/decision/scorer.py): name@hash.
    scorer_version: str | None = Field(default=None, max_length=64)
    passages: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    stage_timings: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON))
    # What the guardrails found and did: redaction counts per stage, verdicts with rule ids.
    guardrails: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    # The confidence formula's inputs and the per-sentence grounding (pipeline/confidence.py).
    confidence_inputs: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    # The pipeline run as spans: {started_at, attempt, spans: [{name, start_ms, duration_ms,
    # outcome, attributes}]}; GET /v1/jobs/{id}/trace adds admission, review and delivery.
    trace: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    # A budget reservation not yet settled: released if this attempt dies (see budget.py).
    reservation: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True))
    )

    attempts: int = 0
    created_at: datetime = _time(index=True, default_now=True)
    updated_at: datetime = _time(default_now=True)
    deadline_at: datetime = Field(sa_type=UTCDateTime)
    dispatched_at: datetime | None = _time()
    started_at: datetime | None = _time()
    lease_expires_at: datetime | None = _time()
    finished_at: datetime | None = _time()


class ReviewStatus(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"  # while claim_expires_at is ahead; past it the item is open again
    DECIDED = "decided"


class Decision(StrEnum):
    APPROVE = "approve"  # deliver the draft
    EDIT = "edit"  # deliver the reviewer's answer
    REJECT = "reject"  # deliver the configured fallback answer, with a reason code
    GOOD = "good"  # sampled: the delivered answer was right
    BAD = "bad"  # sampled: it was wrong (a correction may be given)


PRIORITIES = {"low": 0, "normal": 1, "high": 2}


class ReviewItem(SQLModel, table=True):
    """One per escalated (or sampled) job: the reviewer's work item, and once decided, a
    labelled example (question, passages, draft, final answer, verdict)."""

    __tablename__ = "review_items"

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="jobs.id", unique=True, max_length=32)
    account_id: str = Field(default="", index=True, max_length=32)
    reason: str = Field(max_length=32)
    status: str = Field(default=ReviewStatus.OPEN, index=True, max_length=16)
    priority: int = 1  # PRIORITIES
    due_at: datetime | None = _time(index=True)
    sla_breached: bool = False
    draft_answer: str | None = Field(default=None, sa_column=Column(Text))
    claimed_by: str | None = Field(default=None, max_length=16)  # key id
    claimed_by_name: str | None = Field(default=None, max_length=255)
    claim_expires_at: datetime | None = _time()
    decision: str | None = Field(default=None, max_length=16)
    final_answer: str | None = Field(default=None, sa_column=Column(Text))
    reason_code: str | None = Field(default=None, max_length=32)
    note: str | None = Field(default=None, sa_column=Column(Text))
    decided_by: str | None = Field(default=None, max_length=255)
    decided_at: datetime | None = _time()
    created_at: datetime = _time(index=True, default_now=True)

    def claim_live(self, now: datetime) -> bool:
        """Someone holds it: claimed, and the claim has not run out (the Python twin of
        review._claim_is_live, for a row already loaded)."""
        return (
            self.status == ReviewStatus.CLAIMED
            and self.claim_expires_at is not None
            and self.claim_expires_at > now
        )


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class Delivery(SQLModel, table=True):
    """A webhook to send: the outbox row is written with the job's final state, in the same
    transaction, so no outcome is ever missed; its id is the stable `webhook-id`."""

    __tablename__ = "deliveries"

    id: str = Field(primary_key=True, max_length=40)  # msg_<hex>
    job_id: str = Field(foreign_key="jobs.id", index=True, max_length=32)
    account_id: str = Field(index=True, max_length=32)
    url: str = Field(sa_column=Column(Text, nullable=False))
    event: str = Field(max_length=32)  # job.answered | job.rejected | job.failed
    status: str = Field(default=DeliveryStatus.PENDING, index=True, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = _time(index=True, default_now=True)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = _time(default_now=True)
    delivered_at: datetime | None = _time()


class IndexVersion(SQLModel, table=True):
    """The manifest of one index build: collection kb_v{version} in the vector store."""

    __tablename__ = "index_versions"

    version: int = Field(primary_key=True)
    collection: str = Field(max_length=64)
    status: str = Field(default="building", max_length=16)
    source: str = Field(sa_column=Column(Text, nullable=False))
    source_checksum: str | None = Field(default=None, max_length=64)
    document_count: int = 0
    chunk_count: int = 0
    token_count: int = 0
    embedding_model: str = Field(max_length=255)
    embedding_dim: int
    chunker: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    base_version: int | None = None  # the version whose vectors this build could reuse
    reused_chunks: int = 0
    embedded_chunks: int = 0
    checks: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    built_by: str = Field(default="", max_length=255)
    error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = _time(default_now=True)
    finished_at: datetime | None = _time()
    duration_ms: float | None = None
    promoted_at: datetime | None = _time()


class CacheState(StrEnum):
    ANSWERED = "answered"  # answered by the model: served to equivalent questions
    PENDING = "pending"  # escalated, waiting for a reviewer: never served
    REVIEWED = "reviewed"  # approved or edited by a reviewer: canonical, served first
    REJECTED = "rejected"  # rejected by a reviewer: never served; equivalents escalate


class CacheEntry(SQLModel, table=True):
    """A job's final answer as the answer cache offers it to equivalent questions
    (ragline/cache/). The answer itself is read from the job (or `answer`, a reviewer's
    correction of a sampled answer), so an erased or deleted job is never served."""

    __tablename__ = "answer_cache"
    __table_args__ = (Index("ix_answer_cache_lookup", "account_id", "key", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="accounts.id", max_length=32)
    # A digest of (feature, prompt version, model, index version, scorer version): a new
    # version of any of them is a new key, so promote and rollback invalidate by construction.
    key: str = Field(max_length=64)
    job_id: str = Field(unique=True, max_length=32)
    question: str = Field(sa_column=Column(Text, nullable=False))
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    state: str = Field(default=CacheState.ANSWERED, max_length=16)
    answer: str | None = Field(default=None, sa_column=Column(Text))
    note: str | None = Field(default=None, sa_column=Column(Text))  # a rejecting reviewer's
    cost_micros: int = Field(default=0, sa_type=BigInteger)  # what the model call cost
    served: int = 0  # jobs answered from this entry
    created_at: datetime = _time(default_now=True)
    decided_at: datetime | None = _time()


class UsageRecord(SQLModel, table=True):
    """The usage ledger: one row per model call. Money is in micro-units (1e-6) of the
    price table's currency, as integers, so sums and caps are exact."""

    __tablename__ = "usage_records"

    id: int | None = Field(default=None, primary_key=True)
    # job: a call for an account's job. eval | replay: a call for an evaluation run or a
    # replay, which belong to no account (account_id null) and charge no account's budget.
    kind: str = Field(default="job", max_length=16)
    account_id: str | None = Field(
        default=None, foreign_key="accounts.id", index=True, max_length=32
    )
    feature: str = Field(default="", max_length=255)
    job_id: str = Field(index=True, max_length=32)
    model_id: str = Field(max_length=255)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_micros: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime = _time(index=True, default_now=True)


class BudgetCounter(SQLModel, table=True):
    """Spent and reserved money of one budget in one window, e.g.
    `account:acme:daily:2026-11-27`. Reservations change it with a single conditional
    UPDATE, so concurrent jobs can never push spent + reserved past the limit."""

    __tablename__ = "budget_counters"

    id: str = Field(primary_key=True, max_length=400)
    spent_micros: int = Field(default=0, sa_type=BigInteger)
    reserved_micros: int = Field(default=0, sa_type=BigInteger)
    updated_at: datetime = _time(default_now=True)


class BudgetLimit(SQLModel, table=True):
    """A limit set through the admin API; it overrides the config for its budget."""

    __tablename__ = "budget_limits"

    id: str = Field(primary_key=True, max_length=400)  # scope:subject:window
    limit_micros: int = Field(sa_type=BigInteger)
    updated_at: datetime = _time(default_now=True)
    updated_by: str = Field(default="", max_length=64)


class PromptVersion(SQLModel, table=True):
    """Every prompt template version a process has loaded, kept so that the version stored
    on a job can be shown and compared after the file has changed."""

    __tablename__ = "prompt_versions"

    version: str = Field(primary_key=True, max_length=128)  # name@sha256[:12]
    name: str = Field(index=True, max_length=100)
    content: str = Field(sa_column=Column(Text, nullable=False))
    first_seen_at: datetime = _time(default_now=True)


class IndexPromotion(SQLModel, table=True):
    """Every move of the alias: promotions, forced ones with their reason, and rollbacks."""

    __tablename__ = "index_promotions"

    id: int | None = Field(default=None, primary_key=True)
    version: int
    previous_version: int | None = None
    action: str = Field(max_length=16)  # promote | rollback
    forced: bool = False
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    by: str = Field(default="", max_length=255)
    at: datetime = _time(default_now=True)


class EvalRun(SQLModel, table=True):
    """One `ragline eval run`: what was evaluated (prompt, model, index, settings), the
    summary metrics and every item's result, so that runs can be compared and reported on
    long after the prompt file or the index has changed."""

    __tablename__ = "eval_runs"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(default="", max_length=255)
    dataset: str = Field(max_length=1000)
    dataset_hash: str = Field(max_length=64)
    complete: bool = True
    subject: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    items: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    note: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = _time(default_now=True, index=True)


class AuditEntry(SQLModel, table=True):
    """One change to the system, who made it and when (ragline.audit). Append-only: the
    database refuses UPDATE and DELETE, and each row's hash covers the previous row's, so a
    row edited or removed behind the database's back breaks the chain (`ragline audit
    verify`). Holds no personal data: a user is named by a digest."""

    __tablename__ = "audit_entries"

    # 1, 2, 3 ... with no gaps: set by ragline.audit.append, never by a sequence.
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = _time(index=True, default_now=True)
    actor: str = Field(max_length=300)  # key:<id> | operator:<os user> | system:<component>
    actor_key_id: str | None = Field(default=None, index=True, max_length=16)
    account_id: str | None = Field(default=None, index=True, max_length=32)
    action: str = Field(index=True, max_length=64)  # e.g. key.revoke, index.promote
    target: str = Field(default="", max_length=300)
    request_id: str | None = Field(default=None, max_length=64)
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


# The database refuses to change or remove an entry. The migration that created the table
# (0003) installs the same triggers on databases that were upgraded.
_APPEND_ONLY = {
    "postgresql": [
        "CREATE OR REPLACE FUNCTION ragline_audit_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION 'audit_entries is append-only'; END $$",
        "CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries "
        "FOR EACH ROW EXECUTE FUNCTION ragline_audit_append_only()",
    ],
    "sqlite": [
        "CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries "
        "BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END",
        "CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries "
        "BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END",
    ],
}
for _dialect, _statements in _APPEND_ONLY.items():
    for _statement in _statements:
        event.listen(
            AuditEntry.__table__,  # type: ignore[attr-defined]
            "after_create",
            DDL(_statement).execute_if(dialect=_dialect),  # type: ignore[no-untyped-call]
        )


class AuditHead(SQLModel, table=True):
    """The chain's newest entry, one row: appending locks it, so entries from any number of
    processes form one chain; verify compares it with the last entry (a truncated tail)."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int = 0
    hash: str = Field(max_length=64)
