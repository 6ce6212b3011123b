"""Replay: a stored job's question through another prompt version and model, side by side,
without storing, delivering or charging anything."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from ragline.bootstrap import Services
from ragline.errors import NotFound
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.models import Job, UsageRecord
from ragline.pipeline.prompts import PromptTemplate
from ragline.pipeline.validate import JobRequest
from ragline.prompt_registry import record
from ragline.replay import original, replay
from tests.support.environment import REPO
from tests.support.fake_model import FakeModelServer
from tests.support.tenants import make_tenant

QUESTION = "How many days of annual leave do employees get?"


@pytest.fixture
def core(modelled: Services) -> Services:
    return modelled


def _answered_job(core: Services) -> Job:
    pipeline = core.need_pipeline()
    principal, _ = make_tenant(core.engine)
    job, _ = core.jobs.submit(
        JobRequest(question=QUESTION, user_id="u-1"),
        account_id=principal.account_id,
        deadline=timedelta(seconds=30),
    )
    pipeline.answer_job(job.id)
    return core.jobs.get(job.id)


def _calls(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(UsageRecord)).one())


def test_a_job_replays_with_another_prompt_version_and_model(
    core: Services, handbook_store: KnowledgeStore, embedder: Embedder, fake_model: FakeModelServer
) -> None:
    fake_model.behaviour.reply = "Employees get 25 days of paid annual leave [1]."
    job = _answered_job(core)
    assert job.status == "answered" and job.model_id == "meta-llama/Llama-3.1-8B-Instruct"
    source = (REPO / "prompts" / "answer.j2").read_text()
    edited = PromptTemplate(
        "answer", source.replace("{% block system %}", "{% block system %}TERSE. ", 1)
    )
    record(core.engine, edited)
    usage_before = _calls(core.engine)
    fake_model.behaviour.reply = "25 days [1]."
    fake_model.behaviour.requests.clear()

    again = replay(core, job, prompt=edited.version)

    before = original(job)
    assert again.versions.prompt_version == edited.version != before.versions.prompt_version
    assert again.versions.index_version == before.versions.index_version == "kb_v1"
    assert again.versions.model_id == before.versions.model_id
    assert again.answer == "25 days [1]." and before.answer != again.answer
    assert again.cited_documents == ["hr/annual-leave"]
    sent = fake_model.behaviour.requests[-1]["body"]["messages"][0]["content"]
    assert sent.startswith("TERSE.")
    assert again.cost > 0
    # The job is as it was; the call is in the ledger as a replay's, charged to no account.
    assert core.jobs.get(job.id).answer == job.answer
    assert _calls(core.engine) == usage_before + 1
    replayed = {row["kind"]: row for row in core.budgets.usage("kind")}["replay"]
    assert replayed["calls"] == 1 and replayed["cost"] == pytest.approx(again.cost, abs=1e-9)
    assert core.budgets.usage("account", account_id=job.account_id)[0]["calls"] == 1


def test_an_unknown_prompt_version_or_index_is_not_found(
    core: Services, handbook_store: KnowledgeStore, embedder: Embedder
) -> None:
    job = _answered_job(core)
    with pytest.raises(NotFound, match="answer@000000000000"):
        replay(core, job, prompt="answer@000000000000")
    with pytest.raises(NotFound):
        replay(core, job, index=99)
