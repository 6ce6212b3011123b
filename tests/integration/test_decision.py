"""The answer-or-escalate decision on the real pipeline: the shipped scorer answers a handbook
question and escalates its near-miss twin with the signals that decided it; its version is
on the job, the trace and the API view; a model that says the passages do not answer is
escalated as no_answer; a missing scorer stops start-up."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from api.schemas import JobView
from ragline.bootstrap import Mode, Overrides, bootstrap
from ragline.config import RaglineConfig, parse_config
from ragline.errors import ConfigError
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.models import Job, JobStatus
from ragline.pipeline.generate import ChosenModel
from ragline.pipeline.providers.openai_compatible import OpenAICompatibleGenerator
from ragline.pipeline.runner import Pipeline
from ragline.pipeline.validate import JobRequest
from ragline.tracing import job_trace
from tests.support.fake_model import FakeModelServer
from tests.support.pipelines import extractive, pipeline_for, shipped_scorer
from tests.support.reviews import escalations
from tests.support.services import settings_for
from tests.support.tenants import make_tenant

ANSWERABLE = "How many days of paid annual leave does a full-time employee get each year?"
# The same passage, a constraint it never states.
NEAR_MISS = "How many days of paid annual leave does a full-time employee in Singapore get?"


def _ask(pipeline: Pipeline, question: str) -> Job:
    principal, _ = make_tenant(pipeline.jobs.engine, "acme")
    job, _ = pipeline.jobs.submit(
        JobRequest(question=question, user_id="u-1", feature="hr-bot"),
        account_id=principal.account_id,
        deadline=timedelta(seconds=30),
    )
    pipeline.answer_job(job.id)
    return pipeline.jobs.get(job.id)


@pytest.fixture
def pipeline(
    engine: Engine, repo_config: RaglineConfig, handbook_store: KnowledgeStore, embedder: Embedder
) -> Pipeline:
    return pipeline_for(engine, repo_config, extractive(embedder), handbook_store, embedder)


def test_the_answerable_twin_is_answered_and_the_near_miss_escalated_with_its_signals(
    pipeline: Pipeline,
) -> None:
    answered = _ask(pipeline, ANSWERABLE)
    near = _ask(pipeline, NEAR_MISS)
    scorer = shipped_scorer()

    assert answered.status == JobStatus.ANSWERED, answered.confidence_inputs
    assert answered.answer is not None and "25 days" in answered.answer
    assert near.status == JobStatus.ESCALATED, near.confidence_inputs["answerability"]
    assert near.reason == "low_confidence"
    assert escalations(pipeline.jobs.engine).get(near.id) == "low_confidence"

    decided = near.confidence_inputs["answerability"]
    assert decided["scorer_version"] == scorer.version
    assert decided["probability"] == near.confidence < decided["threshold"]
    assert decided["threshold"] == scorer.threshold("extractive", "hr-bot")
    assert "singapor" in decided["missing"]  # the stem of the constraint no passage states
    assert set(decided["signals"]) == set(scorer.signals)
    assert decided["evidence"]["text"]
    assert answered.confidence is not None and answered.confidence >= decided["threshold"]


def test_the_scorer_version_is_on_the_job_its_trace_and_its_api_view(pipeline: Pipeline) -> None:
    job = _ask(pipeline, ANSWERABLE)
    version = shipped_scorer().version

    assert job.scorer_version == version
    assert JobView.of(job).versions.scorer_version == version
    [score] = [s for s in job_trace(pipeline.jobs.engine, job) if s["name"] == "answerability"]
    assert score["attributes"]["scorer_version"] == version
    assert {"probability", "threshold", "signals"} <= set(score["attributes"])


def test_min_confidence_overrides_the_calibrated_threshold(
    engine: Engine, repo_config: RaglineConfig, handbook_store: KnowledgeStore, embedder: Embedder
) -> None:
    data = repo_config.model_dump()
    data["assistant_pipeline"]["fallback"]["min_confidence"] = 1.0
    strict = parse_config(data)
    pipeline = pipeline_for(engine, strict, extractive(embedder), handbook_store, embedder)

    job = _ask(pipeline, ANSWERABLE)

    assert job.status == JobStatus.ESCALATED and job.reason == "low_confidence"
    assert job.confidence_inputs["answerability"]["threshold"] == 1.0


@pytest.mark.parametrize(
    "reply",
    [
        "I cannot answer this from the knowledge base.",
        "The provided passages don't say whether contractors get annual leave.",
        "There is no information about leave in Singapore in the documents [1].",
    ],
)
def test_a_model_that_says_the_passages_do_not_answer_escalates_as_no_answer(
    engine: Engine,
    repo_config: RaglineConfig,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
    reply: str,
) -> None:
    fake_model.behaviour.reply = reply
    spec = repo_config.models["production-default"]
    model = ChosenModel(
        "production-default", spec, OpenAICompatibleGenerator(spec, fake_model.base_url)
    )
    pipeline = pipeline_for(engine, repo_config, model, handbook_store, embedder)

    job = _ask(pipeline, NEAR_MISS)

    assert job.status == JobStatus.ESCALATED
    assert job.reason == "no_answer"
    assert job.confidence == 0.0
    assert escalations(pipeline.jobs.engine).get(job.id) == "no_answer"


def test_a_missing_scorer_stops_the_process_before_any_job(
    sqlite_engine: Engine,
    repo_config: RaglineConfig,
    handbook_store: KnowledgeStore,
    embedder: Embedder,
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, scorers_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"answerability\.json cannot be read"):
        bootstrap(
            settings,
            Mode.WORKER,
            Overrides(
                config=repo_config,
                engine=sqlite_engine,
                store=handbook_store,
                embedder=embedder,
                send=print,
            ),
        )
