"""OpenAICompatibleGenerator against a real loopback HTTP server (tests/support/fake_model.py)."""

from __future__ import annotations

import socket

import pytest

from ragline.config import ModelSpec
from ragline.errors import ModelError, ModelTimeout
from ragline.knowledge.store import Passage
from ragline.pipeline.generate import GenerationRequest
from ragline.pipeline.prompts import PromptTemplate
from ragline.pipeline.providers.openai_compatible import OpenAICompatibleGenerator
from tests.support.environment import REPO
from tests.support.fake_model import FakeModelServer

QUESTION = "How many days of annual leave do employees get?"
SPEC = ModelSpec(provider="openai_compatible", model_id="acme/llm-7b", max_tokens=256)


def _passages() -> list[Passage]:
    return [
        Passage(
            chunk_id="hr/annual-leave#0",
            document_id="hr/annual-leave",
            title="Annual leave",
            source="hr/annual-leave.md",
            text="Annual leave > Entitlement\nEmployees receive 25 days of paid annual leave.",
            score=0.71,
        ),
        Passage(
            chunk_id="hr/sick-leave#0",
            document_id="hr/sick-leave",
            title="Sick leave",
            source="hr/sick-leave.md",
            text="Sick leave > Reporting\nReport sickness to your manager before 10:00.",
            score=0.42,
        ),
        Passage(
            chunk_id="hr/expenses-policy#0",
            document_id="hr/expenses-policy",
            title="Expenses",
            source="hr/expenses-policy.md",
            text="Expenses > Receipts\nKeep every receipt for expenses above 25 EUR.",
            score=0.33,
        ),
    ]


@pytest.fixture(scope="module")
def request_() -> GenerationRequest:
    passages = _passages()
    prompt = PromptTemplate.load(REPO / "prompts", "answer").render(QUESTION, passages)
    return GenerationRequest(question=QUESTION, passages=passages, prompt=prompt)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_answer_returns_text_citations_and_usage(
    fake_model: FakeModelServer, request_: GenerationRequest
) -> None:
    fake_model.behaviour.reply = "You get 25 days [1]; report sickness early [3][9][0] [1]."
    generator = OpenAICompatibleGenerator(SPEC, fake_model.base_url, api_key="sk-test")

    generation = generator.generate(request_, timeout_s=5.0)

    assert generation.text == "You get 25 days [1]; report sickness early [3][9][0] [1]."
    # [9] and [0] name no passage; [1] is counted once; order of first appearance.
    assert generation.cited == [0, 2]
    assert generation.model_id == "acme/llm-7b"
    assert generation.input_tokens == 120
    assert generation.output_tokens == 12
    assert generation.usage == {"prompt_tokens": 120, "completion_tokens": 12, "total_tokens": 132}


def test_request_shape_path_and_authorization(
    fake_model: FakeModelServer, request_: GenerationRequest
) -> None:
    generator = OpenAICompatibleGenerator(SPEC, fake_model.base_url + "/", api_key="sk-test")
    generator.generate(request_, timeout_s=5.0)

    assert len(fake_model.behaviour.requests) == 1
    sent = fake_model.behaviour.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    body = sent["body"]
    assert body["model"] == "acme/llm-7b"
    assert body["max_tokens"] == 256
    assert body["temperature"] == 0.0
    assert body["messages"] == request_.prompt.messages()
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "Employees receive 25 days of paid annual leave." in body["messages"][1]["content"]
    headers = {k.lower(): v for k, v in sent["headers"].items()}
    assert headers["authorization"] == "Bearer sk-test"
    assert headers["content-type"].startswith("application/json")


def test_no_api_key_sends_no_authorization(
    fake_model: FakeModelServer, request_: GenerationRequest
) -> None:
    OpenAICompatibleGenerator(SPEC, fake_model.base_url).generate(request_, timeout_s=5.0)
    headers = {k.lower() for k in fake_model.behaviour.requests[0]["headers"]}
    assert "authorization" not in headers


