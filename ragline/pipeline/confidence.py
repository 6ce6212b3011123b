"""Confidence inputs: retrieval strength, the answer's relevance and its grounding.

The job's confidence is the decision scorer's calibrated probability (ragline/decision/),
which takes these among its signals. The formula below is what routes a pipeline built
without a scorer (tests of the stages around it), and stays recorded on every job:

    retrieval  = scale(top + 0.5 * margin)        how well the knowledge base covers the question
    relevance  = scale(max cos(question, answer sentence))   whether the answer addresses it
    grounding  = GroundingChecker score            whether the passages support the answer
    value      = (retrieval + relevance) / 2 * min(1, grounding / 0.75)
    value      = 0 when the answer cites no passage or has no sentence to check

top is the best passage's cosine similarity to the question (every retrieval mode reports
cosine), margin the gap to the second. scale() maps MiniLM cosines linearly from 0.30 (unrelated
text) to 0.70 (a passage that answers the question) onto [0, 1]; the anchors and weights were
calibrated on eval/guardrails.jsonl (README "The decision"). Grounding only lowers confidence:
an answer supported at 0.75 or better keeps its full score, paraphrasing being normal.
"""

from __future__ import annotations

import re
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
    relevance_cosine: float = 0.0  # the unscaled cosine behind relevance

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
    relevance = cosine = 0.0
    if grounding is not None:
        vectors = embedder.embed_cached([s.text for s in grounding.sentences])
        cosine = float(np.max(vectors @ question_vector))
        relevance = _scale(cosine)
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
        relevance_cosine=round(cosine, 4),
    )


# How models say the passages do not answer ("I cannot answer this from the knowledge
# base.", "The passages don't mention ...", "There is no information about ..."). Only
# wordings about answering or about the sources: an answer quoting a rule ("do not include
# customer data") is not a refusal.
_SOURCE = (
    r"(?:passages?|context|knowledge base|documents?|sources?|excerpts?|handbook|"
    r"provided (?:text|information))"
)
_DECLINES = re.compile(
    r"\b(?:"
    # "I cannot answer …", "I'm not able to find …", "unable to determine this …"
    r"(?:i|we)(?: can ?not| can't| could ?not| couldn't| do not| don't|(?:'m| am|'re| are) "
    r"(?:not able to|unable to)) (?:answer|determine|find|tell|say|confirm|see)"
    r"|unable to (?:answer|determine|find|tell)"
    r"|not possible to (?:answer|determine|tell|say)"
    # "The passages don't mention …", "the handbook excerpts do not cover …"
    rf"|{_SOURCE},? (?:do|does|did) ?(?:not|n't) (?:contain|mention|say|state|specify|include|"
    r"cover|provide|address|answer|discuss|describe|give|list|explain)"
    rf"|(?:none|neither) of the (?:\w+ )?{_SOURCE} (?:mentions?|says?|states?|covers?|"
    r"contains?|answers?|specif(?:y|ies))"
    rf"|(?:not|never) (?:mentioned|stated|specified|provided|covered|addressed|included|given|"
    rf"described|answered) (?:in|by) (?:the|any|these|this) (?:provided |given )?{_SOURCE}"
    r"|(?:there is|there's|i have|i found|i can find|contains?) no (?:information|mention|"
    r"passage|details?|data|answer)"
    r"|(?:i )?(?:don't|do not) have (?:enough|sufficient|any) information"
    r"|no passage in the knowledge base answers"
    r"|\bi (?:don't|do not) know\b"
    r"|(?:insufficient|not enough) information"
    r")",
    re.IGNORECASE,
)


def declined(answer: str) -> bool:
    """Whether the answer says the passages do not answer the question."""
    return bool(_DECLINES.search(answer.replace("\u2019", "'")))
