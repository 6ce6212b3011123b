"""What the answer cache holds and has done, for operators (`ragline cache stats`, the
operations page): entries by state, hits, model calls and spend saved, hit rate, and the
escalations it raised."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ragline.models import CacheEntry, Job
from ragline.reasons import ReviewReason


@dataclass(frozen=True)
class CacheStats:
    since: datetime
    entries: dict[str, int] = field(default_factory=dict)  # by state
    finished: int = 0  # jobs finished in the window
    hits: int = 0  # of them, answered from the cache: each a model call saved
    saved_micros: int = 0  # the model spend those hits did not make (micro-units)
    inconsistent: int = 0  # escalated: contradicted an equivalent question's answer
    previously_rejected: int = 0  # escalated: an equivalent's answer was rejected

    @property
    def saved(self) -> float:
        return self.saved_micros / 1_000_000

    @property
    def hit_rate(self) -> float:
        return self.hits / self.finished if self.finished else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "since": self.since.isoformat(),
            "hit_rate": self.hit_rate,
            "saved": self.saved,
        }


def cache_stats(engine: Engine, since: datetime, account_id: str | None = None) -> CacheStats:
    """Over the jobs finished since `since`; entries as they are now. One account, or all."""

    def scoped(query: Any, column: Any) -> Any:
        return query if account_id is None else query.where(column == account_id)

    window = col(Job.finished_at) >= since
    with Session(engine) as session:
        entries = session.exec(
            scoped(
                select(CacheEntry.state, func.count()).group_by(col(CacheEntry.state)),
                col(CacheEntry.account_id),
            )
        ).all()
        finished = session.exec(
            scoped(select(func.count()).select_from(Job).where(window), col(Job.account_id))
        ).one()
        hits, saved = session.exec(
            scoped(
                select(func.count(), func.coalesce(func.sum(CacheEntry.cost_micros), 0))
                .select_from(Job)
                .join(CacheEntry, col(CacheEntry.job_id) == col(Job.cached_from), isouter=True)
                .where(window, col(Job.cached_from).is_not(None)),
                col(Job.account_id),
            )
        ).one()
        reasons = dict(
            session.exec(
                scoped(
                    select(Job.reason, func.count())
                    .where(
                        window,
                        col(Job.reason).in_(
                            [ReviewReason.INCONSISTENT, ReviewReason.PREVIOUSLY_REJECTED]
                        ),
                    )
                    .group_by(col(Job.reason)),
                    col(Job.account_id),
                )
            ).all()
        )
    return CacheStats(
        since=since,
        entries={str(state): int(count) for state, count in entries},
        finished=int(finished),
        hits=int(hits),
        saved_micros=int(saved),
        inconsistent=int(reasons.get(ReviewReason.INCONSISTENT.value, 0)),
        previously_rejected=int(reasons.get(ReviewReason.PREVIOUSLY_REJECTED.value, 0)),
    )


def clear_cache(session: Session, account_id: str | None = None) -> int:
    """Delete the entries (of one account, or all), in the caller's transaction; running
    processes find them gone at their next match and answer afresh."""
    statement = delete(CacheEntry)
    if account_id is not None:
        statement = statement.where(col(CacheEntry.account_id) == account_id)
    return int(session.execute(statement).rowcount)  # type: ignore[attr-defined]
