"""A job's trace laid out for the operator page: the worker's stages as a timeline scaled
to the pipeline run, and the slower steps around it (queue, review, delivery) as timed
rows, each with its attributes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ragline.tracing import PIPELINE_STAGES

WORKER_STAGES = frozenset(PIPELINE_STAGES)


@dataclass(frozen=True)
class TimelineRow:
    name: str
    start: datetime
    duration_ms: float | None
    outcome: str
    offset_pct: float  # where the bar starts, in % of the pipeline run (stages only)
    width_pct: float
    stage: bool
    attributes: list[tuple[str, str]]
    chunks: list[dict[str, Any]]


def timeline(spans: list[dict[str, Any]]) -> tuple[list[TimelineRow], float]:
    """Rows in time order and the pipeline run's length in ms."""
    stages = [s for s in spans if s["name"] in WORKER_STAGES and s["duration_ms"] is not None]
    origin = min((s["start"] for s in stages), default=None)
    total = 0.0
    if origin is not None:
        total = max((s["start"] - origin).total_seconds() * 1000 + s["duration_ms"] for s in stages)
    rows = []
    for span in spans:
        stage = span in stages and origin is not None
        offset = width = 0.0
        if stage and origin is not None and total > 0:
            offset = (span["start"] - origin).total_seconds() * 1000 / total * 100
            width = max(span["duration_ms"] / total * 100, 0.4)
        attributes = dict(span["attributes"])
        chunks = attributes.pop("chunks", None) or []
        rows.append(
            TimelineRow(
                name=span["name"],
                start=span["start"],
                duration_ms=span["duration_ms"],
                outcome=span["outcome"],
                offset_pct=round(offset, 2),
                width_pct=round(width, 2),
                stage=stage,
                attributes=[(k, _text(v)) for k, v in attributes.items() if v not in (None, "")],
                chunks=chunks if isinstance(chunks, list) else [],
            )
        )
    return rows, total


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)
