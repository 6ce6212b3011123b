"""Why a job is in front of a person: the review queue's one vocabulary. The pipeline
escalates with these, the config keys service levels by them, the queue filters and the
review page lists them."""

from __future__ import annotations

from enum import StrEnum


class ReviewReason(StrEnum):
    LOW_CONFIDENCE = "low_confidence"  # the decision scorer, or unsupported answer sentences
    NO_ANSWER = "no_answer"  # the model itself said the passages do not answer
    POLICY = "policy"
    TIMEOUT = "timeout"
    MODEL_ERROR = "model_error"
    OVER_BUDGET = "over_budget"
    SAMPLED = "sampled"  # an answered job copied to the queue for quality review
    # The answer cache (ragline/cache/): the new answer contradicts an equivalent question's
    # recent answer under the same versions; or a reviewer rejected an equivalent's answer.
    INCONSISTENT = "inconsistent"
    PREVIOUSLY_REJECTED = "previously_rejected"
