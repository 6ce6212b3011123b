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
from ragline.bootstrap import Services, Swap, assemble_pipeline, load_scorer
from ragline.config import RaglineConfig
from ragline.errors import NotFound
from ragline.evaluation.budget import EvalBudget
from ragline.models import Job, JobStatus, utcnow
from ragline.pipeline.prompts import PromptTemplate
from ragline.pipeline.runner import Pipeline


@dataclass(frozen=True)
class Variant:
    """None means "as configured" (for the index: the version behind the alias)."""

    prompt: str | None = None  # NAME or NAME@HASH
    model: str | None = None  # a models-table name
    index: int | None = None  # an index version number
    collection: str | None = None  # or the collection itself (a job's recorded version)
    top_k: int | None = None
    scorer: str | None = None  # a scorer name or artifact path (decision.scorer)


def variant_pipeline(services: Services, variant: Variant, budget: EvalBudget) -> Pipeline:
    """Needs a process that embeds (Mode.EVALUATE, WORKER or EMBEDDED)."""
    config = _with_top_k(services.config, variant.top_k)
    generation = config.assistant_pipeline.generation
    recorded = prompt_registry.resolve(
        services.engine, services.settings.prompts_dir, variant.prompt or generation.prompt
    )
    model = variant.model or generation.model
    if model not in config.models:
        known = ", ".join(sorted(config.models))
        raise NotFound(f"model '{model}' is not in the models table (known: {known})")
    index = services.index
    if index is None:
        raise RuntimeError(f"{services.mode} mode opens no index versions")
    collection = variant.collection
    if variant.index is not None:
        collection = index.get(variant.index).collection
    elif collection is None and index.active_version() is None:
        raise NotFound(
            f"no index version is promoted behind '{index.alias}': promote one "
            "(`ragline index promote N`) or name one with --index N"
        )
    swap = Swap(config, model, PromptTemplate(recorded.name, recorded.content), collection)
    scorer = load_scorer(services.settings, config, variant.scorer)
    return assemble_pipeline(services, budget, scorer, swap)


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
