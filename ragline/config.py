"""The pipeline config (ragline.yaml): its schema and its loader.

The shape of `assistant_pipeline` is the one in DESIGN.md; the other top-level sections
(models, knowledge, jobs) extend it in the same style. Every model forbids unknown keys so
that a typo stops start-up instead of being silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ragline.errors import ConfigError

PositiveInt = Annotated[int, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputValidation(Section):
    require_user_id: bool = True
    max_prompt_chars: PositiveInt = 6000


class Retrieval(Section):
    source: str = Field("approved-knowledge-base", min_length=1)
    top_k: Annotated[int, Field(gt=0, le=100)] = 5


class Generation(Section):
    model: str = Field("production-default", min_length=1)
    timeout_ms: PositiveInt = 9000
    prompt: str = Field("answer", min_length=1, description="template name under prompts/")


class Guardrails(Section):
    pii_redaction: bool = True
    policy_check: bool = True


class Fallback(Section):
    on_low_confidence: Literal["route_to_human", "answer_with_warning"] = "route_to_human"
    min_confidence: Fraction = 0.5


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


class ModelSpec(Section):
    """One entry of the models table: a name the pipeline uses, mapped to a provider."""

    provider: Literal["openai_compatible", "extractive"]
    model_id: str = Field("", description="vendor model id sent to the provider")
    max_tokens: PositiveInt = 512
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 0.0
    max_response_bytes: PositiveInt = 1_000_000

    @model_validator(mode="after")
    def _remote_needs_model_id(self) -> ModelSpec:
        if self.provider == "openai_compatible" and not self.model_id:
            raise ValueError("model_id is required for provider openai_compatible")
        return self


class Chunking(Section):
    # 254 word pieces + [CLS] + [SEP] = the 256 MiniLM reads; more would be cut silently.
    max_tokens: Annotated[int, Field(gt=32, le=254)] = 200
    overlap_tokens: Annotated[int, Field(ge=0)] = 32

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Chunking:
        if self.overlap_tokens >= self.max_tokens:
            raise ValueError("overlap_tokens must be smaller than max_tokens")
        return self


class Knowledge(Section):
    embedding_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    chunking: Chunking = Chunking()


class Jobs(Section):
    deadline_ms: PositiveInt = 60_000
    lease_ms: PositiveInt = 120_000
    requeue_after_ms: PositiveInt = 30_000
    sweep_interval_ms: PositiveInt = 5_000


class RaglineConfig(Section):
    assistant_pipeline: AssistantPipeline = AssistantPipeline()
    models: dict[str, ModelSpec] = Field(
        default_factory=lambda: {"production-default": ModelSpec(provider="extractive")}
    )
    knowledge: Knowledge = Knowledge()
    jobs: Jobs = Jobs()

    @model_validator(mode="after")
    def _generation_model_is_known(self) -> RaglineConfig:
        name = self.assistant_pipeline.generation.model
        if name not in self.models:
            known = ", ".join(sorted(self.models)) or "none"
            raise ValueError(
                f"assistant_pipeline.generation.model '{name}' is not in models (known: {known})"
            )
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
