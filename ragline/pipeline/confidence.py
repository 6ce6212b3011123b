"""Confidence: how much to trust an answer, from retrieval strength and support.

MiniLM cosine similarities between a question and a passage that answers it are typically
0.55-0.8; unrelated text scores below 0.3 and near misses 0.3-0.5 (measured on the demo
handbook, see the README's Confidence section). Scores are mapped linearly between those
anchors to 0..1. An answer that cites no passage is not grounded and gets 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from ragline.knowledge.store import Passage
from ragline.pipeline.generate import Generation

WEAK_SIMILARITY = 0.30
STRONG_SIMILARITY = 0.70


def _scale(similarity: float) -> float:
    value = (similarity - WEAK_SIMILARITY) / (STRONG_SIMILARITY - WEAK_SIMILARITY)
    return round(min(1.0, max(0.0, value)), 4)


@dataclass(frozen=True)
class Confidence:
    value: float
    retrieval: float
    support: float | None
    grounded: bool

    def as_dict(self) -> dict[str, float | bool | None]:
        return {
            "value": self.value,
            "retrieval": self.retrieval,
            "support": self.support,
            "grounded": self.grounded,
        }


def score_confidence(passages: list[Passage], generation: Generation) -> Confidence:
    retrieval = _scale(max((p.score for p in passages), default=0.0))
    support = None if generation.support is None else _scale(generation.support)
    grounded = bool(generation.cited)
    if not grounded:
        value = 0.0
    elif support is None:
        value = retrieval
    else:
        value = round((retrieval + support) / 2, 4)
    return Confidence(value=value, retrieval=retrieval, support=support, grounded=grounded)
