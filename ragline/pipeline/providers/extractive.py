"""The extractive provider: answers with the passages' own sentences, never invented text.

It needs no model server, so it is the embedded default. It picks the sentences most similar
to the question (cosine on MiniLM embeddings) and cites the passages they came from.
Confidence is scored afterwards as for any provider (pipeline/confidence.py).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import numpy as np

from ragline.errors import ModelTimeout
from ragline.knowledge.chunking import passage_sentences
from ragline.knowledge.embedder import Embedder
from ragline.pipeline.generate import Generation, GenerationRequest

MODEL_ID = "extractive"
NO_ANSWER = "No passage in the knowledge base answers this question."

# Sentence embeddings barely see numbers ("above 2,000 EUR" ~ "up to 500 EUR"), so ranking
# adds a bonus for the question's own terms, numbers counting double.
LEXICAL_WEIGHT = 0.5
_TERM = re.compile(r"[a-z]+|\d[\d,.%]*")
_STOPWORDS = frozenset(
    "a an and are as at be can do does for from get how i in is it many much my of on or "
    "our the to what when where which who why will with you your".split()
)


def _terms(text: str) -> set[str]:
    return {t.rstrip(".,") for t in _TERM.findall(text.lower()) if t not in _STOPWORDS}


def _overlap(question_terms: set[str], sentence: str) -> float:
    if not question_terms:
        return 0.0
    found = _terms(sentence)
    weight = {t: 2.0 if t[0].isdigit() else 1.0 for t in question_terms}
    return sum(w for t, w in weight.items() if t in found) / sum(weight.values())


@dataclass(frozen=True)
class _Sentence:
    passage: int
    position: int
    text: str


class ExtractiveGenerator:
    model_id = MODEL_ID

    def __init__(
        self,
        embedder: Embedder,
        max_sentences: int = 3,
        min_words: int = 4,
        keep_within: float = 0.15,
    ) -> None:
        self._embedder = embedder
        self._max_sentences = max_sentences
        self._min_words = min_words
        # Sentences scoring within this margin of the best one are kept as context.
        self._keep_within = keep_within

    def generate(self, request: GenerationRequest, timeout_s: float) -> Generation:
        started = time.monotonic()
        if timeout_s <= 0:
            raise ModelTimeout("no time left for the extractive answer")
        candidates = self._candidates(request)
        if not candidates:
            return Generation(text=NO_ANSWER, cited=[], model_id=MODEL_ID)
        question = (
            request.question_vector
            if request.question_vector is not None
            else self._embedder.embed_one(request.question)
        )
        similarities = self._embedder.embed_cached([c.text for c in candidates]) @ question
        if time.monotonic() - started > timeout_s:
            raise ModelTimeout(f"extractive answer exceeded {timeout_s:.3f}s")
        question_terms = _terms(request.question)
        ranks = similarities + LEXICAL_WEIGHT * np.array(
            [_overlap(question_terms, c.text) for c in candidates]
        )
        order = np.argsort(-ranks)
        best_rank = float(ranks[order[0]])
        chosen = [
            candidates[i]
            for i in order[: self._max_sentences]
            if float(ranks[i]) >= best_rank - self._keep_within
        ]
        chosen = _with_continuations(chosen, candidates)
        chosen.sort(key=lambda s: (s.passage, s.position))
        text = " ".join(f"{s.text} [{s.passage + 1}]" for s in chosen)
        cited = sorted({s.passage for s in chosen})
        return Generation(text=text, cited=cited, model_id=MODEL_ID)

    def _candidates(self, request: GenerationRequest) -> list[_Sentence]:
        sentences: list[_Sentence] = []
        seen: set[str] = set()
        for index, passage in enumerate(request.passages):
            position = 0
            for sentence in passage_sentences(passage.text, self._min_words):
                if sentence in seen:
                    continue
                seen.add(sentence)
                sentences.append(_Sentence(index, position, sentence))
                position += 1
        return sentences


def _with_continuations(chosen: list[_Sentence], candidates: list[_Sentence]) -> list[_Sentence]:
    """A sentence ending in ':' introduces the next one (a list); keep the pair together."""
    result = list(chosen)
    for sentence in chosen:
        if sentence.text.endswith(":"):
            following = next(
                (
                    c
                    for c in candidates
                    if c.passage == sentence.passage and c.position == sentence.position + 1
                ),
                None,
            )
            if following is not None and following not in result:
                result.append(following)
    return result
