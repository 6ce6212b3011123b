"""The guardrail layer as the pipeline uses it, one object per process.

- admit: at the API, before the job is stored: PII and credentials in the question are
  replaced by placeholders, so neither the database, the logs nor the queue ever holds them.
- check_input: in the worker, before retrieval: denied topics, prompt injection, and the
  credentials admit found, each a verdict with its configured action.
- guard_passages: passages of configured documents redacted before they enter the prompt.
- check_output: after generation: PII and credentials in the answer redacted, citation and
  URL rules checked.
- scrub: for log lines and stored error texts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from typing import Any

import structlog

from ragline.config import Guardrails
from ragline.guardrails.pii import PiiRedactor, Placeholders, Redaction, Span, replace_spans
from ragline.guardrails.policy import PolicyChecker, Verdict
from ragline.guardrails.secrets import find_secrets
from ragline.knowledge.embedder import Embedder, Vectors
from ragline.knowledge.store import Passage

log = structlog.get_logger("ragline.guardrails")
WITHHELD = "[draft withheld: it could not be redacted]"


@dataclass(frozen=True)
class AdmittedQuestion:
    text: str
    record: dict[str, Any]  # stored as job.guardrails["input"]: counts and rule ids only


@dataclass(frozen=True)
class Checked:
    """Text after the actions that change it (redact), and every verdict."""

    text: str
    verdicts: list[Verdict] = field(default_factory=list)
    redacted: dict[str, int] = field(default_factory=dict)

    @property
    def rejection(self) -> Verdict | None:
        return next((v for v in self.verdicts if v.action == "reject"), None)

    @property
    def escalation(self) -> Verdict | None:
        return next((v for v in self.verdicts if v.action == "route_to_human"), None)


class GuardrailLayer:
    def __init__(self, config: Guardrails, embedder: Embedder | None = None) -> None:
        self.config = config
        self.redactor = PiiRedactor(config.pii) if config.pii_redaction else None
        self.policy = PolicyChecker(config.policy, embedder) if config.policy_check else None

    @property
    def scans_secrets(self) -> bool:
        return self.policy is not None and self.config.policy.secrets

    @property
    def needs_question_vector(self) -> bool:
        return self.policy is not None and self.policy.needs_question_vector

    def admit(self, question: str) -> AdmittedQuestion:
        secrets = find_secrets(question) if self.scans_secrets else []
        redaction = self._redact(question, Placeholders(), [span for _, span in secrets])
        record: dict[str, Any] = {"redacted": redaction.counts}
        if secrets:
            record["secrets"] = sorted({rule for rule, _ in secrets})
        return AdmittedQuestion(redaction.text, record)

    def check_input(
        self, question: str, admitted: dict[str, Any], vector: Vectors | None
    ) -> Checked:
        if self.policy is None:
            return Checked(question)
        verdicts = [
            Verdict(
                rule,
                "input",
                self.config.policy.action_for(rule),
                "the question contained a credential (removed at admission)",
            )
            for rule in admitted.get("secrets", [])
        ]
        verdicts += self.policy.check_input(question, vector)
        return self._apply(question, verdicts, Placeholders.continuing(question))

    def guard_passages(
        self, passages: list[Passage], placeholders: Placeholders
    ) -> tuple[list[Passage], dict[str, int]]:
        patterns = self.config.pii.passage_documents
        if self.redactor is None or not patterns:
            return passages, {}
        guarded, counts = [], dict[str, int]()
        for passage in passages:
            if any(fnmatchcase(passage.document_id, p) for p in patterns):
                redaction = self.redactor.redact(passage.text, placeholders)
                passage = replace(passage, text=redaction.text)
                add_counts(counts, redaction.counts)
            guarded.append(passage)
        return guarded, counts

    def check_output(self, answer: str, cited: list[int], placeholders: Placeholders) -> Checked:
        verdicts = self.policy.check_output(answer, cited) if self.policy is not None else []
        try:
            checked = self._apply(answer, verdicts, placeholders)
            redaction = self._redact(checked.text, placeholders)
        except Exception as error:
            # Fail closed: an answer that could not be redacted is neither delivered nor
            # stored; a person answers instead.
            log.exception("guardrail_failed", check="output_redaction", error=type(error).__name__)
            failure = Verdict(
                "guardrail_error.redaction",
                "output",
                "route_to_human",
                f"the answer could not be redacted ({type(error).__name__}); draft withheld",
            )
            return Checked(WITHHELD, [*verdicts, failure])
        counts = dict(checked.redacted)
        add_counts(counts, redaction.counts)
        return Checked(redaction.text, checked.verdicts, counts)

    def scrub(self, text: str) -> str:
        """PII and credentials out of a free text (a log value, an error message)."""
        secrets = [span for _, span in find_secrets(text)] if self.scans_secrets else []
        return self._redact(text, Placeholders(), secrets).text

    def _redact(
        self, text: str, placeholders: Placeholders, extra: list[Span] | None = None
    ) -> Redaction:
        if self.redactor is not None:
            return self.redactor.redact(text, placeholders, extra)
        return replace_spans(text, extra or [], placeholders)

    def _apply(self, text: str, verdicts: list[Verdict], placeholders: Placeholders) -> Checked:
        """Remove the spans of the verdicts whose action is redact."""
        spans = [span for v in verdicts if v.action == "redact" for span in v.spans]
        redaction = replace_spans(text, spans, placeholders)
        return Checked(redaction.text, verdicts, redaction.counts)


def add_counts(total: dict[str, int], counts: dict[str, int]) -> None:
    for label, count in counts.items():
        total[label] = total.get(label, 0) + count
