"""When two questions are the same question: close in meaning (the embedding's cosine) and
agreeing on every constraint that changes the answer.

Cosine similarity alone is what semantic caches use, and it fails on the near-duplicate:
"refunds within 30 days" and "within 90 days" embed almost alike. So, after the cosine,
the two questions must ask the same kind of thing and hold the same numbers, dates, units,
negation, qualifiers (only, before, more than, part-time...) and named entities, counted
in a clause before the question too ("My trial started on 3 May."); and where they share
most of their words, every word one has and the other lacks must be explained as a
synonym (a general thesaurus, a typo, or a close word embedding): "employees" against
"contractors" is a changed constraint, not a paraphrase. A question reworded throughout
is judged by its cosine and its constraints. A value only one question holds is a
difference too: measured against questions on the same topic, letting it pass where the
wording differs served "what did he do in 1334?" from "which sultan did he serve?".
bench/answer_cache.py measures it on eval/cache/ (tuning pairs and held-out ones).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from ragline.cache.lexicon import (
    ANSWER_FRAMES,
    BEFORE_NUMBER,
    CONTRACTIONS,
    DAYS,
    FILLERS,
    MONTHS,
    NEGATIONS,
    NUMBER_WORDS,
    ORDINALS,
    QUALIFIERS,
    STOPWORDS,
    SYNONYM_GROUPS,
    UNITS,
    WORD_SIMILARITY,
)

# Words, numbers with their decimals and a percent sign; apostrophes kept for contractions.
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*(?:[.,]\d+)*%?")
_SENTENCE_END = re.compile(r"[.?!:;\"(]\s*$")
# Above this share of shared content words, the words that differ are the difference.
OVERLAP = 0.5

WordVectors = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class Parsed:
    """A question's constraints and content words, as the comparison reads them."""

    words: frozenset[str]  # every token, lower case (entities are looked up here)
    content: frozenset[str]  # stems of the words that carry the topic
    numbers: tuple[str, ...]
    dates: frozenset[str]
    units: frozenset[str]
    qualifiers: frozenset[str]
    negated: bool
    entities: frozenset[str]
    kind: str | None = None  # what is asked: who, where, when, why, how, amount, what, yes/no
    tokens: tuple[str, ...] = ()  # the words as written, in order (typos are read on them)


@dataclass(frozen=True)
class Judgement:
    equivalent: bool
    why: str  # the first constraint that differs, or "equivalent"


def parse(text: str) -> Parsed:
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'").replace("\u2018", "'")
    whole = _scan(text)
    question = _preamble_removed(text)
    if question == text:
        return whole
    # The clause before the question says who asks ("My trial started on 3 May."): its
    # constraints count, its other words are not the topic.
    asked = _scan(question)
    return replace(whole, content=asked.content, kind=asked.kind)


def _scan(text: str) -> Parsed:
    words: list[str] = []
    numbers: list[str] = []
    dates: set[str] = set()
    units: set[str] = set()
    qualifiers: set[str] = set()
    entities: set[str] = set()
    content: set[str] = set()
    negated = False
    tokens = [
        (
            word,
            match.group(),
            match.start() == 0 or bool(_SENTENCE_END.search(text[: match.start()])),
        )
        for match in _TOKEN.finditer(text)
        for word in _expand(match.group().lower())
    ]
    for position, (word, original, initial) in enumerate(tokens):
        words.append(word)
        number = _number(word)
        if number is not None:
            numbers.append(number)
        elif word in MONTHS and (word not in ("may", "march") or original[:1].isupper()):
            dates.add(f"month:{MONTHS[word]}")
        elif word in DAYS:
            dates.add(word)
        elif word in UNITS:
            before = tokens[position - 1][0] if position else ""
            if before not in ("what", "which"):  # "in what year" asks when, in no unit
                units.add(UNITS[word])
        elif word in BEFORE_NUMBER:
            ahead = [w for w, _, _ in tokens[position + 1 : position + 3]]
            if any(_number(w) is not None for w in ahead):
                qualifiers.add(BEFORE_NUMBER[word])
        elif word in QUALIFIERS:
            qualifiers.add(QUALIFIERS[word])
        elif word in NEGATIONS:
            negated = True
        elif word not in STOPWORDS and word not in FILLERS and word not in ANSWER_FRAMES:
            content.add(stem(word))
            if _is_entity(original, initial):
                entities.add(word)
    return Parsed(
        kind=_kind(text),
        words=frozenset(words) | frozenset(stem(w) for w in words),
        content=frozenset(content),
        numbers=tuple(sorted(numbers)),
        dates=frozenset(dates),
        units=frozenset(units),
        qualifiers=frozenset(qualifiers),
        negated=negated,
        entities=frozenset(entities),
        tokens=tuple(words),
    )


