"""Generation: one interface, several providers. The pipeline gives a provider the rendered
prompt, the passages and a hard time budget; the provider returns text and which passages
it cites, or raises ModelTimeout / ModelError."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from ragline.config import ModelSpec
from ragline.knowledge.embedder import Vectors
from ragline.knowledge.store import Passage
from ragline.pipeline.prompts import RenderedPrompt


@dataclass(frozen=True)
class GenerationRequest:
    question: str
    passages: list[Passage]
    prompt: RenderedPrompt
    question_vector: Vectors | None = None  # from retrieval, so no provider embeds it again


@dataclass(frozen=True)
class Generation:
    text: str
    cited: list[int]  # 0-based indices into the request's passages
    model_id: str
    input_tokens: int = 0
    output_tokens: int = 0
    usage: dict[str, int] = field(default_factory=dict)
    # True when the provider knows it found no answer (the extractive provider); None
    # when it cannot tell, and the text is read for a refusal (confidence.declined).
    declined: bool | None = None


class Generator(Protocol):
    model_id: str

    def generate(self, request: GenerationRequest, timeout_s: float) -> Generation: ...


@dataclass(frozen=True)
class ChosenModel:
    """A models-table entry ready to call: its name, its spec (prices) and its provider."""

    name: str
    spec: ModelSpec
    generator: Generator


_CITATION = re.compile(r"\[(\d{1,3})\]")


def cited_passages(text: str, passage_count: int) -> list[int]:
    """The [n] markers in text that name a real passage, as 0-based indices, in order."""
    seen: list[int] = []
    for match in _CITATION.finditer(text):
        index = int(match.group(1)) - 1
        if 0 <= index < passage_count and index not in seen:
            seen.append(index)
    return seen
