"""Reading the review queue in tests."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from ragline.config import Review
from ragline.review import SAMPLED, QueueFilter, ReviewQueue


def escalations(engine: Engine) -> dict[str, str]:
    """job id -> reason of every escalation review item (sampled answers left out: a
    configured share of answered jobs is copied to the queue at random)."""
    rows = ReviewQueue(engine, Review()).list(None, QueueFilter(status="all"), limit=1000)
    return {item.job_id: item.reason for item, _ in rows if item.reason != SAMPLED}
