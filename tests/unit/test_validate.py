import pytest
from pydantic import ValidationError

from ragline.config import InputValidation
from ragline.errors import InvalidInput
from ragline.pipeline.validate import JobRequest, validate_request

RULES = InputValidation(require_user_id=True, max_prompt_chars=100)


def test_a_good_request_passes() -> None:
    validate_request(JobRequest(question="How much leave?", user_id="u1"), RULES)


@pytest.mark.parametrize(
    ("request_", "field", "message"),
    [
        (JobRequest(question="   ", user_id="u1"), "question", "empty"),
        (JobRequest(question="x" * 101, user_id="u1"), "question", "limit is 100"),
        (JobRequest(question="?!? ...", user_id="u1"), "question", "words"),
        (JobRequest(question="a\x00b", user_id="u1"), "question", "NUL"),
        (JobRequest(question="How much leave?"), "user_id", "required"),
        (JobRequest(question="How much leave?", user_id="  "), "user_id", "required"),
        (
            JobRequest(question="How?", user_id="u", metadata={"blob": "x" * 20_000}),
            "metadata",
            "larger",
        ),
    ],
)
def test_bad_requests_name_the_field(request_: JobRequest, field: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as raised:
        validate_request(request_, RULES)
    assert raised.value.field == field


def test_user_id_is_optional_when_the_config_says_so() -> None:
    validate_request(JobRequest(question="How much leave?"), InputValidation(require_user_id=False))


@pytest.mark.parametrize(
    "body",
    [
        {"question": 42, "user_id": "u"},
        {"question": ["a"], "user_id": "u"},
        {"user_id": "u"},
        {"question": "ok", "user_id": "u", "unknown": 1},
    ],
)
def test_non_text_missing_or_unknown_fields_are_refused(body: dict) -> None:
    with pytest.raises(ValidationError):
        JobRequest.model_validate(body)
