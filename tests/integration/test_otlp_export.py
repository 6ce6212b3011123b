"""Optional OTLP export: a finished job's trace reaches a collector (a real loopback HTTP
server) as OTLP/HTTP JSON, keyed by the job id; a collector that is down costs the job
nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from ragline import metrics
from ragline.bootstrap import Mode, Overrides, bootstrap
from ragline.config import RaglineConfig
from ragline.errors import ConfigError
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.models import JobStatus
from ragline.otlp import OtlpExporter, parse_headers
from ragline.pipeline.runner import Pipeline
from ragline.pipeline.validate import JobRequest
from tests.support.receiver import receiving
from tests.support.services import settings_for
from tests.support.tenants import make_tenant
from tests.support.waiting import wait_for

QUESTION = "How many days of annual leave do I get? Mail me at jane.doe@example.com"
STAGES = {
    "validate",
    "embed",
    "input_guardrails",
    "retrieve",
    "generate",
    "score",
    "answerability",
}


def _pipeline(
    engine: Engine,
    config: RaglineConfig,
    store: KnowledgeStore,
    embedder: Embedder,
    tmp_path: Path,
    **settings: object,
) -> Pipeline:
    services = bootstrap(
        settings_for(tmp_path, **settings),
        Mode.WORKER,
        Overrides(config=config, engine=engine, store=store, embedder=embedder, send=print),
    )
    return services.need_pipeline()


def _answer(pipeline: Pipeline) -> str:
    principal, _ = make_tenant(pipeline.jobs.engine)
    admitted = pipeline.guardrails.admit(QUESTION)
    job, _ = pipeline.jobs.submit(
        JobRequest(question=admitted.text, user_id="u-1", feature="hr-bot"),
        account_id=principal.account_id,
        deadline=timedelta(seconds=30),
        guardrails={"input": admitted.record},
    )
    assert pipeline.answer_job(job.id) is not None
    return job.id


def _sent(result: str) -> float:
    return metrics.TRACES_EXPORTED.labels(result)._value.get()  # type: ignore[no-any-return]


def test_a_finished_jobs_trace_reaches_the_collector_keyed_by_the_job_id(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    tmp_path: Path,
) -> None:
    with receiving() as collector:
        pipeline = _pipeline(
            sqlite_engine,
            repo_config,
            handbook_store,
            embedder,
            tmp_path,
            otlp_endpoint=collector.url.removesuffix("/hooks/ragline"),
            otlp_headers=SecretStr("authorization=Bearer otel-token, x-tenant=acme"),
        )
        job_id = _answer(pipeline)
        wait_for(lambda: collector.received or None, timeout_s=15)

    [request] = collector.received
    assert request.headers["authorization"] == "Bearer otel-token"
    assert request.headers["x-tenant"] == "acme"
    assert request.headers["content-type"] == "application/json"
    body = json.loads(request.body)
    [resource] = body["resourceSpans"]
    service = resource["resource"]["attributes"][0]
    assert service == {"key": "service.name", "value": {"stringValue": "ragline"}}
    spans = resource["scopeSpans"][0]["spans"]
    root = spans[0]
    assert root["name"] == "job" and "parentSpanId" not in root
    assert all(s["traceId"] == job_id for s in spans)  # the job id finds the trace
    assert len(job_id) == 32 and all(len(s["spanId"]) == 16 for s in spans)
    assert all(s["parentSpanId"] == root["spanId"] for s in spans[1:])
    assert {s["name"] for s in spans} >= STAGES
    for span in spans:
        assert int(span["endTimeUnixNano"]) >= int(span["startTimeUnixNano"])
    job = pipeline.jobs.get(job_id)
    root_attributes = {a["key"]: a["value"] for a in root["attributes"]}
    assert root_attributes["ragline.prompt_version"] == {"stringValue": job.prompt_version}
    assert root_attributes["ragline.index_version"] == {"stringValue": job.index_version}
    assert root_attributes["ragline.status"] == {"stringValue": job.status}
    retrieve = next(s for s in spans if s["name"] == "retrieve")
    attributes = {a["key"]: a["value"] for a in retrieve["attributes"]}
    chunks = json.loads(attributes["ragline.chunks"]["stringValue"])
    assert [c["chunk_id"] for c in chunks] == [p["chunk_id"] for p in job.passages]
    assert attributes["ragline.top_k"] == {"intValue": str(len(job.passages))}
    # Ids, versions, scores and verdicts only: neither the question nor the answer.
    text = request.body.decode()
    assert "jane.doe@example.com" not in text and "annual leave do I get" not in text
    assert job.answer is not None and job.answer[:40] not in text


def test_a_collector_that_is_down_costs_the_job_nothing(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    tmp_path: Path,
) -> None:
    with receiving() as gone:
        closed = gone.url.removesuffix("/hooks/ragline")  # the port is free once it stops
    failed_before = _sent("failed")
    pipeline = _pipeline(
        sqlite_engine, repo_config, handbook_store, embedder, tmp_path, otlp_endpoint=closed
    )
    job_id = _answer(pipeline)
    assert pipeline.jobs.get(job_id).status == JobStatus.ANSWERED
    assert pipeline.jobs.get(job_id).trace["spans"]  # the stored trace is the record
    wait_for(lambda: _sent("failed") > failed_before or None, timeout_s=15)


def test_a_full_export_queue_drops_traces_rather_than_blocking() -> None:
    exporter = OtlpExporter("http://127.0.0.1:9", max_queue=1, timeout_s=0.2)
    dropped_before = _sent("dropped")
    span = {
        "name": "retrieve",
        "start": datetime.now(UTC),
        "duration_ms": 1.0,
        "outcome": "ok",
        "attributes": {},
    }
    for _ in range(50):
        exporter.export("0" * 32, [span], {"status": "answered"})
    assert _sent("dropped") > dropped_before


def test_otlp_headers_are_key_value_pairs(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    tmp_path: Path,
) -> None:
    assert parse_headers("a=1, b = two ,") == {"a": "1", "b": "two"}
    assert parse_headers(None) == {}
    with pytest.raises(ValueError, match="not key=value"):
        parse_headers("authorization")
    with pytest.raises(ConfigError, match="RAGLINE_OTLP_HEADERS"):
        _pipeline(
            sqlite_engine,
            repo_config,
            handbook_store,
            embedder,
            tmp_path,
            otlp_endpoint="http://127.0.0.1:4318",
            otlp_headers=SecretStr("no-equals-sign"),
        )
