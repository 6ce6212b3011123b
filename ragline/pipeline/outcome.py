"""A job's outcome as the stages build it: what they have established so far (versions,
passages, guardrail records, scores, timings) goes into every outcome, so an escalated,
rejected or failed job is as traceable as an answered one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from ragline.guardrails.layer import Checked, add_counts
from ragline.guardrails.policy import Verdict
from ragline.jobs import Outcome
from ragline.knowledge.store import Passage
from ragline.models import JobStatus
from ragline.reasons import ReviewReason

log = structlog.get_logger("ragline.pipeline")


@dataclass
class Progress:
    """What the stages have established so far; every outcome carries all of it, so an
    escalated or failed job is as traceable as an answered one."""

    timings: dict[str, float]
    model_id: str
    scorer_version: str | None
    guardrails: dict[str, Any]
    scrub: Callable[[str], str]
    trace: Callable[[], dict[str, Any]]
    prompt_version: str | None = None
    index_version: str | None = None
    passages: list[dict[str, Any]] = field(default_factory=list)
    confidence_inputs: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    # For the answer cache: the question's embedding and the versions' key (None: not
    # cached, e.g. a question the guardrails redacted).
    vector: Any = None
    cache_key: str | None = None

    def record(self, stage: str, checked: Checked) -> None:
        entry = dict(self.guardrails.get(stage, {}))
        if checked.verdicts:
            entry["verdicts"] = [v.as_dict() for v in checked.verdicts]
        if checked.redacted:
            redacted = dict(entry.get("redacted", {}))
            add_counts(redacted, checked.redacted)
            entry["redacted"] = redacted
        if entry:
            self.guardrails[stage] = entry

    def outcome(self, status: JobStatus, reason: str | None, **result: Any) -> Outcome:
        if result.get("error"):
            # Error texts can quote a provider's response or a library's message.
            result["error"] = self.scrub(str(result["error"]))
        return Outcome(
            status=status,
            reason=reason,
            model_id=self.model_id,
            prompt_version=self.prompt_version,
            index_version=self.index_version,
            scorer_version=self.scorer_version,
            passages=self.passages,
            stage_timings=self.timings,
            guardrails=self.guardrails,
            confidence_inputs=self.confidence_inputs,
            trace=self.trace(),
            question_vector=self.vector,
            cache_key=self.cache_key,
            **result,
        )

    def escalate(self, reason: ReviewReason, error: Exception) -> Outcome:
        return self.outcome(JobStatus.ESCALATED, reason.value, error=str(error))

    def policy(self, status: JobStatus, verdict: Verdict, **result: Any) -> Outcome:
        """A policy verdict decided the job: its rule id is the detail clients see."""
        log.info("policy_verdict", rule=verdict.rule, stage=verdict.stage, action=verdict.action)
        return self.outcome(
            status,
            ReviewReason.POLICY.value,
            error=f"{verdict.rule}: {verdict.detail}",
            **result,
        )


def passage_ref(passage: Passage) -> dict[str, Any]:
    """A passage as the job keeps it: with its (redacted) text, so the evidence of an answer
    outlives the index version it came from."""
    return {
        "chunk_id": passage.chunk_id,
        "document_id": passage.document_id,
        "title": passage.title,
        "score": round(passage.score, 4),
        "text": passage.text,
        # Who may read a job answered from it (ragline/visibility.py).
        "groups": list(passage.groups),
    }


def citation(passage: Passage, number: int) -> dict[str, object]:
    return {
        "number": number,
        "document_id": passage.document_id,
        "chunk_id": passage.chunk_id,
        "title": passage.title,
        "score": round(passage.score, 4),
    }
