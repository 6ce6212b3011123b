"""Building a Pipeline from parts a test chooses (its model, config and store)."""

from __future__ import annotations

from functools import cache

from sqlalchemy.engine import Engine

from ragline.budget import BudgetBook
from ragline.config import ModelSpec, RaglineConfig
from ragline.decision.scorer import DecisionScorer
from ragline.guardrails.layer import GuardrailLayer
from ragline.jobs import JobRepository
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.pipeline.generate import ChosenModel
from ragline.pipeline.prompts import PromptTemplate
from ragline.pipeline.providers.extractive import ExtractiveGenerator
from ragline.pipeline.retrieve import Retriever
from ragline.pipeline.runner import Pipeline
from tests.support.environment import REPO

SHIPPED_SCORER = REPO / "scorers" / "answerability.json"


@cache
def shipped_scorer() -> DecisionScorer:
    """The decision scorer the repository ships, as every process loads it."""
    return DecisionScorer.load(SHIPPED_SCORER, RaglineConfig().knowledge.embedding_model)


def extractive(embedder: Embedder) -> ChosenModel:
    """The extractive provider as the models table's `extractive` entry."""
    return ChosenModel(
        "extractive", ModelSpec(provider="extractive"), ExtractiveGenerator(embedder)
    )


def pipeline_for(
    engine: Engine,
    config: RaglineConfig,
    model: ChosenModel,
    store: KnowledgeStore,
    embedder: Embedder,
    downgrade: ChosenModel | None = None,
    fallback: ChosenModel | None = None,
    scorer: DecisionScorer | None = None,
) -> Pipeline:
    """scorer: default the shipped one, as in production."""
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
        scorer=scorer or shipped_scorer(),
    )
