"""The composition root's building blocks: each process (server, worker, indexer) wires its
objects from these, once, at start-up. Nothing here runs at import time."""

from __future__ import annotations

from pathlib import Path

import httpx
import structlog

from ragline import prompt_registry
from ragline.budget import BudgetBook
from ragline.config import ModelSpec, RaglineConfig
from ragline.core import Core as Core
from ragline.core import build_core as build_core
from ragline.decision.scorer import DecisionScorer
from ragline.errors import ConfigError
from ragline.guardrails.layer import GuardrailLayer
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.knowledge.versions import IndexManager
from ragline.observability import install_log_scrubber
from ragline.otlp import OtlpExporter, parse_headers
from ragline.pipeline.generate import ChosenModel, Generator
from ragline.pipeline.prompts import PromptTemplate
from ragline.pipeline.providers.extractive import ExtractiveGenerator
from ragline.pipeline.providers.openai_compatible import OpenAICompatibleGenerator
from ragline.pipeline.retrieve import Retriever
from ragline.pipeline.runner import Pipeline
from ragline.settings import Settings

log = structlog.get_logger("ragline.runtime")


def open_store(settings: Settings) -> KnowledgeStore:
    api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    return KnowledgeStore.open(url=settings.qdrant_url, path=settings.qdrant_path, api_key=api_key)


def load_embedder(config: RaglineConfig) -> Embedder:
    return Embedder(config.knowledge.embedding_model)


def effective_spec(core: Core, name: str) -> ModelSpec:
    """The models-table entry as it will run: an openai_compatible model with no endpoint
    configured (RAGLINE_MODEL_BASE_URL unset) runs as the extractive provider, which costs
    nothing; the model id stored on each job is the one that actually answered."""
    spec = core.config.models[name]
    if spec.provider == "openai_compatible" and not core.settings.model_base_url:
        return ModelSpec(provider="extractive")
    return spec


def choose_model(
    core: Core, name: str, embedder: Embedder, http_client: httpx.Client | None = None
) -> ChosenModel:
    spec = effective_spec(core, name)
    if spec.provider == "openai_compatible":
        assert core.settings.model_base_url is not None
        key = core.settings.model_api_key
        generator: Generator = OpenAICompatibleGenerator(
            spec,
            core.settings.model_base_url,
            api_key=key.get_secret_value() if key else None,
            client=http_client,
        )
    else:
        if core.config.models[name].provider != "extractive":
            log.warning("model_endpoint_missing", model=name, using="extractive")
        generator = ExtractiveGenerator(embedder)
    return ChosenModel(name=name, spec=spec, generator=generator)


def scorer_path(core: Core, name: str | None = None) -> Path:
    """A scorer by name (scorers_dir/NAME.json) or by path (anything with a / or .json)."""
    name = name or core.config.decision.scorer
    if "/" in name or name.endswith(".json"):
        return Path(name)
    return core.settings.scorers_dir / f"{name}.json"


def load_scorer(core: Core, name: str | None = None) -> DecisionScorer:
    """The decision scorer, checked against the embedding model; any problem stops the
    process (ConfigError) rather than letting jobs through unscored."""
    return DecisionScorer.load(scorer_path(core, name), core.config.knowledge.embedding_model)


def build_guardrails(core: Core, embedder: Embedder | None) -> GuardrailLayer:
    """The process's guardrail layer; from now on every log line is scrubbed by it too."""
    layer = GuardrailLayer(core.config.assistant_pipeline.guardrails, embedder)
    install_log_scrubber(layer.scrub)
    return layer


def build_pipeline(
    core: Core,
    store: KnowledgeStore,
    embedder: Embedder,
    http_client: httpx.Client | None = None,
    guardrails: GuardrailLayer | None = None,
    scorer: DecisionScorer | None = None,
) -> Pipeline:
    generation = core.config.assistant_pipeline.generation
    downgrade = core.config.budgets.downgrade_model
    fallback = generation.fallback_model
    prompt = PromptTemplate.load(core.settings.prompts_dir, generation.prompt)
    prompt_registry.record(core.engine, prompt)
    pipeline = Pipeline(
        config=core.config,
        jobs=core.jobs,
        retriever=Retriever(embedder, store, core.config.assistant_pipeline.retrieval.mode),
        model=choose_model(core, generation.model, embedder, http_client),
        prompt=prompt,
        budgets=BudgetBook(core.engine, core.config.budgets),
        guardrails=guardrails or build_guardrails(core, embedder),
        downgrade=choose_model(core, downgrade, embedder, http_client) if downgrade else None,
        fallback=choose_model(core, fallback, embedder, http_client) if fallback else None,
        scorer=scorer or load_scorer(core),
    )
    if core.settings.otlp_endpoint:
        headers = core.settings.otlp_headers
        try:
            parsed = parse_headers(headers.get_secret_value() if headers else None)
        except ValueError as error:
            raise ConfigError(f"RAGLINE_OTLP_HEADERS: {error}") from None
        pipeline.exporter = OtlpExporter(core.settings.otlp_endpoint, parsed)
    return pipeline


def build_index_manager(
    core: Core, store: KnowledgeStore, embedder: Embedder | None
) -> IndexManager:
    return IndexManager(
        core.engine,
        store,
        embedder,
        core.config.knowledge,
        alias=core.config.assistant_pipeline.retrieval.source,
        retrieval_mode=core.config.assistant_pipeline.retrieval.mode,
    )