def test_slower_than_timeout_is_model_timeout(
    fake_model: FakeModelServer, request_: GenerationRequest
) -> None:
    fake_model.behaviour.delay_s = 1.5
    generator = OpenAICompatibleGenerator(SPEC, fake_model.base_url)
    with pytest.raises(ModelTimeout):
        generator.generate(request_, timeout_s=0.3)
    assert len(fake_model.behaviour.requests) == 1


def test_hanging_server_is_model_timeout(
    fake_model: FakeModelServer, request_: GenerationRequest
) -> None:
    fake_model.behaviour.mode = "hang"
    generator = OpenAICompatibleGenerator(SPEC, fake_model.base_url)
    with pytest.raises(ModelTimeout):
        generator.generate(request_, timeout_s=0.3)


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_is_model_error_not_timeout(
    fake_model: FakeModelServer, request_: GenerationRequest, status: int
) -> None:
    fake_model.behaviour.mode = "error"
    fake_model.behaviour.status = status
    generator = OpenAICompatibleGenerator(SPEC, fake_model.base_url)
    with pytest.raises(ModelError) as caught:
        generator.generate(request_, timeout_s=5.0)
    assert not isinstance(caught.value, ModelTimeout)
    assert str(status) in str(caught.value)


def test_garbage_body_is_model_error(
    fake_model: FakeModelServer, request_: GenerationRequest
) -> None:
    fake_model.behaviour.mode = "garbage"
    generator = OpenAICompatibleGenerator(SPEC, fake_model.base_url)
    with pytest.raises(ModelError) as caught:
        generator.generate(request_, timeout_s=5.0)
    assert not isinstance(caught.value, ModelTimeout)


def test_blank_reply_is_model_error(
    fake_model: FakeModelServer, request_: GenerationRequest
) -> None:
    fake_model.behaviour.reply = "   \n "
    generator = OpenAICompatibleGenerator(SPEC, fake_model.base_url)
    with pytest.raises(ModelError) as caught:
        generator.generate(request_, timeout_s=5.0)
    assert not isinstance(caught.value, ModelTimeout)


def test_oversized_body_is_model_error(
    fake_model: FakeModelServer, request_: GenerationRequest
) -> None:
    fake_model.behaviour.mode = "huge"
    spec = SPEC.model_copy(update={"max_response_bytes": 100_000})
    generator = OpenAICompatibleGenerator(spec, fake_model.base_url)
    with pytest.raises(ModelError) as caught:
        generator.generate(request_, timeout_s=5.0)
    assert not isinstance(caught.value, ModelTimeout)
    assert "100000" in str(caught.value)


def test_unknown_path_is_model_error(
    fake_model: FakeModelServer, request_: GenerationRequest
) -> None:
    # base_url without /v1: the server answers 404 on /chat/completions.
    base = fake_model.base_url.removesuffix("/v1")
    with pytest.raises(ModelError) as caught:
        OpenAICompatibleGenerator(SPEC, base).generate(request_, timeout_s=5.0)
    assert not isinstance(caught.value, ModelTimeout)
    assert fake_model.behaviour.requests[0]["path"] == "/chat/completions"


def test_closed_port_is_model_error(request_: GenerationRequest) -> None:
    generator = OpenAICompatibleGenerator(SPEC, f"http://127.0.0.1:{_closed_port()}/v1")
    with pytest.raises(ModelError) as caught:
        generator.generate(request_, timeout_s=2.0)
    assert not isinstance(caught.value, ModelTimeout)


@pytest.mark.parametrize("timeout_s", [0.0, -1.0])
def test_no_time_left_is_timeout_without_request(
    fake_model: FakeModelServer, request_: GenerationRequest, timeout_s: float
) -> None:
    generator = OpenAICompatibleGenerator(SPEC, fake_model.base_url)
    with pytest.raises(ModelTimeout):
        generator.generate(request_, timeout_s=timeout_s)
    assert fake_model.behaviour.requests == []
