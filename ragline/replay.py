"""Replay: a stored job's question again, through another prompt version, model or index
version, next to what it got the first time. It runs the pipeline's own stages
(ragline/variant.py) on a copy of the job that is never stored: nothing is delivered and no
account budget is charged (the model is called: the cost is shown). It is the operator's
tool for "would this have gone better with…?"."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ragline.bootstrap import Services
from ragline.errors import NotFound
from ragline.evaluation.budget import EvalBudget
from ragline.jobs import Outcome
from ragline.models import Job
from ragline.provenance import Versions
from ragline.variant import Variant, transient_job, variant_pipeline


@dataclass(frozen=True)
class Run:
    answer: str | None
    confidence: float | None
    versions: Versions
    cited_documents: list[str]
    verdicts: list[str] = field(default_factory=list)
    status: str | None = None
    reason: str | None = None
    cost: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Flat: the versions beside the other fields (`ragline replay --json`)."""
        flat = {k: v for k, v in self.__dict__.items() if k != "versions"}
        return {**flat, **self.versions.as_dict()}


def _verdicts(guardrails: dict[str, Any]) -> list[str]:
    return [v["rule"] for stage in guardrails.values() for v in stage.get("verdicts", [])]


def original(job: Job) -> Run:
    return Run(
        answer=job.answer,
        confidence=job.confidence,
        versions=Versions.of(job),
        cited_documents=[c["document_id"] for c in job.citations],
        verdicts=_verdicts(job.guardrails),
        status=job.status,
        reason=job.reason,
    )


def replay(
    services: Services,
    job: Job,
    *,
    prompt: str | None = None,
    model: str | None = None,
    index: int | None = None,
    scorer: str | None = None,
) -> Run:
    """prompt: NAME or NAME@HASH (default: the job's own version); model: a models-table
    name (default: the configured one); index: a version number (default: the job's);
    scorer: a decision scorer name or artifact path (default: the configured one)."""
    if index is None and not job.index_version:
        raise NotFound(f"job {job.id} has no index version; pass --index")
    variant = Variant(
        prompt=prompt or job.prompt_version,
        model=model,
        index=index,
        collection=None if index is not None else job.index_version,
        scorer=scorer,
    )
    budget = EvalBudget(None, services.config.budgets.per_request, services.engine, "replay")
    pipeline = variant_pipeline(services, variant, budget)
    # The stored question is as admitted (already redacted); its admission record carries
    # the credentials found then, so the input policy decides as it did for the job.
    again = transient_job(
        services.config,
        job.question,
        job.guardrails.get("input", {}),
        groups=job.groups,
        feature=job.feature,
        prefix="replay",
    )
    outcome: Outcome = pipeline.run(again)
    return Run(
        answer=outcome.answer,
        confidence=outcome.confidence,
        versions=replace(
            Versions.of(outcome),
            prompt_version=outcome.prompt_version or pipeline.prompt.version,
        ),
        cited_documents=[c["document_id"] for c in outcome.citations],
        verdicts=_verdicts(outcome.guardrails),
        status=outcome.status.value,
        reason=outcome.reason,
        cost=budget.by_job.get(again.id, 0) / 1_000_000,
    )
