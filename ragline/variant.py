"""The production pipeline with another prompt version, model, index version or top_k
swapped in, answering jobs that are never stored: what replays and evaluations run, so
that "what would this triple have answered?" is answered by the very stages a worker runs.
Spend goes to an in-memory budget (ragline/evaluation/budget.py), never an account's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ragline import prompt_registry
from ragline.config import RaglineConfig
from ragline.errors import NotFound
from ragline.evaluation.budget import EvalBudget
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.models import Job, JobStatus, utcnow
from ragline.pipeline.prompts import PromptTemplate
from ragline.pipeline.retrieve import Retriever
from ragline.pipeline.runner import Pipeline
from ragline.runtime import Core, build_guardrails, build_index_manager, choose_model, load_scorer


@dataclass(frozen=True)
class Variant:
    """None means "as configured" (for the index: the version behind the alias)."""

    prompt: str | None = None  # NAME or NAME@HASH
    model: str | None = None  # a models-table name
    index: int | None = None  # an index version number
    collection: str | None = None  # or the collection itself (a job's recorded version)
    top_k: int | None = None
    scorer: str | None = None  # a scorer name or artifact path (decision.scorer)


def variant_pipeline(
    core: Core, store: KnowledgeStore, embedder: Embedder, variant: Variant, budget: EvalBudget
) -> Pipeline:
    config = _with_top_k(core.config, variant.top_k)
    pipeline = config.assistant_pipeline
    recorded = prompt_registry.resolve(
        core.engine, core.settings.prompts_dir, variant.prompt or pipeline.generation.prompt
    )
    model = variant.model or pipeline.generation.model
    if model not in config.models:
        known = ", ".join(sorted(config.models))
        raise NotFound(f"model '{model}' is not in the models table (known: {known})")
    index = build_index_manager(core, store, embedder)
    collection = variant.collection
    if variant.index is not None:
        collection = index.get(variant.index).collection
    elif collection is None and index.active_version() is None:
        raise NotFound(
            f"no index version is promoted behind '{index.alias}': promote one "
            "(`ragline index promote N`) or name one with --index N"
        )
    downgrade = config.budgets.downgrade_model
    fallback = pipeline.generation.fallback_model  # skipped by the runner if it is `model`
    return Pipeline(
        config=config,
        jobs=core.jobs,
        retriever=Retriever(embedder, store, pipeline.retrieval.mode),
        model=choose_model(core, model, embedder),
        prompt=PromptTemplate(recorded.name, recorded.content),
        budgets=budget,
        guardrails=build_guardrails(core, embedder),
        downgrade=choose_model(core, downgrade, embedder) if downgrade else None,
        collection=collection,
        fallback=choose_model(core, fallback, embedder) if fallback else None,
        scorer=load_scorer(core, variant.scorer),
    )


def transient_job(
    config: RaglineConfig,
    question: str,
    input_record: dict[str, Any],
    groups: list[str],
    feature: str | None,
    prefix: str = "eval",
) -> Job:
    """A job as admission would create it (question already admitted), never stored: no
    account, so no account budget is looked up or charged."""
    now = utcnow()
    return Job(
        id=f"{prefix}_{uuid.uuid4().hex[:24]}",
        account_id="",
        request_hash="",
        groups=list(groups),
        question=question,
        user_id=f"ragline-{prefix}",
        feature=feature,
        status=JobStatus.RUNNING,
        guardrails={"input": input_record} if input_record else {},
        created_at=now,
        deadline_at=now + timedelta(milliseconds=config.jobs.deadline_ms),
        attempts=1,
    )


def _with_top_k(config: RaglineConfig, top_k: int | None) -> RaglineConfig:
    if top_k is None:
        return config
    data = config.model_dump()
    data["assistant_pipeline"]["retrieval"]["top_k"] = top_k
    return RaglineConfig.model_validate(data)
