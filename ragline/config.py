"""The pipeline config (ragline.yaml): its schema and its loader.

The shape of `assistant_pipeline` is the one in DESIGN.md; the other top-level sections
(models, knowledge, jobs) extend it in the same style. Every model forbids unknown keys so
that a typo stops start-up instead of being silently ignored.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from ragline.errors import ConfigError
from ragline.reasons import ReviewReason

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputValidation(Section):
    require_user_id: bool = True
    max_prompt_chars: PositiveInt = 6000


class Retrieval(Section):
    source: str = Field("approved-knowledge-base", min_length=1)
    top_k: Annotated[int, Field(gt=0, le=100)] = 5
    # dense: MiniLM cosine; sparse: BM25 (lexical); hybrid: both fused by reciprocal rank.
    # hybrid measured best on SciFact (README: Retrieval quality) and on the handbook smoke set.
    mode: Literal["dense", "sparse", "hybrid"] = "hybrid"


class Generation(Section):
    model: str = Field("production-default", min_length=1)
    # Called once, in the time the job has left, when `model` times out or fails (5xx,
    # malformed or oversized response, unreachable). None: such a job is escalated.
    fallback_model: str | None = Field(None, min_length=1, description="a models entry")
    timeout_ms: PositiveInt = 9000
    prompt: str = Field("answer", min_length=1, description="template name under prompts/")


# What `pii` finds by default: Presidio's pattern recognizers, no NER model needed. Dates are
# left alone on purpose: they are rarely personal and redacting them breaks answers.
DEFAULT_PII_ENTITIES = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "US_SSN",
)
Action = Literal["reject", "route_to_human", "redact"]
_ENTITY_NAME = r"^[A-Z][A-Z0-9_]{1,39}$"
_RULE_ID = r"^[a-z][a-z0-9_]*(\.[a-z0-9_-]+)*$"


def _check_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"not a valid regular expression ({error}): {pattern!r}") from None
    return pattern


Regex = Annotated[str, Field(min_length=1), AfterValidator(_check_regex)]


class CustomPattern(Section):
    """An entity Presidio does not know, e.g. employee ids: redacted as <NAME_1>."""

    name: str = Field(pattern=_ENTITY_NAME)
    pattern: Regex
    score: Fraction = 0.9


class NlpEngine(Section):
    """Presidio's NLP engine. no_op needs nothing downloaded and finds pattern entities
    only; `{name: spacy, model: en_core_web_lg}` (model installed with pip) adds person,
    location and organisation names."""

    name: Literal["no_op", "spacy", "stanza", "transformers"] = "no_op"
    model: str = "no_op"
    entities: list[str] = Field(
        default_factory=lambda: ["PERSON", "LOCATION", "NRP"],
        description="the NER entities to redact when the engine has a model",
    )


class Pii(Section):
    entities: list[Annotated[str, Field(pattern=_ENTITY_NAME)]] = Field(
        default_factory=lambda: list(DEFAULT_PII_ENTITIES)
    )
    custom_patterns: list[CustomPattern] = Field(default_factory=list)
    # Presidio's scores: validated cards/IBANs/emails 1.0, IPs 0.6, SSNs and phones 0.4-0.5.
    min_score: Fraction = 0.4
    # Values never redacted (regular expressions, whole match), e.g. the company's own
    # role addresses that answers should be able to give out.
    allow: list[Regex] = Field(default_factory=list)
    # Passages of these documents (glob on the document id, "*" = all) are redacted before
    # they enter the prompt. Off by default: the knowledge base is approved content.
    passage_documents: list[str] = Field(default_factory=list)
    nlp_engine: NlpEngine = NlpEngine()

    @model_validator(mode="after")
    def _entities_have_recognizers(self) -> Pii:
        known = set(DEFAULT_PII_ENTITIES)
        if self.nlp_engine.name != "no_op":
            known |= set(self.nlp_engine.entities)
        unknown = sorted(set(self.entities) - known)
        if unknown:
            raise ValueError(
                f"entities {unknown} have no recognizer (known: {sorted(known)}); add a "
                "custom_patterns entry for your own"
            )
        return self


class DenyTopic(Section):
    """A topic ragline must not answer. Matched by whole-word keywords, regular
    expressions, or similarity of the question to example phrases (MiniLM cosine)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    keywords: list[str] = Field(default_factory=list)
    patterns: list[Regex] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)
    threshold: Annotated[float, Field(gt=0.0, le=1.0)] = 0.6

    @model_validator(mode="after")
    def _has_a_matcher(self) -> DenyTopic:
        if not (self.keywords or self.patterns or self.examples):
            raise ValueError(f"deny topic {self.id} needs keywords, patterns or examples")
        return self


