"""The seeded PII corpus (tests/data/pii_corpus.jsonl) through the whole pipeline, wired as
the processes wire it (ragline.bootstrap: pipeline, admission, the model over HTTP): not one
seeded value may appear in what the model received, the stored job and review rows, the
API's views or the log lines. The fake model echoes every value back, as a model that had
seen them would, so output redaction is tested too."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import structlog
from sqlmodel import Session, select

from api.schemas import JobView, ReviewView
from ragline.bootstrap import Services
from ragline.config import RaglineConfig
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore, Passage
from ragline.models import Job, ReviewItem
from ragline.observability import configure_logging
from ragline.pipeline.validate import JobRequest
from tests.support.environment import REPO
from tests.support.fake_model import FakeModelServer
from tests.support.tenants import make_tenant

CORPUS = [json.loads(line) for line in (REPO / "tests/data/pii_corpus.jsonl").open()]


@pytest.fixture
def core(modelled: Services) -> Services:
    return modelled


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The processes' logging set-up (JSON, scrubbed), written to a buffer."""
    buffer = io.StringIO()
    configure_logging("INFO", "json", stream=buffer)
    yield buffer
    structlog.reset_defaults()


def test_the_corpus_seeds_every_entity_type() -> None:
    assert len(CORPUS) >= 50
    text = " ".join(row["question"] for row in CORPUS)
    for marker in ("@", "EMP-", "+44", "DE", "GB", ":"):
        assert marker in text


def test_no_seeded_value_reaches_the_model_the_store_the_api_or_the_logs(
    core: Services,
    embedder: Embedder,
    handbook_store: KnowledgeStore,
    fake_model: FakeModelServer,
    json_logs: io.StringIO,
) -> None:
    pipeline, admission = core.need_pipeline(), core.admission
    assert admission is not None
    principal, _ = make_tenant(core.engine)
    seeded = {value for row in CORPUS for value in row["values"]}
    job_ids = []
    for row in CORPUS:
        # A model that had seen the values would repeat them: output redaction must catch it.
        fake_model.behaviour.reply = (
            "Report it to your manager [1]. On file: " + ", ".join(row["values"]) + " [1]."
        )
        job, _ = admission.submit(
            principal, JobRequest(question=row["question"], user_id="u-1", feature="pii")
        )
        pipeline.answer_job(job.id)
        job_ids.append(job.id)

    with Session(core.engine) as session:
        jobs = session.exec(select(Job)).all()
        reviews = session.exec(select(ReviewItem)).all()
        stored = json.dumps([j.model_dump(mode="json") for j in jobs]) + json.dumps(
            [r.model_dump(mode="json") for r in reviews]
        )
        views = json.dumps([JobView.of(j).model_dump(mode="json") for j in jobs])
        jobs_by_id = {j.id: j for j in jobs}
        views += json.dumps(
            [ReviewView.of(r, jobs_by_id[r.job_id]).model_dump(mode="json") for r in reviews]
        )
    prompts = json.dumps(fake_model.behaviour.requests)
    logged = json_logs.getvalue()

    assert len(jobs) == len(CORPUS) and len(fake_model.behaviour.requests) >= len(CORPUS) - 5
    assert '"event": "job_finished"' in logged  # the logs were captured
    leaks = {
        where: sorted(v for v in seeded if v in text)
        for where, text in {
            "prompts": prompts,
            "stored rows": stored,
            "api views": views,
            "logs": logged,
        }.items()
    }
    assert leaks == {"prompts": [], "stored rows": [], "api views": [], "logs": []}
    # The answers still read: values became typed placeholders, counted per job.
    answered = [j for j in jobs if j.answer]
    assert all("<" in j.answer for j in answered)
    assert all(j.guardrails["input"]["redacted"] for j in jobs)
    assert sum(bool(j.guardrails.get("output", {}).get("redacted")) for j in jobs) == len(answered)


def test_a_value_keeps_its_placeholder_from_question_to_answer(
    core: Services,
    embedder: Embedder,
    handbook_store: KnowledgeStore,
    fake_model: FakeModelServer,
) -> None:
    pipeline = core.need_pipeline()
    question = (
        "I am jane.doe@acme-corp.com, card 4111 1111 1111 1111 was charged twice: "
        "how do I dispute a charge?"
    )
    admitted = pipeline.guardrails.admit(question)
    assert admitted.text == (
        "I am <EMAIL_1>, card <CREDIT_CARD_1> was charged twice: how do I dispute a charge?"
    )
    principal, _ = make_tenant(core.engine)
    job, _ = core.jobs.submit(
        JobRequest(question=admitted.text, user_id="u-1"),
        account_id=principal.account_id,
        deadline=timedelta(seconds=30),
        guardrails={"input": admitted.record},
    )
    # The model saw only placeholders; it answers with one and adds an address of its own.
    fake_model.behaviour.reply = (
        "Open a dispute with billing [1]; we will write to <EMAIL_1> and copy bob@example.org [1]."
    )
    pipeline.answer_job(job.id)
    stored = core.jobs.get(job.id)
    sent = json.dumps(fake_model.behaviour.requests[-1]["body"])
    assert "<EMAIL_1>" in sent and "<CREDIT_CARD_1>" in sent
    assert "jane.doe" not in sent and "4111" not in sent
    # The new address continues the job's numbering instead of colliding with <EMAIL_1>.
    assert stored.answer == (
        "Open a dispute with billing [1]; we will write to <EMAIL_1> and copy <EMAIL_2> [1]."
    )
    assert stored.guardrails["input"]["redacted"] == {"EMAIL": 1, "CREDIT_CARD": 1}
    assert stored.guardrails["output"]["redacted"] == {"EMAIL": 1}


def test_passages_of_configured_documents_are_redacted_before_the_prompt(
    repo_config: RaglineConfig, embedder: Embedder
) -> None:
    from ragline.config import parse_config
    from ragline.guardrails.layer import GuardrailLayer
    from ragline.guardrails.pii import Placeholders

    data = repo_config.model_dump()
    data["assistant_pipeline"]["guardrails"]["pii"]["passage_documents"] = ["crm/*"]
    layer = GuardrailLayer(parse_config(data).assistant_pipeline.guardrails, embedder)
    passages = [
        Passage(
            "crm/acme#0", "crm/acme", "Acme", "crm", "Acme > Contact\nCall +1 415-555-0132.", 0.8
        ),
        Passage("hr/x#0", "hr/x", "X", "hr", "X > Y\nCall +1 415-555-0132.", 0.7),
    ]
    guarded, counts = layer.guard_passages(passages, Placeholders())
    assert guarded[0].text == "Acme > Contact\nCall <PHONE_1>."
    assert guarded[1].text == passages[1].text  # not a configured document: approved content
    assert counts == {"PHONE": 1}
