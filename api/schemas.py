"""Response bodies of the public API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ragline.models import ApiKey, Job, JobStatus, ReviewItem, Role


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

    @classmethod
    def of(cls, job: Job) -> Versions:
        """The triple that produced (or was to produce) the job's answer."""
        return cls(
            prompt_version=job.prompt_version,
            model_id=job.model_id,
            index_version=job.index_version,
        )


class JobView(BaseModel):
    id: str
    status: str
    reason: str | None
    detail: str | None
    user_id: str | None
    feature: str | None
    metadata: dict[str, Any]
    answer: str | None
    citations: list[Citation]
    confidence: float | None
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
            answer=job.answer if answered else None,
            citations=[Citation(**c) for c in job.citations] if answered else [],
            confidence=job.confidence,
            versions=Versions.of(job),
            stage_timings_ms=job.stage_timings,
            guardrails=job.guardrails,
            created_at=job.created_at,
            finished_at=job.finished_at,
            deadline_at=job.deadline_at,
        )


class ReviewView(BaseModel):
    id: int
    job_id: str
    reason: str
    status: str
    created_at: datetime
    question: str
    feature: str | None
    draft_answer: str | None
    draft_citations: list[Citation]
    confidence: float | None
    # The formula's inputs and each draft sentence's grounding (unsupported ones flagged).
    confidence_inputs: dict[str, Any]
    guardrails: dict[str, Any]
    detail: str | None
    passages: list[dict[str, Any]]
    versions: Versions

    @classmethod
    def of(cls, item: ReviewItem, job: Job) -> ReviewView:
        assert item.id is not None
        return cls(
            id=item.id,
            job_id=job.id,
            reason=item.reason,
            status=item.status,
            created_at=item.created_at,
            question=job.question,
            feature=job.feature,
            draft_answer=job.answer,
            draft_citations=[Citation(**c) for c in job.citations],
            confidence=job.confidence,
            confidence_inputs=job.confidence_inputs,
            guardrails=job.guardrails,
            detail=job.error,
            passages=job.passages,
            versions=Versions.of(job),
        )


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
    name: str = Field(min_length=1, max_length=64)


class AccountView(BaseModel):
    id: str
    name: str
    created_at: datetime


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account: str = Field(min_length=1, max_length=64)
    roles: list[Role] = Field(min_length=1)
    groups: list[str] = Field(default_factory=lambda: ["everyone"], max_length=100)
    name: str = Field("", max_length=128)
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
        )


class IssuedKeyView(KeyView):
    key: str = Field(description="the secret key; shown this once, never again")


class BudgetSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: Literal["account", "feature"]
    account: str = Field(min_length=1, max_length=64)
    feature: str | None = Field(None, min_length=1, max_length=255)
    window: Literal["daily", "monthly"]
    limit: float | None = Field(ge=0, description="null removes the override (config applies)")


class BudgetView(BaseModel):
    scope: str
    subject: str
    window: str
    period: str
    limit: float | None
    spent: float
    reserved: float