class OutputRules(Section):
    require_citation: bool = True
    # Hosts an answer may link to ("docs.example.com", or "*.example.com" for subdomains);
    # any other URL is a verdict. Empty: no URL may appear.
    allowed_url_hosts: list[str] = Field(default_factory=list)


# A verdict's rule id is looked up here, most specific prefix first (`injection.base64` then
# `injection`). Rules with no span to remove cannot be redacted.
DEFAULT_ACTIONS: dict[str, Action] = {
    "deny_topic": "reject",
    "injection": "reject",
    "injection.invisible_unicode": "redact",  # often pasted from documents by accident
    "injection.base64_blob": "route_to_human",
    "secret": "redact",
    "output.citation_missing": "route_to_human",
    "output.url_not_allowed": "redact",
    "output.secret": "redact",
}
_UNREDACTABLE = ("deny_topic", "output.citation_missing")


class Policy(Section):
    deny_topics: list[DenyTopic] = Field(default_factory=list)
    injection: bool = True
    secrets: bool = True
    output: OutputRules = OutputRules()
    actions: dict[Annotated[str, Field(pattern=_RULE_ID)], Action] = Field(
        default_factory=dict, description="overrides of DEFAULT_ACTIONS by rule id prefix"
    )

    @model_validator(mode="after")
    def _redact_needs_a_span(self) -> Policy:
        for rule, action in self.actions.items():
            if action == "redact" and rule.startswith(_UNREDACTABLE):
                raise ValueError(
                    f"actions.{rule}: redact needs a span to remove; use reject or route_to_human"
                )
        return self

    def action_for(self, rule: str) -> Action:
        """The configured action for a rule id; an unknown rule fails closed."""
        table = {**DEFAULT_ACTIONS, **self.actions}
        parts = rule.split(".")
        for end in range(len(parts), 0, -1):
            action = table.get(".".join(parts[:end]))
            if action is not None:
                return action
        return "route_to_human"


class Guardrails(Section):
    pii_redaction: bool = True
    policy_check: bool = True
    pii: Pii = Pii()
    policy: Policy = Policy()


class Fallback(Section):
    on_low_confidence: Literal["route_to_human", "answer_with_warning"] = "route_to_human"
    # None: the decision scorer's calibrated threshold for the answering model (and the
    # job's feature, when calibrated per feature); a number overrides it for every job.
    min_confidence: Fraction | None = None


class Observability(Section):
    log_prompt_hash: bool = True
    log_latency_ms: bool = True
    sample_outputs_for_review: bool = True


class AssistantPipeline(Section):
    input_validation: InputValidation = InputValidation()
    retrieval: Retrieval = Retrieval()
    generation: Generation = Generation()
    guardrails: Guardrails = Guardrails()
    fallback: Fallback = Fallback()
    observability: Observability = Observability()


NonNegative = Annotated[float, Field(ge=0.0)]
# A spending cap in currency units. Budgets are kept as integer micro-units in 64-bit
# columns (ragline.budget): a billion units leaves room for spent + reserved + cost, where
# an unbounded float (1e13, Infinity) would overflow the column or to_micros itself.
MAX_MONEY = 1_000_000_000.0
Money = Annotated[float, Field(ge=0.0, le=MAX_MONEY, allow_inf_nan=False)]


class Price(Section):
    """Currency units (whatever the operator bills in) per 1,000 tokens."""

    input_per_1k: NonNegative = 0.0
    output_per_1k: NonNegative = 0.0


class ModelSpec(Section):
    """One entry of the models table: a name the pipeline uses, mapped to a provider."""

    provider: Literal["openai_compatible", "extractive"]
    model_id: str = Field("", description="vendor model id sent to the provider")
    price: Price = Price()
    max_tokens: PositiveInt = 512
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 0.0
    max_response_bytes: PositiveInt = 1_000_000

    @model_validator(mode="after")
    def _remote_needs_model_id(self) -> ModelSpec:
        if self.provider == "openai_compatible" and not self.model_id:
            raise ValueError("model_id is required for provider openai_compatible")
        return self


