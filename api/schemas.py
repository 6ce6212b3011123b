"""Response bodies of the public API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from ragline.models import Job, JobStatus, ReviewItem


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
            versions=Versions(
                prompt_version=job.prompt_version,
                model_id=job.model_id,
                index_version=job.index_version,
            ),
            stage_timings_ms=job.stage_timings,
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
            passages=job.passages,
            versions=Versions(
                prompt_version=job.prompt_version,
                model_id=job.model_id,
                index_version=job.index_version,
            ),
        )


class ReviewList(BaseModel):
    items: list[ReviewView]
    limit: int
    offset: int


class Health(BaseModel):
    status: str
    mode: str
    components: dict[str, dict[str, str]]
