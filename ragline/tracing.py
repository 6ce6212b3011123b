"""A job's trace: every step from admission to delivery as timed spans with the ids,
versions, scores and verdicts each step used, so a bad answer can be followed back to its
prompt version, model, index version and passages. Assembled from the system of record: the
pipeline's own spans (stored on the job by the worker), the review item and the webhook
deliveries."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ragline.models import Delivery, Job, ReviewItem

# The worker's stages in the order they run (the `clock.stage` names of
# ragline/pipeline/runner.py); a job's stage_timings and its trace use these names.
PIPELINE_STAGES = (
    "validate",
    "embed",
    "input_guardrails",
    "cache",
    "retrieve",
    "generate",
    "output_guardrails",
    "score",
    "answerability",
)


def _span(
    name: str,
    start: datetime,
    end: datetime | None,
    attributes: dict[str, Any] | None = None,
    outcome: str = "ok",
) -> dict[str, Any]:
    return {
        "name": name,
        "start": start,
        "duration_ms": None if end is None else round((end - start).total_seconds() * 1000, 3),
        "outcome": outcome if end is not None else "pending",
        "attributes": attributes or {},
    }


def job_trace(engine: Engine, job: Job) -> list[dict[str, Any]]:
    spans = [
        _span(
            "admission",
            job.created_at,
            job.created_at,
            {
                "request_id": job.request_id,
                "key_id": job.key_id,
                "feature": job.feature,
                "priority": job.priority,
                "redacted": job.guardrails.get("input", {}).get("redacted", {}),
                "callback": bool(job.callback_url),
            },
        ),
        _span("queue", job.created_at, job.started_at, {"dispatched_at": job.dispatched_at}),
    ]
    trace = job.trace or {}
    if trace.get("started_at"):
        origin = datetime.fromisoformat(trace["started_at"])
        for span in trace.get("spans", []):
            start = origin + timedelta(milliseconds=span["start_ms"])
            duration = span.get("duration_ms")
            end = None if duration is None else start + timedelta(milliseconds=duration)
            attributes = {"attempt": trace.get("attempt"), **span.get("attributes", {})}
            spans.append(_span(span["name"], start, end, attributes, span.get("outcome", "ok")))
    if job.finished_at is not None:
        spans.append(
            _span(
                "route",
                job.finished_at,
                job.finished_at,
                {"status": job.status, "reason": job.reason, "confidence": job.confidence},
            )
        )
    with Session(engine) as session:
        item = session.exec(select(ReviewItem).where(ReviewItem.job_id == job.id)).first()
        deliveries = session.exec(
            select(Delivery).where(Delivery.job_id == job.id).order_by(col(Delivery.created_at))
        ).all()
    if item is not None:
        spans.append(
            _span(
                "review",
                item.created_at,
                item.decided_at,
                {
                    "item_id": item.id,
                    "reason": item.reason,
                    "due_at": item.due_at,
                    "sla_breached": item.sla_breached,
                    "claimed_by": item.claimed_by_name,
                    "decision": item.decision,
                    "reason_code": item.reason_code,
                    "decided_by": item.decided_by,
                    "edited": item.decision == "edit",
                },
            )
        )
    for delivery in deliveries:
        spans.append(
            _span(
                "delivery",
                delivery.created_at,
                delivery.delivered_at,
                {
                    "webhook_id": delivery.id,
                    "event": delivery.event,
                    "status": delivery.status,
                    "attempts": delivery.attempts,
                    "last_status_code": delivery.last_status_code,
                    "last_error": delivery.last_error,
                },
                outcome="ok" if delivery.status == "delivered" else delivery.status,
            )
        )
    return spans