class Chunking(Section):
    # sections: by heading and paragraph, packed up to max_tokens, with overlap.
    # document: one chunk per document, (title + " " + text) cut at max_tokens: how MTEB
    # embeds BEIR corpora (use it to reproduce published figures, not for long documents).
    strategy: Literal["sections", "document"] = "sections"
    # 254 word pieces + [CLS] + [SEP] = the 256 MiniLM reads; more would be cut silently.
    max_tokens: Annotated[int, Field(gt=32, le=254)] = 200
    overlap_tokens: Annotated[int, Field(ge=0)] = 32

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Chunking:
        if self.overlap_tokens >= self.max_tokens:
            raise ValueError("overlap_tokens must be smaller than max_tokens")
        return self


class SmokeQuery(Section):
    question: str = Field(min_length=1)
    expected_documents: list[str] = Field(min_length=1)
    groups: list[str] = Field(default_factory=lambda: ["everyone"], min_length=1)


class Gate(Section):
    """The checks a version must pass before `promote` (or `--force` with a reason)."""

    # Refuse a version with this fraction fewer documents than the active one, or more.
    max_document_drop: Fraction = 0.2
    # Smoke evaluation: the share of queries whose expected document is in the top k.
    smoke_top_k: Annotated[int, Field(gt=0, le=100)] = 5
    smoke_min_hit_rate: Fraction = 0.8
    smoke_queries: list[SmokeQuery] = Field(default_factory=list)


class Knowledge(Section):
    embedding_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    chunking: Chunking = Chunking()
    gate: Gate = Gate()
    # `index gc` keeps every version a job of the last this-many days was answered from
    # (replays and audits read it), unless forced with a reason.
    keep_cited_days: PositiveInt = 30


class Decision(Section):
    """The answer-or-escalate decision (README "The decision")."""

    # A scorer artifact: a name under RAGLINE_SCORERS_DIR (scorers/NAME.json) or a path.
    scorer: str = Field("answerability", min_length=1)
    # `ragline calibrate` chooses the threshold that still answers this share of the
    # answerable questions, escalating as many of the others as it can.
    target_answered: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.85


class Jobs(Section):
    deadline_ms: PositiveInt = 60_000
    # Shorter than the deadline (checked): a job whose worker died is run again in time.
    lease_ms: PositiveInt = 30_000
    requeue_after_ms: PositiveInt = 30_000
    sweep_interval_ms: PositiveInt = 5_000
    # A job still queued, or running with a silent worker, this long past its deadline is
    # escalated (`timeout`) by the sweeper: it fires without any worker running.
    deadline_grace_ms: PositiveInt = 5_000
    # Admission closes (503 + Retry-After) while this many jobs wait in the queue.
    max_queue_depth: PositiveInt = 10_000
    retry_after_s: PositiveInt = 5

    @model_validator(mode="after")
    def _lease_is_shorter_than_the_deadline(self) -> Jobs:
        if self.lease_ms >= self.deadline_ms:
            raise ValueError(
                f"lease_ms ({self.lease_ms}) must be shorter than deadline_ms "
                f"({self.deadline_ms}): a job whose worker dies is run again only after its "
                "lease ends, so with a lease as long as the deadline it can only escalate "
                "as a timeout"
            )
        return self


class Retention(Section):
    """How many days data is kept (null: kept until erased). The sweeper deletes what is
    older in batches, each batch recorded in the audit trail; the trail itself is kept."""

    # Final jobs by when they finished, with their review items and deliveries. A job
    # still queued or running, or waiting for a reviewer's decision, is never deleted.
    jobs_days: PositiveInt | None = None
    # Webhook deliveries that ended (delivered or failed), by when they were created.
    deliveries_days: PositiveInt | None = None
    eval_runs_days: PositiveInt | None = None
    # The usage ledger (amounts, no personal data): budgets and /v1/usage read it, so at
    # least two calendar months are kept.
    usage_days: int | None = Field(None, ge=62)
    batch_size: int = Field(500, ge=1, le=10_000)
    max_batches: int = Field(20, ge=1)  # per table per pass: one pass never runs long
    interval_s: PositiveFloat = 600


class Windows(Section):
    """Spending caps per day and per calendar month (UTC); null means no cap."""

    daily: Money | None = None
    monthly: Money | None = None


class PerRequest(Section):
    max_tokens: PositiveInt | None = None
    max_cost: Money | None = None


class Budgets(Section):
    on_exceeded: Literal["reject", "route_to_human", "downgrade"] = "reject"
    downgrade_model: str | None = Field(None, description="a models entry, for downgrade")
    per_request: PerRequest = PerRequest()
    # By account name and by feature name; "default" applies to those not listed.
    accounts: dict[str, Windows] = Field(default_factory=dict)
    # The names listed (besides "default") are the declared features. Every undeclared name
    # of an account shares one budget (`ACCOUNT/*`, capped by "default"), so inventing
    # feature names does not multiply a budget; `reject` refuses them at admission (422).
    features: dict[str, Windows] = Field(default_factory=dict)
    undeclared_features: Literal["share", "reject"] = "share"
    # One cap across every account (null: none).
    total: Windows = Windows()

    @property
    def declared_features(self) -> frozenset[str]:
        return frozenset(self.features) - {"default"}


