"""Grounding: is each sentence of an answer supported by the retrieved passages?

A sentence's support combines two signals, because each alone is fooled:
- similarity: the best MiniLM cosine between the sentence and any passage sentence, mapped
  from [0.35, 0.85] to [0, 1] (paraphrases score 0.6-0.9, unrelated sentences below 0.35);
- overlap: the share of the sentence's content terms (stemmed, stopwords out) found in the
  passages; embeddings barely see numbers and names, terms do ("30 days" vs "20 days").
support = 0.5 * similarity + 0.5 * overlap, capped at 0.4 when the sentence states a number
that no passage states; a sentence under 0.5 is unsupported. The answer's grounding is the
word-weighted mean support of its sentences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ragline.knowledge.chunking import passage_sentences, split_sentences
from ragline.knowledge.embedder import Embedder, Vectors
from ragline.knowledge.lexical import LexicalEncoder
from ragline.knowledge.store import Passage

LOW_SIMILARITY = 0.35
HIGH_SIMILARITY = 0.85
SUPPORTED = 0.5
UNSUPPORTED_NUMBER = 0.4  # the cap for a sentence stating a number no passage states
_CITATION = re.compile(r"\s*\[\d{1,3}\]")
_PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*_\d+>")


@dataclass(frozen=True)
class SentenceSupport:
    text: str
    similarity: float
    overlap: float
    support: float
    # The passage sentence most like it, and its passage's number (1-based, as cited):
    # what a reviewer reads to check the sentence.
    evidence: str = ""
    passage: int | None = None

    @property
    def supported(self) -> bool:
        return self.support >= SUPPORTED

    def as_dict(self) -> dict[str, object]:
        return {
            "text": self.text,
            "similarity": self.similarity,
            "overlap": self.overlap,
            "support": self.support,
            "supported": self.supported,
            "evidence": self.evidence,
            "passage": self.passage,
        }


@dataclass(frozen=True)
class Grounding:
    score: float
    sentences: list[SentenceSupport]

    @property
    def unsupported(self) -> list[SentenceSupport]:
        return [s for s in self.sentences if not s.supported]


def _scale(similarity: float) -> float:
    return min(1.0, max(0.0, (similarity - LOW_SIMILARITY) / (HIGH_SIMILARITY - LOW_SIMILARITY)))


def answer_sentences(answer: str) -> list[str]:
    """The answer's sentences without citation markers; fragments of < 3 words are left
    out (a heading, "See [2].")."""
    sentences = []
    for sentence in split_sentences(_CITATION.sub("", answer)):
        if len(sentence.split()) >= 3:
            sentences.append(sentence)
    return sentences


class GroundingChecker:
    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.lexical = LexicalEncoder()

    def check(self, answer: str, passages: list[Passage]) -> Grounding | None:
        """None when the answer has no sentence to check (or there are no passages)."""
        sentences = answer_sentences(answer)
        found = [(n, s) for n, p in enumerate(passages, 1) for s in passage_sentences(p.text)]
        evidence = [sentence for _, sentence in found]
        if not sentences or not evidence:
            return None
        vectors = self.embedder.embed_cached(sentences + evidence)
        similarities: Vectors = vectors[: len(sentences)] @ vectors[len(sentences) :].T
        similarity: Vectors = similarities.max(axis=1)
        closest = similarities.argmax(axis=1)
        known = {t for p in passages for t in self.lexical.terms(p.text)}
        results, weights = [], []
        for sentence, best, nearest in zip(sentences, similarity, closest, strict=True):
            terms = set(self.lexical.terms(_PLACEHOLDER.sub(" ", sentence)))
            overlap = len(terms & known) / len(terms) if terms else 0.0
            support = 0.5 * _scale(float(best)) + 0.5 * overlap
            if any(t[0].isdigit() and t not in known for t in terms):
                # A number the passages do not contain is the classic invented detail.
                support = min(support, UNSUPPORTED_NUMBER)
            passage, evidence_sentence = found[int(nearest)]
            results.append(
                SentenceSupport(
                    sentence,
                    round(float(best), 4),
                    round(overlap, 4),
                    round(support, 4),
                    evidence=evidence_sentence,
                    passage=passage,
                )
            )
            weights.append(len(sentence.split()))
        score = float(np.average([r.support for r in results], weights=weights))
        return Grounding(round(score, 4), results)
