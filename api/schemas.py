"""Response bodies of the public API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from ragline import provenance
from ragline.config import Money
from ragline.delivery import job_result
from ragline.models import (
    PRIORITIES,
    ApiKey,
    AuditEntry,
    Decision,
    Delivery,
    Job,
    JobStatus,
    ReviewItem,
    ReviewStatus,
    Role,
    utcnow,
)
from ragline.pipeline.validate import NOT_STORABLE, storable


def _storable(value: str) -> str:
    # PostgreSQL text takes no NUL and neither database an unpaired surrogate: such a
    # string would be a 500 where it is stored or looked up.
    if not storable(value):
        raise ValueError(NOT_STORABLE)
    return value


# A string of a request body that reaches the database.
Text = Annotated[str, AfterValidator(_storable)]


class JobAccepted(BaseModel):
    id: str
    status: str
    created_at: datetime
    links: dict[str, str]


class Citation(BaseModel):
    number: int
    document_id: str
    chunk_id: str
    title: str
    score: float


class Versions(BaseModel):
    prompt_version: str | None
    model_id: str | None
    index_version: str | None
    scorer_version: str | None = None

    @classmethod
    def of(cls, job: Job) -> Versions:
        """The versions that produced (or were to produce) the job's answer and routed it."""
        return cls(**provenance.Versions.of(job).as_dict())


class CacheView(BaseModel):
    """Whether the answer came from the answer cache, and from which job's final answer."""

    hit: bool
    source_job: str | None = None
    reviewed: bool = False  # the source's answer was approved or edited by a reviewer

    @classmethod
    def of(cls, job: Job) -> CacheView:
        if job.cached_from is None:
            return cls(hit=False)
        reviewed = bool(job.confidence_inputs.get("cache", {}).get("reviewed"))
        return cls(hit=True, source_job=job.cached_from, reviewed=reviewed)


class JobView(BaseModel):
    id: str
    status: str = Field(description=" | ".join(JobStatus))
    reason: str | None
    detail: str | None
    user_id: str | None
    feature: str | None
    metadata: dict[str, Any]
    answer: str | None
    citations: list[Citation]
    confidence: float | None
    # "model", "cache", "reviewer:<key name>" or "system:sla" once the job is final.
    decided_by: str | None
    cache: CacheView
    versions: Versions
    stage_timings_ms: dict[str, float]
    # Per stage (input, passages, output): placeholder counts and policy verdicts by rule id.
    guardrails: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None
    deadline_at: datetime

    @classmethod
    def of(cls, job: Job) -> JobView:
        answered = job.status == JobStatus.ANSWERED
        return cls(
            id=job.id,
            status=job.status,
            reason=job.reason,
            detail=job.error,
            user_id=job.user_id,
            feature=job.feature,
            metadata=job.meta,
            # Only a delivered answer is shown; an escalated job's draft is for reviewers.
            answer=job_result(job)["answer"],
            decided_by=job.decided_by,
            cache=CacheView.of(job),
            citations=[Citation(**c) for c in job.citations] if answered else [],
            confidence=job.confidence,
            versions=Versions.of(job),
            stage_timings_ms=job.stage_timings,
            guardrails=job.guardrails,
            created_at=job.created_at,
            finished_at=job.finished_at,
            deadline_at=job.deadline_at,
        )


class JobList(BaseModel):
    items: list[JobView]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null when nothing follows. A page "
        "may hold fewer than `limit` jobs (even none) while more follow"
    )
    limit: int


class TraceSpan(BaseModel):
    name: str
    start: datetime
    duration_ms: float | None  # None while the step is still going on
    outcome: str  # ok | error | pending | failed
    attributes: dict[str, Any]


class TraceView(BaseModel):
    job_id: str
    status: str
    versions: Versions
    spans: list[TraceSpan]


class Claim(BaseModel):
    by: str | None
    until: datetime | None


