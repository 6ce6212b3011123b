"""SQLModel tables: the database is the system of record; the queue is only transport."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


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

    @property
    def final(self) -> bool:
        return self not in (JobStatus.QUEUED, JobStatus.RUNNING)


class EscalationReason(StrEnum):
    LOW_CONFIDENCE = "low_confidence"
    TIMEOUT = "timeout"
    MODEL_ERROR = "model_error"


class Job(SQLModel, table=True):
    __tablename__ = "jobs"

    id: str = Field(primary_key=True, max_length=32)
    idempotency_key: str | None = Field(default=None, unique=True, max_length=255)
    request_hash: str = Field(max_length=64)
    request_id: str | None = Field(default=None, max_length=64)

    question: str = Field(sa_column=Column(Text, nullable=False))
    user_id: str | None = Field(default=None, max_length=255)
    feature: str | None = Field(default=None, max_length=255)
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column("metadata", JSON))

    status: str = Field(default=JobStatus.QUEUED, index=True, max_length=16)
    reason: str | None = Field(default=None, max_length=32)
    error: str | None = Field(default=None, sa_column=Column(Text))
    answer: str | None = Field(default=None, sa_column=Column(Text))
    citations: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    confidence: float | None = None

    prompt_version: str | None = Field(default=None, max_length=128)
    model_id: str | None = Field(default=None, max_length=255)
    index_version: str | None = Field(default=None, max_length=64)
    passages: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    stage_timings: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON))

    attempts: int = 0
    created_at: datetime = _time(index=True, default_now=True)
    updated_at: datetime = _time(default_now=True)
    deadline_at: datetime = Field(sa_type=UTCDateTime)
    dispatched_at: datetime | None = _time()
    started_at: datetime | None = _time()
    lease_expires_at: datetime | None = _time()
    finished_at: datetime | None = _time()


class ReviewItem(SQLModel, table=True):
    """One per escalated job. The review workflow (claim, decide) builds on this row."""

    __tablename__ = "review_items"

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="jobs.id", unique=True, max_length=32)
    reason: str = Field(max_length=32)
    status: str = Field(default="open", index=True, max_length=16)
    created_at: datetime = _time(index=True, default_now=True)


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
    built_by: str = Field(default="", max_length=255)
    error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = _time(default_now=True)
    finished_at: datetime | None = _time()
    duration_ms: float | None = None
    promoted_at: datetime | None = _time()
