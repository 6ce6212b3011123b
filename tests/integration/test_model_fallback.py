"""The fallback model (generation.fallback_model) on real components: a priced primary model
on a real HTTP server that fails or hangs, the extractive fallback, the jobs table, the budget
ledger and the job's stored trace."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import structlog
import yaml
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ragline.config import RaglineConfig, parse_config
from ragline.errors import ConfigError
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.models import BudgetCounter, Job, JobStatus, UsageRecord
from ragline.pipeline.generate import ChosenModel
from ragline.pipeline.providers.extractive import ExtractiveGenerator
from ragline.pipeline.providers.openai_compatible import OpenAICompatibleGenerator
from ragline.pipeline.runner import Pipeline
from ragline.pipeline.validate import JobRequest
from tests.support.environment import REPO
from tests.support.fake_model import FakeModelServer
from tests.support.pipelines import pipeline_for
from tests.support.reviews import escalations
from tests.support.tenants import make_tenant

LEAVE = "How many days of annual leave do employees get?"
PRIMARY_ID = "fake-1"


def _data(fallback: str | None = "extractive", timeout_ms: int = 9000) -> dict[str, Any]:
    """ragline.yaml with a priced remote `fake` model answering, and the given fallback."""
    data = yaml.safe_load((REPO / "ragline.yaml").read_text(encoding="utf-8"))
    data["models"]["fake"] = {
        "provider": "openai_compatible",
        "model_id": PRIMARY_ID,
        "price": {"input_per_1k": 0.5, "output_per_1k": 1.0},
        "max_tokens": 64,
    }
    generation = data["assistant_pipeline"]["generation"]
    generation.update(model="fake", timeout_ms=timeout_ms)
    if fallback is not None:
        generation["fallback_model"] = fallback
    data["assistant_pipeline"]["retrieval"]["top_k"] = 2
    data["budgets"] = {"on_exceeded": "reject", "accounts": {"default": {"daily": 20.0}}}
    return data


def _config(fallback: str | None = "extractive", timeout_ms: int = 9000) -> RaglineConfig:
    return parse_config(_data(fallback, timeout_ms))


def _remote(name: str, config: RaglineConfig, server: FakeModelServer) -> ChosenModel:
    spec = config.models[name]
    return ChosenModel(name, spec, OpenAICompatibleGenerator(spec, server.base_url))


def _pipeline(
    engine: Engine,
    config: RaglineConfig,
    fake_model: FakeModelServer,
    store: KnowledgeStore,
    embedder: Embedder,
    fallback: ChosenModel | None = None,
) -> Pipeline:
    """The `fake` model answering; the configured fallback (extractive) unless given one."""
    name = config.assistant_pipeline.generation.fallback_model
    if fallback is None and name is not None:
        fallback = ChosenModel(name, config.models[name], ExtractiveGenerator(embedder))
    primary = _remote("fake", config, fake_model)
    return pipeline_for(engine, config, primary, store, embedder, fallback=fallback)


def _submit(pipeline: Pipeline, deadline: timedelta = timedelta(seconds=30)) -> Job:
    principal, _ = make_tenant(pipeline.jobs.engine, "acme")
    job, created = pipeline.jobs.submit(
        JobRequest(question=LEAVE, user_id="u-1", feature="hr-bot"),
        account_id=principal.account_id,
        deadline=deadline,
    )
    assert created
    return job


def _generate_span(job: Job) -> dict[str, Any]:
    [span] = [s for s in job.trace["spans"] if s["name"] == "generate"]
    return span


def _ledger(engine: Engine) -> list[tuple[str, int]]:
    with Session(engine) as session:
        rows = session.exec(select(UsageRecord).order_by(col(UsageRecord.id)))
        return [(r.model_id, r.cost_micros) for r in rows]


def _reserved(engine: Engine) -> set[int]:
    with Session(engine) as session:
        return {c.reserved_micros for c in session.exec(select(BudgetCounter))}


def _model_calls(model_id: str, outcome: str) -> float:
    labels = {"model_id": model_id, "outcome": outcome}
    return REGISTRY.get_sample_value("ragline_model_calls_total", labels) or 0.0


@pytest.fixture
def second_model() -> Iterator[FakeModelServer]:
    """Another real model server, for a fallback that fails too."""
    server = FakeModelServer().start()
    yield server
    server.stop()


def test_primary_5xx_is_answered_by_the_fallback(
    engine: Engine,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
) -> None:
    fake_model.behaviour.mode = "error"
    pipeline = _pipeline(engine, _config(), fake_model, handbook_store, embedder)
    job = _submit(pipeline)
    errors_before = _model_calls(PRIMARY_ID, "error")
    fallback_ok_before = _model_calls("extractive", "ok")

    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        status = pipeline.answer_job(job.id)

    stored = pipeline.jobs.get(job.id)
    assert status == stored.status == JobStatus.ANSWERED
    assert stored.model_id == "extractive"
    assert stored.answer is not None and "25 days" in stored.answer
    assert stored.citations
    assert stored.reservation is None
    assert len(fake_model.behaviour.requests) == 1  # the primary was asked once, not retried
    attributes = _generate_span(stored)["attributes"]
    assert attributes["fallback_from"] == "fake"
    assert attributes["primary_error"] == "model_error"
    assert attributes["primary_error_class"] == "ModelError"
    assert attributes["model"] == "extractive"
    assert attributes["model_id"] == "extractive"
    assert isinstance(attributes["call_ms"], float) and attributes["call_ms"] >= 0
    assert _generate_span(stored)["outcome"] == "ok"
    # The failed call is not charged: its reservation was given back, one row for the answer.
    assert _ledger(engine) == [("extractive", 0)]
    assert _reserved(engine) == {0}
    assert _model_calls(PRIMARY_ID, "error") == errors_before + 1
    assert _model_calls("extractive", "ok") == fallback_ok_before + 1
    [event] = [e for e in logs if e["event"] == "model_fallback"]
    assert (event["model"], event["fallback"], event["error"]) == (
        "fake",
        "extractive",
        "ModelError",
    )
    assert LEAVE not in repr(logs)
    assert job.id not in escalations(engine)


def test_primary_timeout_is_answered_by_the_fallback_within_the_deadline(
    sqlite_engine: Engine,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
) -> None:
    fake_model.behaviour.mode = "hang"
    pipeline = _pipeline(
        sqlite_engine, _config(timeout_ms=300), fake_model, handbook_store, embedder
    )
    job = _submit(pipeline, deadline=timedelta(seconds=10))
    timeouts_before = _model_calls(PRIMARY_ID, "timeout")

    status = pipeline.answer_job(job.id)

    stored = pipeline.jobs.get(job.id)
    assert status == JobStatus.ANSWERED
    assert stored.model_id == "extractive"
    assert stored.finished_at is not None and stored.finished_at < stored.deadline_at
    assert len(fake_model.behaviour.requests) == 1
    attributes = _generate_span(stored)["attributes"]
    assert (attributes["fallback_from"], attributes["primary_error"]) == ("fake", "timeout")
    assert attributes["primary_error_class"] == "ModelTimeout"
    # The stage waited out the primary's 300 ms; call_ms is the fallback's own time.
    assert _generate_span(stored)["duration_ms"] > 299 + attributes["call_ms"]
    assert _model_calls(PRIMARY_ID, "timeout") == timeouts_before + 1
    assert _ledger(sqlite_engine) == [("extractive", 0)]


def test_without_a_fallback_a_model_error_escalates_as_before(
    sqlite_engine: Engine,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
) -> None:
    fake_model.behaviour.mode = "error"
    pipeline = _pipeline(
        sqlite_engine, _config(fallback=None), fake_model, handbook_store, embedder
    )
    job = _submit(pipeline)

    status = pipeline.answer_job(job.id)

    stored = pipeline.jobs.get(job.id)
    assert status == JobStatus.ESCALATED
    assert stored.reason == "model_error"
    assert stored.answer is None
    assert stored.model_id == PRIMARY_ID
    assert "fallback_from" not in _generate_span(stored)["attributes"]
    assert _ledger(sqlite_engine) == []
    assert _reserved(sqlite_engine) == {0}
    assert escalations(sqlite_engine).get(job.id) == "model_error"


def test_no_time_left_for_the_fallback_escalates_timeout(
    sqlite_engine: Engine,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
) -> None:
    # timeout_ms is 9 s; the job has about 1 s, all of it spent waiting for the primary.
    fake_model.behaviour.mode = "hang"
    pipeline = _pipeline(sqlite_engine, _config(), fake_model, handbook_store, embedder)
    job = _submit(pipeline, deadline=timedelta(seconds=1))

    status = pipeline.answer_job(job.id)

    stored = pipeline.jobs.get(job.id)
    assert status == JobStatus.ESCALATED
    assert stored.reason == "timeout"
    assert stored.answer is None
    assert stored.model_id == PRIMARY_ID
    assert len(fake_model.behaviour.requests) == 1
    attributes = _generate_span(stored)["attributes"]
    assert attributes["fallback_skipped"] == "deadline"
    assert "fallback_from" not in attributes
    assert _ledger(sqlite_engine) == []
    assert _reserved(sqlite_engine) == {0}
    assert escalations(sqlite_engine).get(job.id) == "timeout"


def test_a_failing_fallback_escalates_with_the_primarys_reason(
    sqlite_engine: Engine,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
    second_model: FakeModelServer,
) -> None:
    data = _data(fallback="backup", timeout_ms=300)
    data["models"]["backup"] = {"provider": "openai_compatible", "model_id": "backup-1"}
    config = parse_config(data)
    fake_model.behaviour.mode = "hang"
    second_model.behaviour.mode = "error"
    backup = _remote("backup", config, second_model)
    pipeline = _pipeline(sqlite_engine, config, fake_model, handbook_store, embedder, backup)
    job = _submit(pipeline)

    status = pipeline.answer_job(job.id)

    stored = pipeline.jobs.get(job.id)
    assert status == JobStatus.ESCALATED
    assert stored.reason == "timeout"  # the primary's failure, not the fallback's
    assert stored.model_id == PRIMARY_ID
    assert len(fake_model.behaviour.requests) == len(second_model.behaviour.requests) == 1
    span = _generate_span(stored)
    assert span["outcome"] == "error"
    assert span["attributes"]["fallback_from"] == "fake"
    assert span["attributes"]["fallback_error"] == "ModelError"
    assert _ledger(sqlite_engine) == []
    assert _reserved(sqlite_engine) == {0}
    assert escalations(sqlite_engine).get(job.id) == "timeout"


@pytest.mark.parametrize(
    ("fallback", "message"),
    [
        ("no-such-model", "assistant_pipeline.generation.fallback_model 'no-such-model'"),
        ("fake", "assistant_pipeline.generation.fallback_model must differ"),
    ],
)
def test_a_bad_fallback_name_is_a_config_error_naming_the_key(fallback: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(_data(fallback=fallback), origin="ragline.yaml")
    assert message in str(raised.value)
    assert "ragline.yaml" in str(raised.value)
