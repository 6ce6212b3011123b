"""Policy checks: deny-listed topics and prompt injection on the way in, citations, URLs and
secrets on the way out. Every check returns verdicts with a rule id; the config maps rule
ids to actions (config.Policy.action_for). A check that raises becomes a verdict of its own,
`guardrail_error.<check>`, routed to a person: guardrails fail closed."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np
import structlog

from ragline.config import Action, Policy
from ragline.guardrails.injection import find_injections
from ragline.guardrails.pii import Span
from ragline.guardrails.secrets import find_secrets
from ragline.knowledge.embedder import Embedder, Vectors

log = structlog.get_logger("ragline.guardrails")

URL_LABEL = "URL"


@dataclass(frozen=True)
class Verdict:
    rule: str
    stage: str  # input | output
    action: Action
    detail: str  # never the matched text: it may be PII or a secret
    spans: list[Span] = field(default_factory=list)

    def as_dict(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "stage": self.stage,
            "action": self.action,
            "detail": self.detail,
        }


_URL = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>()\[\]\"']+")


class PolicyChecker:
    """The policy of the config, compiled once; example phrases are embedded once (without
    an embedder, as at admission, topics with examples cannot be checked and fail closed)."""

    def __init__(self, policy: Policy, embedder: Embedder | None = None) -> None:
        self.policy = policy
        self._embedder = embedder
        self._topics = []
        for topic in policy.deny_topics:
            keywords = [re.compile(rf"(?i)\b{re.escape(k)}\b") for k in topic.keywords]
            patterns = [re.compile(p, re.IGNORECASE) for p in topic.patterns]
            examples: Vectors | None = None
            if topic.examples and embedder is not None:
                examples = embedder.embed(topic.examples)
            self._topics.append((topic, keywords + patterns, examples))

    @property
    def needs_question_vector(self) -> bool:
        return any(topic.examples for topic, _, _ in self._topics)

    def _verdict(
        self, rule: str, stage: str, detail: str, spans: list[Span] | None = None
    ) -> Verdict:
        return Verdict(rule, stage, self.policy.action_for(rule), detail, spans or [])

    def check_input(self, question: str, question_vector: Vectors | None) -> list[Verdict]:
        checks: list[tuple[str, Callable[[], list[Verdict]]]] = [
            ("deny_topic", lambda: self._deny_topics(question, question_vector)),
        ]
        if self.policy.injection:
            checks.append(("injection", lambda: self._injection(question)))
        return self._run(checks, "input")

    def check_output(self, answer: str, cited: list[int]) -> list[Verdict]:
        rules = self.policy.output
        checks: list[tuple[str, Callable[[], list[Verdict]]]] = []
        if rules.require_citation:
            checks.append(("citation", lambda: self._citation(cited)))
        checks.append(("url", lambda: self._urls(answer)))
        if self.policy.secrets:
            checks.append(("secret", lambda: self._secrets(answer, "output")))
        return self._run(checks, "output")

    def _run(
        self, checks: list[tuple[str, Callable[[], list[Verdict]]]], stage: str
    ) -> list[Verdict]:
        verdicts: list[Verdict] = []
        for name, check in checks:
            try:
                verdicts.extend(check())
            except Exception as error:
                log.exception("guardrail_failed", check=name, error=type(error).__name__)
                verdicts.append(
                    Verdict(
                        f"guardrail_error.{name}",
                        stage,
                        "route_to_human",
                        f"the {name} check failed ({type(error).__name__}); failing closed",
                    )
                )
        return verdicts

    def _deny_topics(self, question: str, vector: Vectors | None) -> list[Verdict]:
        verdicts = []
        for topic, matchers, examples in self._topics:
            rule = f"deny_topic.{topic.id}"
            if any(m.search(question) for m in matchers):
                verdicts.append(
                    self._verdict(rule, "input", f"the question matches denied topic {topic.id}")
                )
                continue
            if topic.examples:
                if examples is None or vector is None:
                    # Admission's checker has no embedder (the worker's always has): fail
                    # closed for this topic and keep the other topics' verdicts.
                    verdicts.append(
                        Verdict(
                            "guardrail_error.deny_topic",
                            "input",
                            "route_to_human",
                            f"deny topic {topic.id} needs the embedding model; failing closed",
                        )
                    )
                    continue
                similarity = float(np.max(examples @ vector))
                if similarity >= topic.threshold:
                    verdicts.append(
                        self._verdict(
                            rule,
                            "input",
                            f"the question is close to denied topic {topic.id} "
                            f"(similarity {similarity:.2f} >= {topic.threshold})",
                        )
                    )
        return verdicts

    def _injection(self, question: str) -> list[Verdict]:
        return [
            self._verdict(f"injection.{f.rule}", "input", f.detail, list(f.spans))
            for f in find_injections(question)
        ]

    def _secrets(self, text: str, stage: str) -> list[Verdict]:
        by_rule: dict[str, list[Span]] = {}
        for rule, span in find_secrets(text):
            by_rule.setdefault(rule, []).append(span)
        prefix = "output." if stage == "output" else ""
        return [
            self._verdict(f"{prefix}{rule}", stage, f"{len(spans)} credential(s) ({rule})", spans)
            for rule, spans in by_rule.items()
        ]

    def _citation(self, cited: list[int]) -> list[Verdict]:
        if cited:
            return []
        return [self._verdict("output.citation_missing", "output", "the answer cites no passage")]

    def _urls(self, answer: str) -> list[Verdict]:
        spans = []
        for match in _URL.finditer(answer):
            url = match.group(0).rstrip(".,;:!?")  # sentence punctuation is not the link's
            if not self._url_allowed(url):
                spans.append(Span(URL_LABEL, match.start(), match.start() + len(url)))
        if not spans:
            return []
        return [
            self._verdict(
                "output.url_not_allowed",
                "output",
                f"{len(spans)} link(s) outside the allowed hosts",
                spans,
            )
        ]

    def _url_allowed(self, url: str) -> bool:
        host = (urlsplit(url if "://" in url else f"http://{url}").hostname or "").lower()
        for allowed in self.policy.output.allowed_url_hosts:
            allowed = allowed.lower()
            if host == allowed or (allowed.startswith("*.") and host.endswith(allowed[1:])):
                return True
        return False