def compare(
    a: Parsed,
    b: Parsed,
    cosine: float,
    threshold: float,
    word_vectors: WordVectors | None = None,
) -> Judgement:
    """Are a and b the same question? cosine: their embeddings' similarity; word_vectors:
    embeds single words (the synonym test's last resort; without it only the thesaurus and
    typos explain a changed word)."""
    if cosine < threshold:
        return Judgement(False, "similarity")
    if not _same_kind(a.kind, b.kind):
        return Judgement(False, "kind")
    if a.numbers != b.numbers:
        return Judgement(False, "number")
    if a.dates != b.dates:
        return Judgement(False, "date")
    if a.negated != b.negated:
        return Judgement(False, "negation")
    if a.qualifiers != b.qualifiers:
        return Judgement(False, "qualifier")
    if a.units and b.units and a.units != b.units:
        return Judgement(False, "unit")
    if not (_contained(a.entities, b.words) and _contained(b.entities, a.words)):
        return Judgement(False, "entity")
    only_a, only_b = sorted(a.content - b.content), sorted(b.content - a.content)
    only_a, only_b = _explain(only_a, only_b)
    # A word said once by one and in another form by the other ("receive" / "get").
    only_a = [w for w in only_a if not _said_by(w, a, b)]
    only_b = [w for w in only_b if not _said_by(w, b, a)]
    if word_vectors is not None and only_a and only_b:
        only_a, only_b = _close_words(only_a, only_b, word_vectors)
    if not only_a and not only_b:
        return Judgement(True, "equivalent")
    shared = len(a.content & b.content)
    if shared >= OVERLAP * min(len(a.content), len(b.content)):
        # Mostly the same words but for these: the slot a near-duplicate changes.
        return Judgement(False, f"wording: {' '.join(only_a)} / {' '.join(only_b)}")
    return Judgement(True, "equivalent")  # reworded throughout: cosine and constraints


_WH = {"who": "who", "whom": "who", "whose": "who", "where": "where", "when": "when",
       "why": "why", "what": "what", "which": "what"}  # fmt: skip
_AMOUNT = frozenset(
    "many much long often old far quickly soon big large tall frequently early late fast "
    "high low".split()
)
# "can you tell me when...": the opening asks for the question that follows.
_ASKED = frozenset("you anyone someone somebody".split())
_AUXILIARIES = frozenset(
    "is are was were am do does did can could may might must should shall will would has "
    "have had".split()
)


def _kind(text: str) -> str | None:
    """What the question asks for: who, where, when, why, how (a way), amount (how many,
    how long...), what (any of them: "on what date", "which person"), yes/no; None for a
    bare phrase ("parental leave length?"). A question that opens with an auxiliary is
    yes/no whatever follows ("are meals paid when..."); otherwise the first question word
    of the last clause decides ("when someone resigns, whose job is it...")."""
    clauses = [_words(clause) for clause in re.split(r"[,;:]", text)]
    words = [word for clause in clauses for word in clause]
    if not words:
        return None
    if words[0] in _AUXILIARIES and not _ASKED.intersection(words[1:2]):
        return "yes/no"
    for clause in reversed(clauses):
        found = _first_kind(clause)
        if found is not None:
            return found
    return None


def _words(text: str) -> list[str]:
    return [word for match in _TOKEN.finditer(text) for word in _expand(match.group().lower())]


def _first_kind(words: list[str]) -> str | None:
    for position, word in enumerate(words):
        if word in _WH:
            return _WH[word]
        if word == "how":
            following = words[position + 1] if position + 1 < len(words) else ""
            return "amount" if following in _AMOUNT else "how"
    return None


def _same_kind(a: str | None, b: str | None) -> bool:
    if a is None or b is None or a == b:
        return True
    if "yes/no" in (a, b):
        return False  # "is X required?" is not "what is required for X?"
    return "what" in (a, b)


def _contained(entities: frozenset[str], words: frozenset[str]) -> bool:
    """Every name is among the words: as written, with a typo, or with a suffix
    (Stoic, Stoicism)."""
    return all(e in words or any(_typo(e, w) or _prefix(e, w) for w in words) for e in entities)


def _prefix(a: str, b: str) -> bool:
    short, long = sorted((a, b), key=len)
    return len(short) >= 5 and long.startswith(short)


# A clause before the question that says who asks or why ("For a pub quiz:", "I'm new
# here and wondering"): it carries no constraint of the question.
_PREAMBLE = re.compile(
    r"^\s*(?:(?:hi|hello|hey)\b[^.:?!]*[,.!:]\s*)?"
    r"(?:(?:i'm|i am|i was)\b[^.:?!]*?\bwondering\s+(?:about\s+)?"
    r"|(?:for (?:a|an|my|our|the)\b|i'm\b|i am\b|i've\b|i have\b|my\b|we\b|we're\b|"
    r"our\b|quick question\b)[^.:?!]*[.:!]\s*)",
    re.IGNORECASE,
)


