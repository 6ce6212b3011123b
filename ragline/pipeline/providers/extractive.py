"""The extractive provider: answers with the passages' own sentences, never invented text.

It needs no model server, so it is the embedded default. It answers with the sentence that
best answers the question (cosine on MiniLM embeddings, plus the question's own terms, plus
a bonus when it offers the type of answer asked for: a number for "how many") and cites its
passage: a concise answer, not three loosely related sentences. A second sentence is kept
only when it ranks within KEEP_WITHIN of the first (the passages tie), and a sentence ending
in ":" keeps the list item that follows it. Measured on the handbook's answerable questions
(eval/answerability/, eval/guardrails.jsonl; README "The decision"): token F1 0.37 and
must-include 0.82, where the three-sentence answers of earlier versions scored 0.33 and 0.89.
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
from ragline.knowledge.lexical import LexicalEncoder
from ragline.pipeline.answerability import offered_answer_type, question_type
from ragline.pipeline.generate import Generation, GenerationRequest

MODEL_ID = "extractive"
NO_ANSWER = "No passage in the knowledge base answers this question."

# Sentence embeddings barely see numbers ("above 2,000 EUR" ~ "up to 500 EUR"), so ranking
# adds a bonus for the question's own terms (stemmed), numbers counting double.
LEXICAL_WEIGHT = 0.5
ANSWER_TYPE_BONUS = 0.1
KEEP_WITHIN = 0.05
_NUMBER = re.compile(r"\d[\d,.%]*")


def _terms(text: str, lexical: LexicalEncoder) -> set[str]:
    numbers = {n.rstrip(".,") for n in _NUMBER.findall(text)}
    words = {t for t in lexical.terms(_NUMBER.sub(" ", text)) if not t[0].isdigit()}
    return numbers | words


def _overlap(question_terms: set[str], sentence: str, lexical: LexicalEncoder) -> float:
    if not question_terms:
        return 0.0
    found = _terms(sentence, lexical)
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
        max_sentences: int = 2,
        min_words: int = 4,
        keep_within: float = KEEP_WITHIN,
    ) -> None:
        self._embedder = embedder
        self._lexical = LexicalEncoder()
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
            return Generation(text=NO_ANSWER, cited=[], model_id=MODEL_ID, declined=True)
        question = (
            request.question_vector
            if request.question_vector is not None
            else self._embedder.embed_one(request.question)
        )
        similarities = self._embedder.embed_cached([c.text for c in candidates]) @ question
        if time.monotonic() - started > timeout_s:
            raise ModelTimeout(f"extractive answer exceeded {timeout_s:.3f}s")
        question_terms = _terms(request.question, self._lexical)
        kind = question_type(request.question)
        ranks = similarities + np.array(
            [
                LEXICAL_WEIGHT * _overlap(question_terms, c.text, self._lexical)
                + ANSWER_TYPE_BONUS * all(offered_answer_type(kind, c.text, request.question))
                for c in candidates
            ]
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
        return Generation(text=text, cited=cited, model_id=MODEL_ID, declined=False)

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
