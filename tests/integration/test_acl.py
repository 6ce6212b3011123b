"""Document ACLs: a chunk comes back only to callers whose groups meet its allowed_groups,
in the store's query, through the whole pipeline (the prompt sent to the model), and on the
demo handbook. Real Qdrant local mode, the MiniLM embedder and a real HTTP model server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.engine import Engine

from ragline.accounts import Principal
from ragline.admission import Admission
from ragline.config import Gate, RaglineConfig, SmokeQuery
from ragline.db import make_engine
from ragline.dispatch import Dispatcher
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.qdrant_store import QdrantStore
from ragline.knowledge.store import KnowledgeStore, Passage, RetrievalMode
from ragline.knowledge.versions import IndexManager
from ragline.models import Job
from ragline.pipeline.generate import ChosenModel
from ragline.pipeline.providers.openai_compatible import OpenAICompatibleGenerator
from ragline.pipeline.retrieve import Retriever
from ragline.pipeline.runner import Pipeline
from ragline.pipeline.validate import JobRequest
from ragline.schema import create_schema
from tests.support.fake_model import FakeModelServer
from tests.support.pipelines import pipeline_for
from tests.support.tenants import make_tenant

PUBLIC = "finance/bonus-policy"
RESTRICTED = "finance/bonus-pool-2025"
QUESTION = "How large is the bonus pool and who approves large bonuses?"
# Sentences only the restricted document holds: none may reach an unauthorised prompt.
SECRETS = (
    "The 2025 bonus pool is 4.2 million EUR",
    "Individual bonuses above 20,000 EUR need the approval of the CFO",
    "The engineering department receives 38% of the bonus pool",
)

CORPUS = {
    f"{PUBLIC}.md": """# Bonus Policy

## How bonuses work

Employees may receive a yearly performance bonus. Bonuses are paid with the March salary and
depend on the company's results and on individual goals.

## Eligibility

Employees who joined before 1 October are eligible for that year's bonus.
""",
    f"{RESTRICTED}.md": f"""---
title: Bonus Pool 2025
allowed_groups: [finance]
---
# Bonus Pool 2025

## Size of the bonus pool

{SECRETS[0]}, 9% of the operating profit. {SECRETS[1]}.

## Allocation of the bonus pool

{SECRETS[2]} and sales receives 27%.
""",
    "hr/leave.md": """# Annual Leave

## Entitlement

