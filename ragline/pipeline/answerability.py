"""Answerability signals: do the retrieved passages answer *this* question, or only talk
about its topic?

Near-miss questions reuse a passage's own names and terms, so topic similarity (the
retrieval score) barely separates them from answerable ones. What does is whether the one
sentence that would answer covers every specific constraint of the question (the entity,
the date, the qualifier), offers something of the type asked for (a number for "how many",
a date for "when"), and agrees with it on negation and direction (first/last, before/after).
This module measures those signals; the decision scorer (ragline/decision/) learns how to
weigh them from labelled data. Every value is a float, named in SIGNALS, so a scorer
artifact can say exactly what it was trained on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from ragline.knowledge.chunking import passage_sentences
from ragline.knowledge.embedder import Embedder, Vectors
from ragline.knowledge.lexical import STOPWORDS, LexicalEncoder
from ragline.knowledge.store import Passage

# Words that ask rather than constrain: they never need to appear in the answer.
_ASKING = frozenset(
    """what which who whom whose when where why how many much long old far often large big
    name named called call kind type sort year years date day time number amount percent
    percentage did does do is are was were can could should would will may might must
    tell give list describe explain mean means meaning one ones""".split()
)
_RAW_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d[\d,.]*")
_NEGATIONS = frozenset("not no never none nor neither without cannot n't nobody nothing".split())
# Each word with every opposite it has ("lower": higher and upper).
_ANTONYM_PAIRS = (
    "first last",
    "before after",
    "earliest latest",
    "minimum maximum",
    "min max",
    "least most",
    "largest smallest",
    "biggest smallest",
    "highest lowest",
    "longest shortest",
    "oldest youngest",
    "older younger",
    "increase decrease",
    "increased decreased",
    "rise fall",
    "rose fell",
    "gain loss",
    "win lose",
    "won lost",
    "above below",
    "over under",
    "more less",
    "more fewer",
    "higher lower",
    "north south",
    "east west",
    "start end",
    "began ended",
    "beginning end",
    "early late",
    "inside outside",
    "internal external",
    "upper lower",
    "allowed prohibited",
    "allowed forbidden",
    "accept reject",
    "accepted rejected",
    "approve decline",
    "success failure",
    "public private",
    "full partial",
    "paid unpaid",
    "northern southern",
    "eastern western",
    "northward southward",
    "eastward westward",
    "wettest driest",
    "wet dry",
    "hottest coldest",
    "warmest coldest",
    "deepest shallowest",
    "heaviest lightest",
    "fastest slowest",
    "strongest weakest",
    "richest poorest",
    "horizontal vertical",
    "arrival departure",
    "arrive depart",
    "arrived departed",
    "import export",
    "imported exported",
    "imports exports",
    "inner outer",
    "entrance exit",
    "ancient modern",
)
_ANTONYMS: dict[str, frozenset[str]] = {
    word: frozenset(
        other for pair in _ANTONYM_PAIRS if word in pair.split() for other in pair.split()
    )
    - {word}
    for pair in _ANTONYM_PAIRS
    for word in pair.split()
}
_MONTHS = frozenset(
    """january february march april may june july august september october november
    december jan feb mar apr jun jul aug sep sept oct nov dec""".split()
)
_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})s?\b")
_NUMBER = re.compile(r"\d")
_NUMBER_WORDS = frozenset(
    """one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty
    forty fifty hundred thousand million billion half quarter dozen once twice""".split()
)
_TIME_WORDS = frozenset(
    """century centuries decade decades year years month months week weeks day days hour
    hours minute minutes daily weekly monthly yearly annually morning evening""".split()
)

# The question's type, by its opening words; the order matters ("how many" before "how").
QUESTION_TYPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "quantity",
        (
            "how many",
            "how much",
            "how long",
            "how old",
            "how far",
            "how often",
            "how large",
            "how big",
            "how high",
            "how tall",
            "what percentage",
            "what percent",
            "what number",
            "what amount",
            "what proportion",
        ),
    ),
    (
        "time",
        (
            "when",
            "what year",
            "which year",
            "what date",
            "what day",
            "what time",
            "what century",
            "which century",
            "what month",
            "which month",
            "in what year",
            "in which year",
            "by when",
            "until when",
            "since when",
        ),
    ),
    ("person", ("who", "whom", "whose")),
    (
        "place",
        (
            "where",
            "in what country",
            "which country",
            "what country",
            "what city",
            "which city",
            "in which city",
            "in what city",
        ),
    ),
    ("reason", ("why",)),
    ("manner", ("how",)),
    ("choice", ("which",)),
    (
        "polar",
        (
            "is ",
            "are ",
            "can ",
            "does ",
            "do ",
            "did ",
            "was ",
            "were ",
            "will ",
            "should ",
            "could ",
            "has ",
            "have ",
        ),
    ),
)
TYPE_NAMES = ("quantity", "time", "person", "place", "reason", "manner", "choice", "polar")

SIGNALS: tuple[str, ...] = (
    "top_score",  # the best passage's cosine similarity to the question
    "margin",  # its lead over the second passage
    "sentence_similarity",  # cosine of the question and its best-matching sentence
    "sentence_coverage",  # share of the question's content terms in that sentence
    "sentence_specific_coverage",  # ... of its specific terms (names, numbers, rare words)
    "passage_coverage",  # share of the content terms in that sentence's passage
    "passages_coverage",  # ... in any retrieved passage
    "passage_specific_missing",  # specific terms the best passage lacks (count)
    "passages_specific_missing",  # ... no retrieved passage has (count)
    "names_missing",  # names and numbers of the question no retrieved passage states
    "passage_missing",  # content terms the best passage lacks (count)
    "bigram_coverage",  # share of the question's adjacent term pairs in the best passage
    "elsewhere_in_passage",  # content terms the passage has but not in the best sentence
    "weakest_match",  # the question word with the least counterpart in the best sentence
    "soft_coverage",  # mean over question words of their best counterpart (1 when exact)
    "answer_type_found",  # the best sentence offers what the question type asks for
    "answer_type_known",  # 1 when the question's type implies an answer type
    "novelty",  # share of the best sentence's terms that the question does not already hold
    "negation_mismatch",  # the question negates and the sentence does not, or vice versa
    "question_negated",  # the question itself negates ("which ... did not ...")
    "antonym_conflict",  # the sentence holds the opposite of a question word, not the word
    "question_terms",  # how many content terms the question has
    "sentence_rank_gap",  # best sentence's lead over the best sentence of another passage
    "grounding",  # how well the passages support the answer (1 when there is no answer)
    "answer_relevance",  # cosine of the question and the answer's closest sentence
    *(f"type_{name}" for name in TYPE_NAMES),
)


@dataclass(frozen=True)
class Evidence:
    """The sentence that best answers the question, and where it came from."""

    text: str
    passage: int  # index into the passages
    similarity: float


@dataclass(frozen=True)
class AnswerabilitySignals:
    values: dict[str, float]
    evidence: Evidence | None
    missing: list[str]  # the question's specific terms no retrieved passage states

    def vector(self, names: Sequence[str] = SIGNALS) -> list[float]:
        return [self.values[name] for name in names]

    def as_dict(self) -> dict[str, object]:
        return {
            "signals": {k: round(v, 4) for k, v in self.values.items()},
            "evidence": None
            if self.evidence is None
            else {"text": self.evidence.text, "passage": self.evidence.passage + 1},
            "missing": self.missing,
        }


_PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*_\d+>")
# Sentence ends, and a colon before a question ("… charged twice: how do I dispute it?").
_SENTENCE = re.compile(
    r"(?<=[.!?])\s+|(?<=:)\s+(?=(?:how|what|which|who|whom|whose|when|where|why|can|do|does|"
    r"is|are|should|will)\b)",
    re.IGNORECASE,
)


def asked_part(question: str) -> str:
    """What is asked, without what surrounds it: PII placeholders out, and of a message
    with a preamble ("My salary goes to <IBAN_1>. How many sick days ...?") the last
    question sentence, with the sentence before it when it alone says too little
    ("... into a team chat. What should I do?")."""
    text = " ".join(_PLACEHOLDER.sub(" ", question).split())
    sentences = [s for s in _SENTENCE.split(text) if s.strip()]
    asking = [i for i, s in enumerate(sentences) if s.rstrip().endswith("?")]
    if len(sentences) < 2 or not asking:
        return text
    last = asking[-1]
    chosen = sentences[last]
    if len(_RAW_WORD.findall(chosen)) < 6 and last > 0:
        chosen = f"{sentences[last - 1]} {chosen}"
    return chosen


def question_type(question: str) -> str | None:
    opening = " ".join(question.lower().split())
    for name, openers in QUESTION_TYPES:
        if any(
            opening.startswith(o) or (name != "polar" and f" {o}" in f" {opening[:40]}")
            for o in openers
        ):
            return name
    return None


class AnswerabilityProbe:
    """Measures SIGNALS for one question against its retrieved passages."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.lexical = LexicalEncoder()
        # Stemmed once: every job's question is checked against them.
        self._asking = frozenset(self.lexical.terms(" ".join(_ASKING)))

    def measure(
        self,
        question: str,
        question_vector: Vectors,
        passages: Sequence[Passage],
        grounding: float | None = None,
        answer_relevance: float | None = None,
    ) -> AnswerabilitySignals:
        question = asked_part(question)
        kind = question_type(question)
        values = dict.fromkeys(SIGNALS, 0.0)
        for name in TYPE_NAMES:
            values[f"type_{name}"] = float(kind == name)
        values["grounding"] = 1.0 if grounding is None else grounding
        values["answer_relevance"] = 0.0 if answer_relevance is None else answer_relevance
        scores = sorted((p.score for p in passages), reverse=True)
        values["top_score"] = scores[0] if scores else 0.0
        values["margin"] = scores[0] - scores[1] if len(scores) > 1 else 0.0

        content = self._content_terms(question)
        specific = self._specific_terms(question)
        values["question_terms"] = float(len(content))
        sentences = [
            (index, sentence)
            for index, passage in enumerate(passages)
            for sentence in passage_sentences(passage.text, min_words=3)
        ]
        all_terms = {t for p in passages for t in self.lexical.terms(p.text)}
        missing = sorted({t for t in specific if t not in all_terms})
        values["passages_specific_missing"] = float(len(missing))
        values["names_missing"] = float(
            sum(t not in all_terms for t in self._specific_terms(question, names_only=True))
        )
        values["passages_coverage"] = _share(content, all_terms)
        if not sentences:
            values["passage_missing"] = float(len(content))
            values["passage_specific_missing"] = float(len(specific))
            return AnswerabilitySignals(values, None, missing)

        vectors = self.embedder.embed_cached([s for _, s in sentences])
        similarity = vectors @ question_vector
        sentence_terms = [set(self.lexical.terms(s)) for _, s in sentences]
        coverage = np.array([_share(content, terms) for terms in sentence_terms])
        ranks = similarity + 0.5 * coverage
        best = int(np.argmax(ranks))
        index, text = sentences[best]
        others = [float(r) for r, (i, _) in zip(ranks, sentences, strict=True) if i != index]
        values["sentence_rank_gap"] = float(ranks[best]) - max(others) if others else 1.0
        values["sentence_similarity"] = float(similarity[best])
        values["sentence_coverage"] = float(coverage[best])
        best_terms = sentence_terms[best]
        values["sentence_specific_coverage"] = _share(specific, best_terms) if specific else 1.0
        passage_terms = set(self.lexical.terms(passages[index].text))
        values["passage_coverage"] = _share(content, passage_terms)
        values["passage_missing"] = float(sum(t not in passage_terms for t in content))
        values["passage_specific_missing"] = float(sum(t not in passage_terms for t in specific))
        values["bigram_coverage"] = _bigram_coverage(
            self.lexical.terms(question), self.lexical.terms(passages[index].text)
        )
        values["elsewhere_in_passage"] = float(
            sum(t in passage_terms and t not in best_terms for t in content)
        )
        weakest, soft = self._soft_match(question, text, best_terms)
        values["weakest_match"], values["soft_coverage"] = weakest, soft
        known, found = offered_answer_type(kind, text, question)
        values["answer_type_known"] = float(known)
        values["answer_type_found"] = float(found)
        question_terms = set(self.lexical.terms(question))
        values["novelty"] = (
            len(best_terms - question_terms) / len(best_terms) if best_terms else 0.0
        )
        raw_question, raw_sentence = _raw_words(question), _raw_words(text)
        negated = bool(raw_question & _NEGATIONS)
        values["question_negated"] = float(negated)
        values["negation_mismatch"] = float(negated != bool(raw_sentence & _NEGATIONS))
        values["antonym_conflict"] = float(
            any(
                _ANTONYMS[w] & raw_sentence and w not in raw_sentence
                for w in raw_question
                if w in _ANTONYMS
            )
        )
        evidence = Evidence(text=text, passage=index, similarity=round(float(similarity[best]), 4))
        return AnswerabilitySignals(values, evidence, missing)

    def _soft_match(
        self, question: str, sentence: str, sentence_terms: set[str]
    ) -> tuple[float, float]:
        """Each content word of the question against the sentence: 1 when its stem is
        there, else the best cosine of its static word vector with a sentence word's
        (a paraphrase finds a counterpart, a swapped name or an added condition does not).
        Returns (the weakest word's match, the mean match)."""
        stems = {
            w: self.lexical.terms(w)
            for w in {w.lower() for w in _RAW_WORD.findall(question)}
            if w not in STOPWORDS and w not in _ASKING
        }
        words = [w for w, stem in stems.items() if stem and stem[0] not in self._asking]
        if not words:
            return 1.0, 1.0
        scores = []
        inexact = [w for w in words if stems[w][0] not in sentence_terms]
        candidates = [w.lower() for w in _RAW_WORD.findall(sentence) if w.lower() not in STOPWORDS]
        best: dict[str, float] = {}
        if inexact and candidates:
            similarity = (
                self.embedder.word_vectors(inexact) @ self.embedder.word_vectors(candidates).T
            )
            best = {w: float(row.max()) for w, row in zip(inexact, similarity, strict=True)}
        for word in words:
            scores.append(best.get(word, 0.0) if word in inexact else 1.0)
        return min(scores), sum(scores) / len(scores)

    def _content_terms(self, question: str) -> set[str]:
        return {t for t in self.lexical.terms(question) if t not in self._asking}

    def _specific_terms(self, question: str, names_only: bool = False) -> set[str]:
        """Names, numbers and other words that pin the question down: capitalised words
        past the first, anything with a digit, and (unless names_only) words of 8+ letters
        (rare words)."""
        words = _RAW_WORD.findall(question)
        chosen = [
            w
            for position, w in enumerate(words)
            if (position > 0 and w[0].isupper())
            or w[0].isdigit()
            or (len(w) >= 8 and not names_only)
        ]
        return {t for t in self.lexical.terms(" ".join(chosen)) if t not in self._asking}