class RateLimits(Section):
    """A token bucket per API key."""

    requests_per_second: Annotated[float, Field(gt=0)] = 20.0
    burst: PositiveInt = 40


_DEFAULT_SLA: dict[ReviewReason, float] = {
    ReviewReason.POLICY: 60,
    ReviewReason.TIMEOUT: 120,
    ReviewReason.SAMPLED: 7 * 24 * 60,
}


class Review(Section):
    """The human review queue: claims, service levels, what happens when one is missed."""

    # A claim is a lease: past it, the item is back in the queue for anyone.
    claim_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 15
    # A page session (the review, index and operator pages) ends after this long without a
    # request, and this many hours after its log-in whatever happens; log-out and revoking
    # its key end it at once.
    session_idle_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 30
    session_hours: Annotated[float, Field(gt=0, le=7 * 24)] = 8
    # The time to decide, per escalation reason; reasons not listed get default_sla_minutes.
    sla_minutes: dict[ReviewReason, Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: _DEFAULT_SLA.copy()
    )
    default_sla_minutes: Annotated[float, Field(gt=0)] = 240
    # An item past its due time is flagged, then: deliver_fallback answers the job with
    # fallback_answer (reason code sla_expired); raise_priority moves it to the front.
    on_sla_breach: Literal["deliver_fallback", "raise_priority", "flag_only"] = "raise_priority"
    fallback_answer: str = Field(
        "We could not answer this question automatically. A member of our team will follow "
        "up with you.",
        min_length=1,
    )
    # Reason codes a reviewer may give when rejecting; sla_expired is the system's own.
    reject_codes: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,30}$")]] = Field(
        default_factory=lambda: [
            "out_of_scope",
            "insufficient_sources",
            "policy_violation",
            "needs_follow_up",
        ],
        min_length=1,
    )
    # The note the review page starts from when a reviewer picks a reject code (editable).
    note_templates: dict[str, Annotated[str, Field(max_length=2000)]] = Field(
        default_factory=lambda: {
            "out_of_scope": "Outside what the knowledge base covers: ",
            "insufficient_sources": "The passages do not state this; missing: ",
            "policy_violation": "Refused under policy: ",
            "needs_follow_up": "Needs a person to follow up with the user about: ",
        }
    )
    # With observability.sample_outputs_for_review, this share of answered jobs is copied
    # to the queue (reason sampled) for quality feedback; their answer is not held back.
    sample_rate: Fraction = 0.05


class Deliveries(Section):
    """Webhooks to a job's callback_url (Standard Webhooks signatures)."""

    max_attempts: Annotated[int, Field(ge=1, le=50)] = 8
    first_retry_s: Annotated[float, Field(gt=0)] = 5
    max_retry_s: Annotated[float, Field(gt=0)] = 3600
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 10
    # Private, loopback and link-local targets are refused (SSRF) unless allowed here.
    allow_private_targets: bool = False
    poll_interval_ms: PositiveInt = 1000

    @model_validator(mode="after")
    def _retry_bounds(self) -> Deliveries:
        if self.max_retry_s < self.first_retry_s:
            raise ValueError("max_retry_s must not be smaller than first_retry_s")
        return self


# Metrics `ragline eval compare` can gate on, and how far each may move the wrong way before
# the change is refused (absolute for scores and rates; a fraction of run A's value for
# latency and cost). Metrics left out are reported but never gate.
DEFAULT_TOLERANCES = {
    "ndcg@10": 0.02,
    "recall@10": 0.02,
    "mrr": 0.02,
    "token_f1": 0.03,
    "must_include": 0.03,
    "outcome_accuracy": 0.03,
    "escalation_rate": 0.05,
    "latency_p95_ms": 1.0,
    "cost_per_job": 0.10,
}


