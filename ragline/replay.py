"""Replay: a stored job's question again, through another prompt version, model or index
version, next to what it got the first time. Nothing is stored or delivered and no budget
is charged (the model is called: the cost is shown); it is the operator's tool for "would
this have gone better with…?"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ragline import prompt_registry
from ragline.budget import cost_micros, from_micros
from ragline.errors import NotFound
from ragline.guardrails.grounding import GroundingChecker
from ragline.guardrails.pii import Placeholders
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.models import Job
from ragline.pipeline.confidence import score_confidence
from ragline.pipeline.generate import GenerationRequest
from ragline.pipeline.prompts import PromptTemplate
from ragline.pipeline.retrieve import Retriever
from ragline.runtime import Core, build_guardrails, build_index_manager, choose_model


@dataclass(frozen=True)
class Run:
    answer: str | None
    confidence: float | None
    prompt_version: str | None
    model_id: str | None
    index_version: str | None
    cited_documents: list[str]
    verdicts: list[str] = field(default_factory=list)
    cost: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def original(job: Job) -> Run:
    return Run(
        answer=job.answer,
        confidence=job.confidence,
        prompt_version=job.prompt_version,
        model_id=job.model_id,
        index_version=job.index_version,
        cited_documents=[c["document_id"] for c in job.citations],
        verdicts=[
            v["rule"] for stage in job.guardrails.values() for v in stage.get("verdicts", [])
        ],
    )


def replay(
    core: Core,
    store: KnowledgeStore,
    embedder: Embedder,
    job: Job,
    *,
    prompt: str | None = None,
    model: str | None = None,
    index: int | None = None,
) -> Run:
    """prompt: NAME or NAME@HASH (default: the job's own version); model: a models-table
    name (default: the configured one); index: a version number (default: the job's)."""
    config = core.config.assistant_pipeline
    folder = core.settings.prompts_dir
    reference = prompt or job.prompt_version or config.generation.prompt
    recorded = prompt_registry.resolve(core.engine, folder, reference)
    template = PromptTemplate(recorded.name, recorded.content)
    chosen = choose_model(core, model or config.generation.model, embedder)
    if index is not None:
        collection = build_index_manager(core, store, embedder).get(index).collection
    elif job.index_version:
        collection = job.index_version
    else:
        raise NotFound(f"job {job.id} has no index version; pass --index")
    retriever = Retriever(embedder, store, config.retrieval.mode)
    question = job.question  # as admitted: already redacted
    retrieval = retriever.retrieve(
        question, config.retrieval.source, config.retrieval.top_k, job.groups, collection=collection
    )
    rendered = template.render(question, retrieval.passages)
    generation = chosen.generator.generate(
        GenerationRequest(question, retrieval.passages, rendered, retrieval.question_vector),
        config.generation.timeout_ms / 1000,
    )
    guardrails = build_guardrails(core, embedder)
    output = guardrails.check_output(
        generation.text, generation.cited, Placeholders.continuing(question)
    )
    grounding = GroundingChecker(embedder).check(output.text, retrieval.passages)
    confidence = score_confidence(
        retrieval.passages,
        retrieval.question_vector,
        grounding,
        bool(generation.cited),
        embedder,
    )
    return Run(
        answer=output.text,
        confidence=confidence.value,
        prompt_version=template.version,
        model_id=generation.model_id,
        index_version=retrieval.index_version,
        cited_documents=[retrieval.passages[i].document_id for i in generation.cited],
        verdicts=[v.rule for v in output.verdicts],
        cost=from_micros(
            cost_micros(chosen.spec.price, generation.input_tokens, generation.output_tokens)
        ),
    )
