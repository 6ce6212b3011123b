"""Building a Pipeline from parts a test chooses (its model, config and store)."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from ragline.budget import BudgetBook
from ragline.config import RaglineConfig
from ragline.guardrails.layer import GuardrailLayer
from ragline.jobs import JobRepository
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.pipeline.generate import ChosenModel
from ragline.pipeline.prompts import PromptTemplate
from ragline.pipeline.retrieve import Retriever
from ragline.pipeline.runner import Pipeline
from tests.conftest import REPO


def pipeline_for(
    engine: Engine,
    config: RaglineConfig,
    model: ChosenModel,
    store: KnowledgeStore,
    embedder: Embedder,
    downgrade: ChosenModel | None = None,
    fallback: ChosenModel | None = None,
) -> Pipeline:
    guardrails = GuardrailLayer(config.assistant_pipeline.guardrails, embedder)
    return Pipeline(
        config=config,
        jobs=JobRepository(engine),
        retriever=Retriever(embedder, store, config.assistant_pipeline.retrieval.mode),
        model=model,
        prompt=PromptTemplate.load(REPO / "prompts", "answer"),
        budgets=BudgetBook(engine, config.budgets),
        guardrails=guardrails,
        downgrade=downgrade,
        fallback=fallback,
    )
