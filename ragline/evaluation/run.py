"""`ragline eval run`: a dataset through the real pipeline with a chosen prompt version,
model and index version, scored item by item and stored as a run.

Each question is admitted as the API admits it (PII redaction, credentials) and answered by
`Pipeline.run`, the same stages a worker runs, on a job that never reaches the jobs table:
nothing is queued, delivered or sent to review, and the model spend is charged to the run's
own budget (`evaluation.budget`), never an account's."""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlmodel import Session, col, select

from ragline.bootstrap import Services
from ragline.budget import to_micros
from ragline.errors import InvalidInput, NotFound
from ragline.evaluation.budget import EvalBudget, EvalBudgetSpent
from ragline.evaluation.dataset import EvalItem
from ragline.evaluation.metrics import (
    must_include,
    ndcg_at_k,
    recall_at_k,
    reciprocal_rank,
    token_f1,
)
from ragline.evaluation.summary import summarise
from ragline.models import EvalRun, JobStatus
from ragline.variant import Variant, transient_job, variant_pipeline


def dataset_hash(items: list[EvalItem]) -> str:
    digest = hashlib.sha256()
    for item in items:
        digest.update(item.model_dump_json().encode())
    return digest.hexdigest()[:16]


def run_evaluation(
    services: Services,
    items: list[EvalItem],
    *,
    dataset: str,
    variant: Variant = Variant(),
    name: str = "",
    on_item: Callable[[int, int], None] | None = None,
) -> EvalRun:
    """Every item through the pipeline; the run is stored (also when the budget stops it
    early: then `complete` is False and the items done so far are kept). Needs a process
    that embeds (Mode.EVALUATE)."""
    if not items:
        raise InvalidInput("the dataset holds no questions", field="dataset")
    settings = services.config.evaluation
    cap = None if settings.budget is None else to_micros(settings.budget)
    budget = EvalBudget(cap, services.config.budgets.per_request, services.engine, "eval")
    pipeline = variant_pipeline(services, variant, budget)
    ask = functools.partial(
        transient_job, pipeline.config, groups=settings.groups, feature=settings.feature
    )
    # One question first, not scored: lazy loads (the PII engine, the index's lexical
    # vocabulary) would otherwise land in the first item's latency.
    results: list[dict[str, Any]] = []
    note = None
    todo = items
    try:
        warm = pipeline.guardrails.admit(items[0].question)
        pipeline.run(ask(warm.text, warm.record))
    except EvalBudgetSpent as error:
        note = f"stopped before the first item: {error}"
        todo = []
    budget.by_job.clear()
    for number, item in enumerate(todo, start=1):
        admitted = pipeline.guardrails.admit(item.question)
        job = ask(admitted.text, admitted.record)
        try:
            outcome = pipeline.run(job)
        except EvalBudgetSpent as error:
            note = f"stopped after {number - 1} of {len(items)} items: {error}"
            break
        results.append(
            score_item(
                item,
                question=admitted.text,
                status=outcome.status.value,
                reason=outcome.reason,
                answer=outcome.answer,
                documents=[p["document_id"] for p in outcome.passages],
                latency_ms=sum(outcome.stage_timings.values()),
                cost=budget.by_job.get(job.id, 0) / 1_000_000,
                confidence=outcome.confidence,
                index_version=outcome.index_version,
                signals=outcome.confidence_inputs.get("answerability", {}).get("signals"),
            )
        )
        if on_item is not None:
            on_item(number, len(items))
    # An item rejected at input never reaches retrieval: name the version any item used.
    index_version = next(
        (r["index_version"] for r in results if r["index_version"]), pipeline.collection
    )
    run = EvalRun(
        id=f"ev_{uuid.uuid4().hex[:12]}",
        name=name,
        dataset=dataset,
        dataset_hash=dataset_hash(items),
        complete=note is None,
        subject={
            "prompt_version": pipeline.prompt.version,
            "model": pipeline.model.name,
            "model_id": pipeline.model.generator.model_id,
            "index_version": index_version,
            "top_k": pipeline.config.assistant_pipeline.retrieval.top_k,
            "retrieval_mode": pipeline.retriever.mode,
            "min_confidence": pipeline.config.assistant_pipeline.fallback.min_confidence,
            "scorer_version": None if pipeline.scorer is None else pipeline.scorer.version,
            "threshold": pipeline.threshold(pipeline.model.name, settings.feature),
        },
        summary=summarise(results),
        items=results,
        note=note,
    )
    save_run(services, run)
    return run


