"""Prometheus metrics. Counters and histograms live in the process's default registry and
are updated where things happen (admission, pipeline, review, delivery); the backlog gauges
are read from the database at scrape time, so every API replica reports the same truth.

The API serves /metrics; a worker process serves its own with `ragline worker
--metrics-port`. In embedded mode one /metrics has both. Escalation rate, error rates and
spend per hour are PromQL over these (README "Metrics").
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ragline.config import Budgets
from ragline.models import Delivery, Job, JobStatus, ReviewItem, ReviewStatus, utcnow

JOBS_SUBMITTED = Counter("ragline_jobs_submitted", "Jobs admitted", ["feature"])


def feature_label(feature: str | None, budgets: Budgets) -> str:
    """A `feature` label value: declared features by name, any other as `other` (clients
    choose feature names; unbounded label values would grow every series without end)."""
    if not feature:
        return ""
    return feature if feature in budgets.declared_features else "other"


JOBS_FINISHED = Counter(
    "ragline_jobs_finished", "Jobs finished by the pipeline", ["status", "reason"]
)
STAGE_SECONDS = Histogram(
    "ragline_stage_seconds",
    "Time per pipeline stage",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
MODEL_CALLS = Counter("ragline_model_calls", "Model calls", ["model_id", "outcome"])
SPEND = Counter("ragline_spend", "Money spent on model calls (price table currency)", ["feature"])
# Answer cache lookups by result: hit, miss, rejected (an equivalent answer was rejected by
# a reviewer: escalated), error (the lookup failed: a miss), and what the hits saved.
CACHE_LOOKUPS = Counter("ragline_cache_lookups", "Answer cache lookups", ["result"])
CACHE_SAVED = Counter(
    "ragline_cache_saved_spend", "Model spend the answer cache saved (price table currency)"
)
REVIEW_DECISIONS = Counter("ragline_review_decisions", "Review decisions", ["decision"])
SLA_BREACHES = Counter("ragline_review_sla_breaches", "Review items that missed their SLA")
WEBHOOK_ATTEMPTS = Counter("ragline_webhook_attempts", "Webhook delivery attempts", ["result"])
TRACES_EXPORTED = Counter(
    "ragline_traces_exported", "Job traces sent to the OTLP endpoint", ["result"]
)


class StateCollector(Collector):
    """Queue depth, review backlog (by reason, overdue) and deliveries by status, counted
    in the database when scraped."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = utcnow()
        with Session(self.engine) as session:
            queued = session.exec(
                select(func.count()).select_from(Job).where(col(Job.status) == JobStatus.QUEUED)
            ).one()
            backlog = session.exec(
                select(ReviewItem.reason, func.count())
                .where(col(ReviewItem.status) != ReviewStatus.DECIDED)
                .group_by(col(ReviewItem.reason))
            ).all()
            overdue = session.exec(
                select(func.count())
                .select_from(ReviewItem)
                .where(col(ReviewItem.status) != ReviewStatus.DECIDED, col(ReviewItem.due_at) < now)
            ).one()
            deliveries = session.exec(
                select(Delivery.status, func.count()).group_by(col(Delivery.status))
            ).all()
        yield GaugeMetricFamily("ragline_queue_depth", "Jobs waiting for a worker", value=queued)
        by_reason = GaugeMetricFamily(
            "ragline_review_backlog", "Review items not decided", labels=["reason"]
        )
        for reason, count in backlog:
            by_reason.add_metric([reason], count)
        yield by_reason
        yield GaugeMetricFamily(
            "ragline_review_overdue", "Review items past their due time", value=overdue
        )
        by_status = GaugeMetricFamily(
            "ragline_deliveries", "Webhook deliveries by status", labels=["status"]
        )
        for status, count in deliveries:
            by_status.add_metric([status], count)
        yield by_status


def exposition(engine: Engine | None) -> bytes:
    """The process's metrics, plus the database's state when an engine is given."""
    text = generate_latest(REGISTRY)
    if engine is not None:
        state = CollectorRegistry(auto_describe=False)
        state.register(StateCollector(engine))
        text += generate_latest(state)
    return text