def _preamble_removed(text: str) -> str:
    rest = _PREAMBLE.sub("", text, count=1)
    return rest if len(rest.split()) >= 3 else text


def stem(word: str) -> str:
    """A light suffix stripper: plurals, -ing, -ed, a final e (enough to match a word's
    own forms: lose, losing)."""
    word = _suffix(word)
    return word[:-1] if len(word) > 3 and word.endswith("e") and not word.endswith("ee") else word


def _suffix(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith("ied"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "xes", "zes", "ches", "shes")):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed"):
        return word[:-2] if not word.endswith("eed") else word
    return word


def _expand(word: str) -> list[str]:
    if "'" not in word:
        return [word]
    if word in CONTRACTIONS:
        return CONTRACTIONS[word].split()
    if word.endswith("n't"):
        return [word[:-3], "not"]
    base, _, tail = word.partition("'")
    suffix = CONTRACTIONS.get("'" + tail)
    return [base, *suffix.split()] if suffix else [base]  # a possessive 's goes


def _number(word: str) -> str | None:
    digits = word.rstrip("%").replace(",", "")
    if digits and digits.replace(".", "", 1).isdigit():
        value = float(digits)
        return str(int(value)) if value.is_integer() else str(value)
    if word in NUMBER_WORDS:
        value = NUMBER_WORDS[word]
        return str(int(value)) if float(value).is_integer() else str(value)
    if word in ORDINALS:
        return f"#{ORDINALS[word]}"
    return None


def _is_entity(original: str, initial: bool) -> bool:
    """A name: capitalised inside a sentence, an acronym, or letters mixed with digits."""
    if len(original) > 1 and original.isupper() and original.isalpha():
        return True
    if any(c.isdigit() for c in original) and any(c.isalpha() for c in original):
        return True
    return not initial and original[:1].isupper() and original.lower() != "i"


@lru_cache(maxsize=1)
def _groups() -> dict[str, frozenset[int]]:
    found: dict[str, set[int]] = {}
    for number, group in enumerate(SYNONYM_GROUPS):
        for word in group.split():
            found.setdefault(stem(word), set()).add(number)
    return {word: frozenset(numbers) for word, numbers in found.items()}


def _synonyms(a: str, b: str) -> bool:
    groups = _groups()
    return bool(groups.get(a, frozenset()) & groups.get(b, frozenset())) or _typo(a, b)


_VOWELS = frozenset("aeiouy")


def _said_by(word: str, own: Parsed, other: Parsed) -> bool:
    """The other question has this word in another form: a synonym, or a typo of the word
    as written ("opened" / "opned", whose stems differ more than the words do)."""
    if any(_synonyms(word, said) for said in other.words):
        return True
    written = [token for token in own.tokens if stem(token) == word]
    return any(_typo(mine, theirs) for mine in written for theirs in other.tokens)


def _typo(a: str, b: str) -> bool:
    """Two neighbours swapped (words of four letters or more), or one letter inserted or
    dropped (five or more); a changed letter is not a typo here: "employer" is not
    "employee"."""
    if min(len(a), len(b)) < 4 or a[0] != b[0]:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1 and len(a) >= 7 and a[diff[0]] in _VOWELS and b[diff[0]] in _VOWELS:
            return True  # a vowel misheard in a long word: visitor / visiter
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and (a[diff[1]] == b[diff[0]])
        )
    short, long = sorted((a, b), key=len)
    if len(long) - len(short) != 1 or len(short) < 5:
        return False
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _explain(only_a: list[str], only_b: list[str]) -> tuple[list[str], list[str]]:
    """Drop the pairs of words that are synonyms of each other; what is left is unexplained."""
    left_b = list(only_b)
    left_a = []
    for word in only_a:
        match = next((other for other in left_b if _synonyms(word, other)), None)
        if match is None:
            left_a.append(word)
        else:
            left_b.remove(match)
    return left_a, left_b


def _close_words(
    only_a: list[str], only_b: list[str], word_vectors: WordVectors
) -> tuple[list[str], list[str]]:
    """Pair the remaining words by embedding, greedily, closest first, above WORD_SIMILARITY."""
    vectors = word_vectors([*only_a, *only_b])
    similarity = vectors[: len(only_a)] @ vectors[len(only_a) :].T
    left_a, left_b = set(range(len(only_a))), set(range(len(only_b)))
    for flat in np.argsort(-similarity, axis=None):
        i, j = divmod(int(flat), len(only_b))
        if similarity[i, j] < WORD_SIMILARITY:
            break
        if i in left_a and j in left_b:
            left_a.discard(i)
            left_b.discard(j)
    return [only_a[i] for i in sorted(left_a)], [only_b[j] for j in sorted(left_b)]