class Evaluation(Section):
    """`ragline eval run/compare`: the run's own budget, who it asks as, and the gate."""

    # Caps the model spend of one run (your currency); the accounts' budgets are never
    # charged. A run that reaches it stops and is stored as incomplete. null: no cap.
    budget: Annotated[float, Field(ge=0)] | None = 5.0
    groups: list[str] = Field(default_factory=lambda: ["everyone"], min_length=1)
    feature: str | None = "eval"
    bootstrap_samples: Annotated[int, Field(ge=100, le=100_000)] = 2000
    confidence_level: Annotated[float, Field(gt=0.5, lt=1)] = 0.95
    tolerances: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: dict(DEFAULT_TOLERANCES)
    )

    @model_validator(mode="after")
    def _known_metrics(self) -> Evaluation:
        gateable = {*DEFAULT_TOLERANCES, "latency_p50_ms"}
        unknown = sorted(set(self.tolerances) - gateable)
        if unknown:
            known = ", ".join(sorted(gateable))
            raise ValueError(f"unknown metric(s) {', '.join(unknown)} (known: {known})")
        return self


class Api(Section):
    """The HTTP API's own limits."""

    # A request body larger than this is refused with 413 before it is read. The largest
    # legitimate bodies (a 6,000-character question with 16 KB of metadata, a 20,000-
    # character reviewer edit) stay far below the default, even fully \u-escaped.
    max_body_bytes: Annotated[int, Field(ge=1024, le=1_000_000_000)] = 1_000_000
    # Failed authentications (a wrong or unknown key) per client address, before the
    # database is asked: past the burst, 429 until the bucket refills. Only failures drain
    # it; while it is empty, a key this process accepted within RAGLINE_KEY_CACHE_MS still
    # passes, any other waits for the refill (one lookup per refill).
    failed_auth: RateLimits = RateLimits(requests_per_second=1.0, burst=60)


class AnswerCache(Section):
    """The answer cache (README "The answer cache"): equivalent questions under the same
    versions get the earlier final answer without a model call."""

    enabled: bool = True
    # The cosine two questions' embeddings must reach before their constraints are compared
    # (bench/answer_cache.py measured the default on the tuning half of eval/cache/pairs).
    similarity: Annotated[float, Field(gt=0.0, le=1.0)] = 0.75
    # Entries older than this are not served, nor compared for consistency.
    max_age_hours: Annotated[float, Field(gt=0)] = 24 * 7
    # Per feature: false never answers that feature's jobs from the cache, nor stores them.
    features: dict[str, bool] = Field(default_factory=dict)
    # A new answer whose numbers, dates or names contradict an equivalent recent answer
    # escalates with reason inconsistent (the answers compared are the cache's entries, so
    # this needs enabled).
    consistency: bool = True
    # The newest entries per account and versions a process compares a question against.
    max_entries: Annotated[int, Field(ge=1, le=1_000_000)] = 20_000

    def applies(self, feature: str | None) -> bool:
        return self.enabled and self.features.get(feature or "", True)


class RaglineConfig(Section):
    assistant_pipeline: AssistantPipeline = AssistantPipeline()
    models: dict[str, ModelSpec] = Field(
        default_factory=lambda: {"production-default": ModelSpec(provider="extractive")}
    )
    knowledge: Knowledge = Knowledge()
    decision: Decision = Decision()
    jobs: Jobs = Jobs()
    retention: Retention = Retention()
    budgets: Budgets = Budgets()
    rate_limits: RateLimits = RateLimits()
    review: Review = Review()
    deliveries: Deliveries = Deliveries()
    evaluation: Evaluation = Evaluation()
    api: Api = Api()
    cache: AnswerCache = AnswerCache()

    @model_validator(mode="after")
    def _model_names_are_known(self) -> RaglineConfig:
        known = ", ".join(sorted(self.models)) or "none"
        generation = self.assistant_pipeline.generation
        references = {
            "assistant_pipeline.generation.model": generation.model,
            "assistant_pipeline.generation.fallback_model": generation.fallback_model,
            "budgets.downgrade_model": self.budgets.downgrade_model,
        }
        for key, name in references.items():
            if name is not None and name not in self.models:
                raise ValueError(f"{key} '{name}' is not in models (known: {known})")
        if generation.fallback_model == generation.model:
            # Calling the model that just failed again is a retry, not a fallback.
            raise ValueError(
                "assistant_pipeline.generation.fallback_model must differ from generation.model"
            )
        if self.budgets.on_exceeded == "downgrade" and self.budgets.downgrade_model is None:
            raise ValueError("budgets.on_exceeded 'downgrade' needs budgets.downgrade_model")
        return self


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(root)"
        lines.append(f"{key}: {item['msg']}")
    return "; ".join(lines)


def parse_config(data: Any, origin: str = "config") -> RaglineConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping")
    try:
        return RaglineConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{origin}: {_describe(error)}") from None


def load_config(path: Path) -> RaglineConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    return parse_config(data, origin=str(path))
