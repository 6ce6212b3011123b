"""Confidence: how much to trust an answer, one number in [0, 1] from three measured inputs.

    retrieval  = scale(top + 0.5 * margin)        how well the knowledge base covers the question
    relevance  = scale(max cos(question, answer sentence))   whether the answer addresses it
    grounding  = GroundingChecker score            whether the passages support the answer
    value      = (retrieval + relevance) / 2 * min(1, grounding / 0.75)
    value      = 0 when the answer cites no passage or has no sentence to check

top is the best passage's cosine similarity to the question (every retrieval mode reports
cosine), margin the gap to the second. scale() maps MiniLM cosines linearly from 0.30 (unrelated
text) to 0.70 (a passage that answers the question) onto [0, 1]; the anchors and weights were
calibrated on eval/guardrails.jsonl (README "Confidence"). Grounding only lowers confidence:
an answer supported at 0.75 or better keeps its full score, paraphrasing being normal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ragline.guardrails.grounding import Grounding
from ragline.knowledge.embedder import Embedder, Vectors
from ragline.knowledge.store import Passage

WEAK_SIMILARITY = 0.30
STRONG_SIMILARITY = 0.70
MARGIN_WEIGHT = 0.5
FULLY_GROUNDED = 0.75


def _scale(similarity: float) -> float:
    value = (similarity - WEAK_SIMILARITY) / (STRONG_SIMILARITY - WEAK_SIMILARITY)
    return round(min(1.0, max(0.0, value)), 4)


@dataclass(frozen=True)
class Confidence:
    value: float
    top_score: float
    margin: float
    retrieval: float
    relevance: float
    grounding: float | None
    cited: bool

    def as_dict(self) -> dict[str, float | bool | None]:
        return asdict(self)


def score_confidence(
    passages: list[Passage],
    question_vector: Vectors,
    grounding: Grounding | None,
    cited: bool,
    embedder: Embedder,
) -> Confidence:
    scores = sorted((p.score for p in passages), reverse=True)
    top = scores[0] if scores else 0.0
    margin = scores[0] - scores[1] if len(scores) > 1 else 0.0
    retrieval = _scale(top + MARGIN_WEIGHT * margin)
    relevance = 0.0
    if grounding is not None:
        vectors = embedder.embed_cached([s.text for s in grounding.sentences])
        relevance = _scale(float(np.max(vectors @ question_vector)))
    if not cited or grounding is None:
        value = 0.0
    else:
        value = (retrieval + relevance) / 2 * min(1.0, grounding.score / FULLY_GROUNDED)
    return Confidence(
        value=round(value, 4),
        top_score=round(top, 4),
        margin=round(margin, 4),
        retrieval=retrieval,
        relevance=relevance,
        grounding=None if grounding is None else grounding.score,
        cited=cited,
    )