def _share(wanted: set[str], present: set[str]) -> float:
    return sum(t in present for t in wanted) / len(wanted) if wanted else 0.0


def _bigram_coverage(question: list[str], passage: list[str]) -> float:
    pairs = set(pairwise(question))
    if not pairs:
        return 0.0
    # A pair counts when both terms occur within three positions of each other.
    positions: dict[str, list[int]] = {}
    for position, term in enumerate(passage):
        positions.setdefault(term, []).append(position)
    found = 0
    for a, b in pairs:
        if any(abs(i - j) <= 3 for i in positions.get(a, ()) for j in positions.get(b, ())):
            found += 1
    return found / len(pairs)


def _raw_words(text: str) -> set[str]:
    words = {w.lower() for w in _RAW_WORD.findall(text.replace("\u2019", "'"))}
    if any(w.endswith("n't") for w in words):
        words.add("n't")
    return words


def offered_answer_type(kind: str | None, sentence: str, question: str) -> tuple[bool, bool]:
    """(whether the question's type implies an answer type, whether the sentence offers
    one that the question does not already state)."""
    asked = _raw_words(question)
    words = [w for w in _RAW_WORD.findall(sentence)]
    new = [w for w in words if w.lower() not in asked]
    lowered = [w.lower() for w in new]
    if kind == "quantity":
        return True, any(_NUMBER.search(w) for w in new) or any(w in _NUMBER_WORDS for w in lowered)
    if kind == "time":
        return True, (
            any(_YEAR.fullmatch(w) for w in new)
            or any(w in _MONTHS or w in _TIME_WORDS for w in lowered)
            or any(_NUMBER.search(w) for w in new)
        )
    if kind in ("person", "place"):
        # A name the question does not already hold (not the sentence's first word).
        return True, any(w[0].isupper() for w in new if w != words[0])
    return False, False
