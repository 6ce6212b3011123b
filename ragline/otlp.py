"""Optional OpenTelemetry export of each finished job's trace (OTLP/HTTP, JSON encoding),
for teams that already look at traces in Jaeger, Tempo or an OTel collector.

The stored trace (GET /v1/jobs/{id}/trace) is the record and never depends on this: export
happens after the job's outcome is committed, from a bounded queue on a background thread;
when the collector is slow or down, traces are dropped (counted, logged), never the job.
The trace id is the job id (both are 32 hex digits), so a job id finds its trace in any
backend. Spans carry ids, versions, scores and verdicts, never the question or answer."""

from __future__ import annotations

import json
import queue
import secrets
import threading
from datetime import datetime
from typing import Any

import httpx
import structlog

from ragline import metrics

log = structlog.get_logger("ragline.otlp")

SCOPE = {"name": "ragline", "version": "1"}
STATUS_OK, STATUS_ERROR = 1, 2
ERROR_OUTCOMES = {"error", "timeout", "failed"}


def parse_headers(text: str | None) -> dict[str, str]:
    """`key=value,key2=value2`, as OTEL_EXPORTER_OTLP_HEADERS is written."""
    headers: dict[str, str] = {}
    for part in (text or "").split(","):
        if part.strip():
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"OTLP header '{part.strip()}' is not key=value")
            headers[key.strip()] = value.strip()
    return headers


def _nanos(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1_000_000_000))


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    return {"stringValue": json.dumps(value, default=str, ensure_ascii=False)}


def _attributes(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"key": f"ragline.{key}", "value": _value(value)}
        for key, value in values.items()
        if value is not None
    ]


def trace_request(
    job_id: str, spans: list[dict[str, Any]], job: dict[str, Any], service: str
) -> dict[str, Any]:
    """An ExportTraceServiceRequest: one root span for the job, one child per step."""
    root_id = secrets.token_hex(8)
    starts = [s["start"] for s in spans]
    ends = [
        s["start"].timestamp() * 1e9 + s["duration_ms"] * 1e6
        for s in spans
        if s["duration_ms"] is not None
    ]
    root_end = str(int(max(ends))) if ends else _nanos(max(starts))
    children = []
    for span in spans:
        end = (
            str(int(span["start"].timestamp() * 1e9 + span["duration_ms"] * 1e6))
            if span["duration_ms"] is not None
            else _nanos(span["start"])
        )
        failed = span["outcome"] in ERROR_OUTCOMES
        children.append(
            {
                "traceId": job_id,
                "spanId": secrets.token_hex(8),
                "parentSpanId": root_id,
                "name": span["name"],
                "kind": 1,  # SPAN_KIND_INTERNAL
                "startTimeUnixNano": _nanos(span["start"]),
                "endTimeUnixNano": end,
                "attributes": _attributes({**span["attributes"], "outcome": span["outcome"]}),
                "status": {"code": STATUS_ERROR if failed else STATUS_OK},
            }
        )
    root = {
        "traceId": job_id,
        "spanId": root_id,
        "name": "job",
        "kind": 1,
        "startTimeUnixNano": _nanos(min(starts)),
        "endTimeUnixNano": root_end,
        "attributes": _attributes({"job_id": job_id, **job}),
        "status": {"code": STATUS_ERROR if job.get("status") == "failed" else STATUS_OK},
    }
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [{"scope": SCOPE, "spans": [root, *children]}],
            }
        ]
    }


class OtlpExporter:
    def __init__(
        self,
        endpoint: str,
        headers: dict[str, str] | None = None,
        service: str = "ragline",
        timeout_s: float = 5.0,
        max_queue: int = 1000,
    ) -> None:
        base = endpoint.rstrip("/")
        self.url = base if base.endswith("/v1/traces") else f"{base}/v1/traces"
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.service = service
        self.timeout_s = timeout_s
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._send_loop, name="otlp-export", daemon=True)
        self._thread.start()

    def export(self, job_id: str, spans: list[dict[str, Any]], job: dict[str, Any]) -> None:
        """Queue a finished job's trace; never blocks, never raises."""
        try:
            self._queue.put_nowait(trace_request(job_id, spans, job, self.service))
        except queue.Full:
            metrics.TRACES_EXPORTED.labels("dropped").inc()
            log.warning("otlp_queue_full", job_id=job_id)
        except Exception as error:  # a malformed span must not fail the job
            metrics.TRACES_EXPORTED.labels("dropped").inc()
            log.warning("otlp_export_skipped", job_id=job_id, error=type(error).__name__)

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (up to timeout_s), then stop."""
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            return
        self._thread.join(timeout_s)

    def _send_loop(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as client:
            while (request := self._queue.get()) is not None:
                try:
                    response = client.post(self.url, json=request, headers=self.headers)
                    response.raise_for_status()
                    metrics.TRACES_EXPORTED.labels("sent").inc()
                except httpx.HTTPError as error:
                    metrics.TRACES_EXPORTED.labels("failed").inc()
                    log.warning("otlp_export_failed", url=self.url, error=str(error)[:200])