def score_item(
    item: EvalItem,
    *,
    question: str,
    status: str,
    reason: str | None,
    answer: str | None,
    documents: list[str],
    latency_ms: float,
    cost: float,
    confidence: float | None = None,
    index_version: str | None = None,
    signals: dict[str, float] | None = None,
) -> dict[str, Any]:
    """One item's result with its metric values; a metric the item has no gold data for is
    absent, not zero, so averages only cover the items that can be scored."""
    ranked = list(dict.fromkeys(documents))  # chunk hits to documents, best chunk first
    scores: dict[str, float] = {
        "escalation_rate": float(status == JobStatus.ESCALATED),
        "latency_ms": round(latency_ms, 3),
        "cost_per_job": cost,
    }
    if item.relevance:
        scores["ndcg@10"] = ndcg_at_k(ranked, item.relevance, 10)
        scores["recall@10"] = recall_at_k(ranked, item.relevance, 10)
        scores["mrr"] = reciprocal_rank(ranked, item.relevance)
    # Answer metrics score the draft, also when the job went to review: a reviewer starts
    # from it. A job that never reached the model has no draft and scores 0.
    if item.gold_answer:
        scores["token_f1"] = token_f1(answer or "", item.gold_answer)
    if item.must_include:
        scores["must_include"] = must_include(answer or "", item.must_include)
    if item.expected is not None:
        scores["outcome_accuracy"] = float(status == item.expected)
    return {
        "id": item.id,
        "question": question,  # as admitted: redacted
        "tags": list(item.tags),
        "expected": item.expected,
        "status": status,
        "reason": reason,
        "confidence": confidence,
        "answer": answer,
        "documents": ranked[:10],
        "index_version": index_version,
        "scores": scores,
        # What the decision scorer read: `ragline calibrate` can refit from a stored run.
        "signals": signals,
    }


# -- storage ------------------------------------------------------------------------------------


def save_run(services: Services, run: EvalRun) -> None:
    with Session(services.engine, expire_on_commit=False) as session:
        session.add(run)
        session.commit()


def list_runs(services: Services, limit: int = 50) -> list[EvalRun]:
    with Session(services.engine) as session:
        statement = select(EvalRun).order_by(col(EvalRun.created_at).desc()).limit(limit)
        return list(session.exec(statement))


def load_run(services: Services, reference: str) -> EvalRun:
    """A stored run by id, or a run exported with `--out` (a path to a .json file)."""
    path = Path(reference)
    if reference.endswith(".json") or path.is_file():
        try:
            exported = ExportedRun.model_validate_json(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise NotFound(f"run file {reference}: {error.strerror}") from None
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}"
                for e in error.errors()[:3]
            )
            raise InvalidInput(
                f"run file {reference} is not an exported run: {problems}", field="run"
            ) from None
        return EvalRun(**exported.model_dump())
    with Session(services.engine, expire_on_commit=False) as session:
        run = session.get(EvalRun, reference)
    if run is None:
        raise NotFound(f"evaluation run {reference} not found (`ragline eval list` shows them)")
    return run


class ExportedRun(BaseModel):
    """The file `eval run --out` writes, validated on the way back in (a table model
    is not validated on construction)."""

    id: str
    name: str = ""
    dataset: str
    dataset_hash: str
    complete: bool
    subject: dict[str, Any]
    summary: dict[str, Any]
    items: list[dict[str, Any]]
    note: str | None = None
    created_at: datetime


def export_run(run: EvalRun) -> str:
    return run.model_dump_json(indent=1)
