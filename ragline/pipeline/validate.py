"""Input validation: the same rules at admission (API) and at the start of a job (worker)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from ragline.config import InputValidation
from ragline.errors import InvalidInput

MAX_METADATA_BYTES = 16_384
MAX_METADATA_DEPTH = 32  # the API serialises responses only so deep


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
    # false: never answered from the answer cache, nor offered to equivalent questions.
    cache: StrictBool = True


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
    for name, value in (
        ("question", question),
        ("user_id", request.user_id),
        ("feature", request.feature),
    ):
        if value is not None and not storable(value):
            raise InvalidInput(
                f"{name} must be text (it contains a NUL or an unpaired surrogate)", field=name
            )
    if not any(ch.isalnum() for ch in question):
        raise InvalidInput("question must contain words", field="question")
    if rules.require_user_id and not (request.user_id and request.user_id.strip()):
        raise InvalidInput("user_id is required", field="user_id")
    if _depth(request.metadata) > MAX_METADATA_DEPTH:
        raise InvalidInput(
            f"metadata is nested deeper than {MAX_METADATA_DEPTH} levels", field="metadata"
        )
    try:
        # As it will be stored and served: strict JSON (no NaN or Infinity), valid UTF-8.
        encoded = json.dumps(request.metadata, ensure_ascii=False, allow_nan=False)
        if not storable(encoded):
            raise ValueError("a NUL or an unpaired surrogate")
    except ValueError as error:
        raise InvalidInput(f"metadata must be plain JSON ({error})", field="metadata") from None
    if len(encoded) > MAX_METADATA_BYTES:
        raise InvalidInput(
            f"metadata is larger than {MAX_METADATA_BYTES} bytes as JSON", field="metadata"
        )


NOT_STORABLE = "must be text (it contains a NUL or an unpaired surrogate)"


def storable(text: str) -> bool:
    """Text every database and JSON encoder takes: UTF-8 encodable, no NUL."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_METADATA_DEPTH:
        return level  # deep enough to refuse; do not walk the rest
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level