Every full-time employee receives 25 days of paid annual leave per calendar year.
""",
}


@dataclass
class AclIndex:
    store: KnowledgeStore
    alias: str
    chunks: dict[str, set[str]]  # document id -> its chunk ids


@pytest.fixture(scope="module")
def acl_index(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, repo_config: RaglineConfig
) -> Iterator[AclIndex]:
    root = tmp_path_factory.mktemp("acl")
    docs = root / "docs"
    for name, text in CORPUS.items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(text, encoding="utf-8")
    store = QdrantStore.open(path=root / "qdrant")
    engine = make_engine(f"sqlite:///{root / 'manifest.db'}")
    create_schema(engine)
    gate = Gate(
        smoke_top_k=1,
        smoke_queries=[
            SmokeQuery(question=QUESTION, expected_documents=[RESTRICTED], groups=["finance"]),
            SmokeQuery(question=QUESTION, expected_documents=[PUBLIC], groups=["everyone"]),
        ],
    )
    knowledge = repo_config.knowledge.model_copy(update={"gate": gate})
    alias = repo_config.assistant_pipeline.retrieval.source
    manager = IndexManager(engine, store, embedder, knowledge, alias=alias)
    built = manager.build(docs)
    assert built.checks["passed"], built.checks
    manager.promote(built.version)
    chunks: dict[str, set[str]] = {}
    for payload, _ in store.points(built.collection, with_vectors=False):
        chunks.setdefault(str(payload["document_id"]), set()).add(str(payload["chunk_id"]))
    assert set(chunks) == {PUBLIC, RESTRICTED, "hr/leave"}
    try:
        yield AclIndex(store, alias, chunks)
    finally:
        store.close()
        engine.dispose()


def _all(index: AclIndex, *documents: str) -> set[str]:
    return set().union(*(index.chunks[d] for d in documents))


def _retrieve(
    index: AclIndex,
    embedder: Embedder,
    groups: tuple[str, ...],
    mode: RetrievalMode = "dense",
    question: str = QUESTION,
) -> list[Passage]:
    top_k = 1000  # larger than the collection: nothing is cut by ranking, only by the filter
    retriever = Retriever(embedder, index.store, mode)
    retrieval = retriever.retrieve(question, index.alias, top_k, groups)
    assert retrieval.index_version == "kb_v1"
    return retrieval.passages


# -- retrieval, in every mode ----------------------------------------------------------------
# Dense search ranks every chunk the filter lets through; sparse only those sharing a term
# with the question, so in sparse mode the expected sets are upper bounds.

MODES = ["dense", "sparse", "hybrid"]


def _check_visible(
    passages: list[Passage], visible: set[str], mode: RetrievalMode, *, must: set[str]
) -> None:
    found = {p.chunk_id for p in passages}
    assert found <= visible, mode
    assert must <= found, mode
    if mode != "sparse":
        assert found == visible, mode


@pytest.mark.parametrize("mode", MODES)
def test_everyone_never_sees_the_restricted_document(
    acl_index: AclIndex, embedder: Embedder, mode: RetrievalMode
) -> None:
    passages = _retrieve(acl_index, embedder, ("everyone",), mode)

    _check_visible(
        passages, _all(acl_index, PUBLIC, "hr/leave"), mode, must=acl_index.chunks[PUBLIC]
    )
    assert passages[0].document_id == PUBLIC
    for passage in passages:
        assert passage.document_id != RESTRICTED
        assert not any(secret in passage.text for secret in SECRETS)


@pytest.mark.parametrize("mode", MODES)
def test_finance_sees_the_restricted_document(
    acl_index: AclIndex, embedder: Embedder, mode: RetrievalMode
) -> None:
    passages = _retrieve(acl_index, embedder, ("finance",), mode)

    restricted = acl_index.chunks[RESTRICTED]
    _check_visible(passages, restricted, mode, must=restricted)
    assert all(secret in " ".join(p.text for p in passages) for secret in SECRETS)


@pytest.mark.parametrize("mode", MODES)
def test_both_groups_see_both_and_the_restricted_document_ranks_first(
    acl_index: AclIndex, embedder: Embedder, mode: RetrievalMode
) -> None:
    passages = _retrieve(acl_index, embedder, ("everyone", "finance"), mode)

    both = acl_index.chunks[PUBLIC] | acl_index.chunks[RESTRICTED]
    _check_visible(passages, _all(acl_index, PUBLIC, RESTRICTED, "hr/leave"), mode, must=both)
    # The restricted document is the best match: for "everyone" it was filtered, not outranked.
    assert passages[0].document_id == RESTRICTED


@pytest.mark.parametrize("mode", MODES)
def test_no_groups_or_an_unknown_group_sees_nothing(
    acl_index: AclIndex, embedder: Embedder, mode: RetrievalMode
) -> None:
    assert _retrieve(acl_index, embedder, (), mode) == []
    assert _retrieve(acl_index, embedder, ("sales",), mode) == []


# -- the whole pipeline ----------------------------------------------------------------------


def _pipeline(
    engine: Engine,
    config: RaglineConfig,
    store: KnowledgeStore,
    embedder: Embedder,
    fake_model: FakeModelServer,
) -> Pipeline:
    spec = config.models["production-default"]
    assert spec.provider == "openai_compatible"
    model = ChosenModel(
        "production-default", spec, OpenAICompatibleGenerator(spec, fake_model.base_url)
    )
    return pipeline_for(engine, config, model, store, embedder)


def _ask(
    pipeline: Pipeline, config: RaglineConfig, principal: Principal, fake_model: FakeModelServer
) -> tuple[Job, str]:
    """Admit a job for this key, run it; (the stored job, the prompt the model received)."""
    sent: list[str] = []
    admission = Admission(
        config,
        pipeline.jobs,
        Dispatcher(pipeline.jobs, sent.append),
        pipeline.budgets,
        config.models["production-default"],
        pipeline.guardrails,
    )
    job, created = admission.submit(
        principal, JobRequest(question=QUESTION, user_id="u-7", feature="finance-bot")
    )
    assert created and sent == [job.id]
    fake_model.behaviour.requests.clear()
    pipeline.answer_job(job.id)
    stored = pipeline.jobs.get(job.id)
    assert fake_model.behaviour.requests, (
        f"the model was not called: {stored.status} {stored.error}"
    )
    messages = fake_model.behaviour.requests[-1]["body"]["messages"]
    return stored, "\n".join(str(m["content"]) for m in messages)


def test_a_job_sees_only_what_its_key_may_see(
    engine: Engine,
    repo_config: RaglineConfig,
    acl_index: AclIndex,
    embedder: Embedder,
    fake_model: FakeModelServer,
) -> None:
    fake_model.behaviour.reply = "Bonuses are paid with the March salary [1]."
    pipeline = _pipeline(engine, repo_config, acl_index.store, embedder, fake_model)
    everyone, _ = make_tenant(engine, "acme", groups=("everyone",))
    finance, _ = make_tenant(engine, "acme", groups=("finance",))

    job, prompt = _ask(pipeline, repo_config, everyone, fake_model)

    assert job.groups == ["everyone"]
    assert job.index_version == "kb_v1"
    assert QUESTION in prompt and "March salary" in prompt  # passages did reach the prompt
    for secret in SECRETS:
        assert secret not in prompt
    assert "Bonus Pool 2025" not in prompt
    assert job.passages
    assert {p["document_id"] for p in job.passages}.isdisjoint({RESTRICTED})
    assert {p["chunk_id"] for p in job.passages}.isdisjoint(acl_index.chunks[RESTRICTED])

    job, prompt = _ask(pipeline, repo_config, finance, fake_model)

    assert job.groups == ["finance"]
    assert all(secret in prompt for secret in SECRETS)
    assert {p["chunk_id"] for p in job.passages} == acl_index.chunks[RESTRICTED]
    assert "March salary" not in prompt  # the public document is for "everyone" only


# -- the demo handbook ---------------------------------------------------------------------

DISCOUNT = "What discount can a sales rep give without approval?"
SALES_ONLY = "product/sales-discount-approval"


def test_handbook_sales_discounts_are_for_sales_only(
    handbook_store: KnowledgeStore, embedder: Embedder, repo_config: RaglineConfig
) -> None:
    retriever = Retriever(embedder, handbook_store)
    alias = repo_config.assistant_pipeline.retrieval.source

    for top_k in (repo_config.assistant_pipeline.retrieval.top_k, 1000):
        public = retriever.retrieve(DISCOUNT, alias, top_k, ("everyone",)).passages
        assert public, top_k
        assert SALES_ONLY not in {p.document_id for p in public}, top_k
        assert not any("the account executive may offer this" in p.text for p in public)

    sales = retriever.retrieve(DISCOUNT, alias, 5, ("sales",)).passages
    assert sales[0].document_id == SALES_ONLY
    assert {p.document_id for p in sales} == {SALES_ONLY}
    both = retriever.retrieve(DISCOUNT, alias, 5, ("everyone", "sales")).passages
    assert both[0].document_id == SALES_ONLY
