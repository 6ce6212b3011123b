"""Input validation: the same rules at admission (API) and at the start of a job (worker)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from ragline.config import InputValidation
from ragline.errors import InvalidInput

MAX_METADATA_BYTES = 16_384


class JobRequest(BaseModel):
    """What a business system submits. Unknown fields are refused, not dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: StrictStr
    user_id: StrictStr | None = Field(default=None, max_length=255)
    feature: StrictStr | None = Field(default=None, max_length=255)
    metadata: dict[str, Any] = Field(default_factory=dict)
    # Orders the review queue if the job is escalated.
    priority: Literal["low", "normal", "high"] = "normal"
    # Where the final result is POSTed (Standard Webhooks signature); polling works without.
    callback_url: StrictStr | None = Field(default=None, max_length=2048)


def validate_request(request: JobRequest, rules: InputValidation) -> None:
    """Raise InvalidInput naming the field when the request breaks the configured rules."""
    question = request.question
    if not question.strip():
        raise InvalidInput("question must not be empty", field="question")
    if len(question) > rules.max_prompt_chars:
        raise InvalidInput(
            f"question is {len(question)} characters; the limit is {rules.max_prompt_chars}",
            field="question",
        )
    if "\x00" in question:
        raise InvalidInput("question must be text (it contains a NUL character)", field="question")
    if not any(ch.isalnum() for ch in question):
        raise InvalidInput("question must contain words", field="question")
    if rules.require_user_id and not (request.user_id and request.user_id.strip()):
        raise InvalidInput("user_id is required", field="user_id")
    if len(json.dumps(request.metadata, ensure_ascii=False)) > MAX_METADATA_BYTES:
        raise InvalidInput(
            f"metadata is larger than {MAX_METADATA_BYTES} bytes as JSON", field="metadata"
        )
