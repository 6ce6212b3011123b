"""The worker-side pipeline (Pipeline.answer_job) on real components: SQLite/PostgreSQL,
Qdrant local mode with the demo handbook, the MiniLM embedder and a real HTTP model server."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from ragline.bootstrap import choose_model, effective_spec
from ragline.config import ModelSpec, RaglineConfig, parse_config
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.models import Job, JobStatus
from ragline.pipeline.generate import ChosenModel
from ragline.pipeline.prompts import PromptTemplate
from ragline.pipeline.providers.extractive import ExtractiveGenerator
from ragline.pipeline.providers.openai_compatible import OpenAICompatibleGenerator
from ragline.pipeline.runner import Pipeline
from ragline.pipeline.validate import JobRequest
from ragline.settings import Settings
from tests.support.environment import REPO
from tests.support.fake_model import FakeModelServer
from tests.support.pipelines import extractive, pipeline_for
from tests.support.reviews import escalations
from tests.support.tenants import make_tenant

LEAVE = "How many days of annual leave do employees get?"
OFF_TOPIC = "Which football team won the 1998 world cup?"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def _variant(config: RaglineConfig, **sections: dict[str, Any]) -> RaglineConfig:
    """The config with keys of assistant_pipeline sections replaced, validated again."""
    data = config.model_dump()
    for section, values in sections.items():
        data["assistant_pipeline"][section].update(values)
    return parse_config(data)


def _remote(fake_model: FakeModelServer, config: RaglineConfig) -> ChosenModel:
    spec = config.models["production-default"]
    return ChosenModel(
        "production-default", spec, OpenAICompatibleGenerator(spec, fake_model.base_url)
    )


def _submit(
    pipeline: Pipeline,
    question: str = LEAVE,
    *,
    user_id: str | None = "u-1",
    deadline: timedelta = timedelta(seconds=30),
) -> Job:
    principal, _ = make_tenant(pipeline.jobs.engine, "acme")
    job, created = pipeline.jobs.submit(
        JobRequest(question=question, user_id=user_id, feature="hr-bot"),
        account_id=principal.account_id,
        deadline=deadline,
    )
    assert created
    return job


def _run(pipeline: Pipeline, job: Job) -> tuple[JobStatus | None, Job]:
    status = pipeline.answer_job(job.id)
    return status, pipeline.jobs.get(job.id)


def _review_reasons(pipeline: Pipeline) -> dict[str, str]:
    return escalations(pipeline.jobs.engine)


# (a) ----------------------------------------------------------------------------------------


def test_extractive_answers_with_citations_and_versions(
    engine: Engine,
    repo_config: RaglineConfig,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
) -> None:
    pipeline = pipeline_for(engine, repo_config, extractive(embedder), handbook_store, embedder)
    job = _submit(pipeline)

    status, stored = _run(pipeline, job)

    assert status == JobStatus.ANSWERED
    assert stored.status == JobStatus.ANSWERED
    assert stored.reason is None
    assert stored.answer is not None and "25 days" in stored.answer
    assert "hr/annual-leave" in {c["document_id"] for c in stored.citations}
    assert all(c["number"] >= 1 for c in stored.citations)
    assert stored.confidence is not None
    assert stored.confidence >= stored.confidence_inputs["answerability"]["threshold"]
    assert stored.prompt_version is not None and stored.prompt_version.startswith("answer@")
    assert stored.prompt_version == PromptTemplate.load(REPO / "prompts", "answer").version
    assert stored.model_id == "extractive"
    assert stored.index_version == "kb_v1"
    assert len(stored.passages) == repo_config.assistant_pipeline.retrieval.top_k
    assert {"chunk_id", "document_id", "score", "text"} <= set(stored.passages[0])
    # The evidence is kept with the job: it outlives the index version.
    assert any("25 days" in p["text"] for p in stored.passages)
    assert {"validate", "retrieve", "generate", "score"} <= set(stored.stage_timings)
    assert stored.attempts == 1
    assert stored.finished_at is not None
    assert stored.lease_expires_at is None
    assert job.id not in _review_reasons(pipeline)


# (b) ----------------------------------------------------------------------------------------


def test_extractive_off_topic_is_escalated_for_review(
    engine: Engine,
    repo_config: RaglineConfig,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
) -> None:
    pipeline = pipeline_for(engine, repo_config, extractive(embedder), handbook_store, embedder)
    job = _submit(pipeline, OFF_TOPIC)

    status, stored = _run(pipeline, job)

    assert status == JobStatus.ESCALATED
    assert stored.status == JobStatus.ESCALATED
    assert stored.reason == "low_confidence"
    assert stored.confidence is not None
    assert stored.confidence < stored.confidence_inputs["answerability"]["threshold"]
    assert stored.index_version == "kb_v1"
    assert _review_reasons(pipeline).get(job.id) == "low_confidence"


def test_answer_with_warning_answers_low_confidence(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
) -> None:
    config = _variant(repo_config, fallback={"on_low_confidence": "answer_with_warning"})
    pipeline = pipeline_for(sqlite_engine, config, extractive(embedder), handbook_store, embedder)
    job = _submit(pipeline, OFF_TOPIC)

    status, stored = _run(pipeline, job)

    assert status == JobStatus.ANSWERED
    assert stored.reason == "low_confidence"
    assert job.id not in _review_reasons(pipeline)


# (c) ----------------------------------------------------------------------------------------


def test_remote_model_answer_is_answered_and_cited(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
) -> None:
    fake_model.behaviour.reply = "Employees receive 25 days of paid annual leave [1]."
    generator = _remote(fake_model, repo_config)
    pipeline = pipeline_for(sqlite_engine, repo_config, generator, handbook_store, embedder)
    job = _submit(pipeline)

    status, stored = _run(pipeline, job)

    assert status == JobStatus.ANSWERED
    assert stored.answer == "Employees receive 25 days of paid annual leave [1]."
    assert stored.model_id == LLAMA == repo_config.models["production-default"].model_id
    assert len(stored.citations) == 1
    assert stored.citations[0]["number"] == 1
    assert stored.citations[0]["document_id"] == stored.passages[0]["document_id"]
    assert stored.citations[0]["chunk_id"] == stored.passages[0]["chunk_id"]
    assert stored.citations[0]["document_id"] == "hr/annual-leave"
    assert stored.index_version == "kb_v1"
    assert stored.prompt_version is not None and stored.prompt_version.startswith("answer@")
    # The model saw the question and the retrieved passages.
    [sent] = fake_model.behaviour.requests
    assert sent["body"]["model"] == LLAMA
    assert LEAVE in sent["body"]["messages"][1]["content"]


# (d) (e) (f) --------------------------------------------------------------------------------


def test_model_slower_than_generation_timeout_escalates_timeout(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
) -> None:
    fake_model.behaviour.delay_s = 1.5
    config = _variant(repo_config, generation={"timeout_ms": 300})
    pipeline = pipeline_for(
        sqlite_engine, config, _remote(fake_model, config), handbook_store, embedder
    )
    job = _submit(pipeline)

    status, stored = _run(pipeline, job)

    assert status == JobStatus.ESCALATED
    assert stored.reason == "timeout"
    assert stored.answer is None
    assert "generate" in stored.stage_timings
    assert stored.model_id == LLAMA
    assert stored.index_version == "kb_v1"
    assert stored.prompt_version is not None and stored.prompt_version.startswith("answer@")
    assert stored.passages  # the passages it saw are kept for the reviewer
    assert len(fake_model.behaviour.requests) == 1
    assert _review_reasons(pipeline).get(job.id) == "timeout"


def test_model_call_is_bounded_by_the_job_deadline(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
) -> None:
    # generation.timeout_ms is 9 s, but the job has about 3 s left: the remaining budget wins.
    # (3 s, not 1: on a loaded machine the stages before the model may use a whole second.)
    fake_model.behaviour.mode = "hang"
    pipeline = pipeline_for(
        sqlite_engine, repo_config, _remote(fake_model, repo_config), handbook_store, embedder
    )
    job = _submit(pipeline, deadline=timedelta(seconds=3))

    status, stored = _run(pipeline, job)

    assert status == JobStatus.ESCALATED
    assert stored.reason == "timeout"
    assert len(fake_model.behaviour.requests) == 1


@pytest.mark.parametrize(
    ("mode", "status"), [("error", 500), ("error", 503), ("garbage", 200), ("huge", 200)]
)
def test_model_failure_escalates_model_error(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
    mode: str,
    status: int,
) -> None:
    fake_model.behaviour.mode = mode
    fake_model.behaviour.status = status
    pipeline = pipeline_for(
        sqlite_engine, repo_config, _remote(fake_model, repo_config), handbook_store, embedder
    )
    job = _submit(pipeline)

    result, stored = _run(pipeline, job)

    assert result == JobStatus.ESCALATED
    assert stored.status == JobStatus.ESCALATED
    assert stored.reason == "model_error"
    assert stored.answer is None
    assert stored.error
    assert stored.index_version == "kb_v1"
    assert _review_reasons(pipeline).get(job.id) == "model_error"


# (g) ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        "Employees receive 25 days of paid annual leave.",
        "Employees receive 25 days of paid annual leave [9].",  # names no retrieved passage
    ],
)
def test_ungrounded_model_answer_is_escalated(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
    reply: str,
) -> None:
    fake_model.behaviour.reply = reply
    pipeline = pipeline_for(
        sqlite_engine, repo_config, _remote(fake_model, repo_config), handbook_store, embedder
    )
    job = _submit(pipeline)

    status, stored = _run(pipeline, job)

    # The output rule "no answer without a citation" routes it to a person, by rule id.
    assert status == JobStatus.ESCALATED
    assert stored.reason == "policy"
    assert stored.error is not None and stored.error.startswith("output.citation_missing:")
    assert stored.confidence == 0.0
    assert stored.citations == []
    assert stored.answer == reply
    assert _review_reasons(pipeline).get(job.id) == "policy"


# (h) ----------------------------------------------------------------------------------------


def test_expired_job_is_escalated_without_calling_the_model(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
) -> None:
    pipeline = pipeline_for(
        sqlite_engine, repo_config, _remote(fake_model, repo_config), handbook_store, embedder
    )
    job = _submit(pipeline, deadline=timedelta(milliseconds=1))
    time.sleep(0.05)

    status, stored = _run(pipeline, job)

    assert status == JobStatus.ESCALATED
    assert stored.reason == "timeout"
    assert stored.answer is None
    assert fake_model.behaviour.requests == []
    assert "generate" not in stored.stage_timings
    assert _review_reasons(pipeline).get(job.id) == "timeout"


# (i) ----------------------------------------------------------------------------------------


def test_answer_job_twice_runs_once(
    engine: Engine,
    repo_config: RaglineConfig,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
) -> None:
    pipeline = pipeline_for(
        engine, repo_config, _remote(fake_model, repo_config), handbook_store, embedder
    )
    job = _submit(pipeline)

    first, after_first = _run(pipeline, job)
    fake_model.behaviour.reply = "A different answer [2]."
    second, after_second = _run(pipeline, job)

    assert first == JobStatus.ANSWERED
    assert second is None
    assert len(fake_model.behaviour.requests) == 1
    assert after_second.status == JobStatus.ANSWERED
    assert after_second.answer == after_first.answer
    assert after_second.finished_at == after_first.finished_at
    assert after_second.attempts == after_first.attempts == 1
    assert after_second.citations == after_first.citations


def test_answer_job_unknown_id_returns_none(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
) -> None:
    pipeline = pipeline_for(
        sqlite_engine, repo_config, extractive(embedder), handbook_store, embedder
    )
    assert pipeline.answer_job("0" * 32) is None


# (j) ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "user_id"),
    [
        (LEAVE, None),  # require_user_id is true in ragline.yaml
        (LEAVE, "   "),
        ("?!? ...", "u-1"),
        ("x" * 6001, "u-1"),
    ],
)
def test_invalid_stored_question_is_rejected(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
    question: str,
    user_id: str | None,
) -> None:
    pipeline = pipeline_for(
        sqlite_engine, repo_config, _remote(fake_model, repo_config), handbook_store, embedder
    )
    job = _submit(pipeline, question, user_id=user_id)

    status, stored = _run(pipeline, job)

    assert status == JobStatus.REJECTED
    assert stored.status == JobStatus.REJECTED
    assert stored.reason == "invalid_input"
    assert stored.answer is None
    assert stored.error
    assert fake_model.behaviour.requests == []
    assert job.id not in _review_reasons(pipeline)


# (k) ----------------------------------------------------------------------------------------


def test_choose_model_without_endpoint_falls_back_to_extractive(
    tmp_path: Path, sqlite_engine: Engine, repo_config: RaglineConfig, embedder: Embedder
) -> None:
    assert repo_config.models["production-default"].provider == "openai_compatible"
    settings = Settings(model_base_url=None, data_dir=tmp_path)
    spec = effective_spec(settings, repo_config, "production-default")
    chosen = choose_model(
        settings, repo_config, repo_config.assistant_pipeline.generation.model, embedder
    )

    assert spec == ModelSpec(provider="extractive")
    assert spec.price.input_per_1k == spec.price.output_per_1k == 0.0  # costs nothing
    assert chosen.name == "production-default"
    assert chosen.spec == spec
    assert isinstance(chosen.generator, ExtractiveGenerator)
    assert chosen.generator.model_id == "extractive"


def test_choose_model_with_endpoint_calls_it(
    tmp_path: Path,
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    embedder: Embedder,
    handbook_store: KnowledgeStore,
    fake_model: FakeModelServer,
) -> None:
    settings = Settings(
        model_base_url=fake_model.base_url, model_api_key="sk-env", data_dir=tmp_path
    )
    spec = effective_spec(settings, repo_config, "production-default")
    chosen = choose_model(
        settings, repo_config, repo_config.assistant_pipeline.generation.model, embedder
    )

    assert spec == repo_config.models["production-default"]
    assert chosen.spec == spec
    assert isinstance(chosen.generator, OpenAICompatibleGenerator)
    assert chosen.generator.model_id == LLAMA

    pipeline = pipeline_for(sqlite_engine, repo_config, chosen, handbook_store, embedder)
    status, stored = _run(pipeline, _submit(pipeline))
    assert status == JobStatus.ANSWERED
    assert stored.model_id == LLAMA
    [sent] = fake_model.behaviour.requests
    assert sent["path"] == "/v1/chat/completions"
    headers = {k.lower(): v for k, v in sent["headers"].items()}
    assert headers["authorization"] == "Bearer sk-env"


def test_choose_model_extractive_model_ignores_endpoint(
    tmp_path: Path,
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    embedder: Embedder,
    fake_model: FakeModelServer,
) -> None:
    config = _variant(repo_config, generation={"model": "extractive"})
    settings = Settings(model_base_url=fake_model.base_url, data_dir=tmp_path)
    spec = effective_spec(settings, config, "extractive")
    chosen = choose_model(settings, config, config.assistant_pipeline.generation.model, embedder)

    assert spec.provider == "extractive"
    assert chosen.name == "extractive"
    assert isinstance(chosen.generator, ExtractiveGenerator)
    assert chosen.generator.model_id == "extractive"
    assert fake_model.behaviour.requests == []