class ReviewView(BaseModel):
    id: int
    job_id: str
    reason: str
    detail: str | None
    status: str  # open | claimed | decided (an expired claim reads open)
    priority: Literal["low", "normal", "high"]
    created_at: datetime
    due_at: datetime | None
    overdue: bool
    sla_breached: bool
    claim: Claim | None
    question: str
    feature: str | None
    draft_answer: str | None
    draft_citations: list[Citation]
    confidence: float | None
    # The formula's inputs and each draft sentence's grounding (unsupported ones flagged).
    confidence_inputs: dict[str, Any]
    guardrails: dict[str, Any]
    passages: list[dict[str, Any]]
    versions: Versions
    decision: str | None
    final_answer: str | None
    reason_code: str | None
    note: str | None
    decided_by: str | None
    decided_at: datetime | None

    @classmethod
    def of(cls, item: ReviewItem, job: Job) -> ReviewView:
        assert item.id is not None
        now = utcnow()
        live = item.claim_live(now)
        status = (
            ReviewStatus.OPEN if item.status == ReviewStatus.CLAIMED and not live else item.status
        )
        priority = {v: k for k, v in PRIORITIES.items()}.get(item.priority, "normal")
        return cls(
            id=item.id,
            job_id=job.id,
            reason=item.reason,
            detail=job.error,
            status=status,
            priority=priority,
            created_at=item.created_at,
            due_at=item.due_at,
            overdue=item.due_at is not None and item.due_at < now and status != "decided",
            sla_breached=item.sla_breached,
            claim=Claim(by=item.claimed_by_name, until=item.claim_expires_at) if live else None,
            question=job.question,
            feature=job.feature,
            draft_answer=item.draft_answer,
            draft_citations=[Citation(**c) for c in job.citations],
            confidence=job.confidence,
            confidence_inputs=job.confidence_inputs,
            guardrails=job.guardrails,
            passages=job.passages,
            versions=Versions.of(job),
            decision=item.decision,
            final_answer=item.final_answer,
            reason_code=item.reason_code,
            note=item.note,
            decided_by=item.decided_by,
            decided_at=item.decided_at,
        )


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Decision
    answer: Text | None = Field(default=None, max_length=20_000)
    reason_code: Text | None = Field(default=None, max_length=32)
    note: Text | None = Field(default=None, max_length=4_000)


class DeliveryView(BaseModel):
    id: str  # the webhook-id
    job_id: str
    url: str
    event: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryView:
        pending = delivery.status == "pending"
        return cls(
            id=delivery.id,
            job_id=delivery.job_id,
            url=delivery.url,
            event=delivery.event,
            status=delivery.status,
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at if pending else None,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            created_at=delivery.created_at,
            delivered_at=delivery.delivered_at,
        )


class DeliveryList(BaseModel):
    items: list[DeliveryView]
    limit: int
    offset: int


class WebhookSecret(BaseModel):
    account: str
    secret: str
    # After a rotation: until when deliveries also carry the old secret's signature.
    previous_valid_until: datetime | None = None


class ReviewList(BaseModel):
    items: list[ReviewView]
    limit: int
    offset: int


class Health(BaseModel):
    status: str
    mode: str
    components: dict[str, dict[str, str]]
    queue: dict[str, int | str]


class UsageRow(BaseModel):
    key: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost: float
    cost_micros: int


class UsageReport(BaseModel):
    group_by: str
    start: datetime | None
    end: datetime | None
    rows: list[UsageRow]
    total: UsageRow


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text = Field(min_length=1, max_length=64)


class AccountView(BaseModel):
    id: str
    name: str
    created_at: datetime


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account: Text = Field(min_length=1, max_length=64)
    roles: list[Role] = Field(min_length=1)
    groups: list[Text] = Field(default_factory=lambda: ["everyone"], max_length=100)
    name: Text = Field("", max_length=128)
    expires_at: AwareDatetime | None = None


class KeyView(BaseModel):
    id: str
    account: str
    name: str
    roles: list[str]
    groups: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None = Field(
        description="when the key last authenticated (to the minute); null if never"
    )

    @classmethod
    def of(cls, key: ApiKey, account: str) -> KeyView:
        return cls(
            id=key.id,
            account=account,
            name=key.name,
            roles=key.roles,
            groups=key.groups,
            created_at=key.created_at,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
            last_used_at=key.last_used_at,
        )


class IssuedKeyView(KeyView):
    key: str = Field(description="the secret key; shown this once, never again")


class BudgetSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: Literal["account", "feature"]
    account: Text = Field(min_length=1, max_length=64)
    feature: Text | None = Field(None, min_length=1, max_length=255)
    window: Literal["daily", "monthly"]
    limit: Money | None = Field(description="null removes the override (config applies)")


class BudgetView(BaseModel):
    scope: str
    subject: str
    window: str
    period: str
    limit: float | None
    spent: float
    reserved: float


class AuditEntryView(BaseModel):
    seq: int
    at: datetime
    actor: str = Field(description="key:<id>, operator:<os user> or system:<component>")
    actor_key_id: str | None
    account_id: str | None
    action: str
    target: str
    request_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryView:
        return cls(**entry.model_dump())


class AuditList(BaseModel):
    items: list[AuditEntryView]
    next_cursor: str | None = Field(description="pass as cursor for the next (older) page")


class ErasureView(BaseModel):
    user_id: str
    user_ref: str = Field(description="how the audit trail names this person")
    accounts: list[str]
    jobs: int
    review_items: int
    deliveries: int
    eval_items: int = Field(description="evaluation items whose text was blanked")
    audit_seqs: list[int]
