"""PII redaction with Presidio's pattern recognizers, offline.

Presidio runs with its `no_op` NLP engine (no spaCy model to download) unless the config
names a real one. Matches are replaced by typed, numbered placeholders (`<EMAIL_1>`) that
stay the same for the same value throughout one job, so a redacted answer still reads well
and a reviewer can tell two different card numbers apart without seeing either.

The recognizers read ASCII: before analysis, other digits (full-width, Arabic-Indic, ...),
spaces, dashes and full-width forms are read as their ASCII twins, one character for one,
so offsets stay the original's; card numbers are looked for once more with any run of
separators between digit groups read as one space ("4111.1111.1111.1111"), and the spans
found there are mapped back, so the redaction covers the original characters.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from ragline.config import Pii

# Short labels for the placeholders; other entities use their own name.
LABELS = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "IBAN_CODE": "IBAN",
}
# Spans with this label are deleted without a placeholder (invisible characters).
DELETED = "DELETED"
_CITATION = re.compile(r"\[\d{1,3}\]")
# Between two digits: what people put between the groups of a card number.
_DIGIT_SEPARATORS = re.compile(r"(?<=\d)[\s.\-_/\\|,*\u00b7\u2022\u2219]+(?=\d)")
_CARD = "CREDIT_CARD"
# What a text must hold for a built-in recognizer to match anything in it (read after
# ascii_digits): digits, an email's @, an IPv6 address's colons (it may have no digit).
_NEEDS = {
    "EMAIL_ADDRESS": re.compile("@"),
    "PHONE_NUMBER": re.compile("[0-9]"),
    "CREDIT_CARD": re.compile("[0-9]"),
    "IBAN_CODE": re.compile("[0-9]"),
    "IP_ADDRESS": re.compile("[0-9:]"),
    "US_SSN": re.compile("[0-9]"),
}
PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*)_(\d+)>")


class Placeholders:
    """Value -> placeholder for one job. Numbering continues after the placeholders a text
    already holds (the question was redacted at admission, in another process)."""

    def __init__(self) -> None:
        self._by_value: dict[tuple[str, str], str] = {}
        self._counts: Counter[str] = Counter()

    @classmethod
    def continuing(cls, *texts: str) -> Placeholders:
        placeholders = cls()
        for text in texts:
            for label, number in PLACEHOLDER.findall(text):
                placeholders._counts[label] = max(placeholders._counts[label], int(number))
        return placeholders

    def for_value(self, label: str, value: str) -> str:
        key = (label, value)
        if key not in self._by_value:
            self._counts[label] += 1
            self._by_value[key] = f"<{label}_{self._counts[label]}>"
        return self._by_value[key]


@dataclass(frozen=True)
class Span:
    entity: str
    start: int
    end: int
    score: float = 1.0


@dataclass(frozen=True)
class Redaction:
    text: str
    # Placeholder label -> how many values were replaced (never the values themselves).
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.counts)


class PiiRedactor:
    """Finds PII in text and replaces it. Thread-safe; build one per process (start-up
    costs ~0.1 s once Presidio is imported, a call on a short clean text ~0.2 ms)."""

    def __init__(self, config: Pii) -> None:
        from ragline.guardrails.presidio_engine import build_analyzer, custom_regexes

        self.config = config
        self._analyzer, self.entities = build_analyzer(config)
        self._allow = [re.compile(p) for p in config.allow]
        # spaCy pipelines are not safe to share between threads.
        self._lock = threading.Lock() if config.nlp_engine.name != "no_op" else None
        # Per entity, a search that finds something wherever its recognizer could: only the
        # entities whose search hits are asked of Presidio (none: Presidio is not called).
        # Custom patterns are their own search, compiled once as Presidio compiles them; an
        # NLP engine's entities (names, places) have none and are always asked.
        self._could_match: dict[str, Any] = {**_NEEDS, **custom_regexes(config)}

    def find(self, text: str) -> list[Span]:
        if not text:
            return []
        # Citation markers confuse the phone matcher ("555-0187 [1]" is not matched), so
        # they are blanked for the analysis; offsets stay those of the original text.
        masked = ascii_digits(_CITATION.sub(lambda m: " " * len(m.group(0)), text))
        asked = [entity for entity in self.entities if self._could_hold(entity, masked)]
        if not asked:
            return []
        if self._lock is not None:
            with self._lock:
                spans = self._analyze(masked, asked)
        else:
            spans = self._analyze(masked, asked)
        return [
            span
            for span in spans
            if not any(a.fullmatch(text[span.start : span.end]) for a in self._allow)
        ]

    def _could_hold(self, entity: str, text: str) -> bool:
        search = self._could_match.get(entity)
        return search is None or search.search(text) is not None

    def _analyze(self, text: str, entities: list[str]) -> list[Span]:
        spans = [
            Span(r.entity_type, r.start, r.end, r.score) for r in self._results(text, entities)
        ]
        joined, origin = join_digit_groups(text)
        if _CARD in entities and joined != text:
            for r in self._results(joined, [_CARD]):
                card = Span(r.entity_type, origin[r.start], origin[r.end - 1] + 1, r.score)
                if card not in spans:
                    spans.append(card)
        return spans

    def _results(self, text: str, entities: list[str]) -> list[Any]:
        results: list[Any] = self._analyzer.analyze(
            text,
            language="en",
            entities=entities,
            score_threshold=self.config.min_score,
        )
        return results

    def redact(
        self, text: str, placeholders: Placeholders, extra: list[Span] | None = None
    ) -> Redaction:
        """text with every PII span (and any extra spans, e.g. secrets) replaced."""
        return replace_spans(text, self.find(text) + (extra or []), placeholders)


def ascii_digits(text: str) -> str:
    """Digits of any script, Unicode spaces and dashes and full-width forms as ASCII, one
    character for one (full-width "4111" and an ideographic space read "4111 "): offsets
    are unchanged."""
    return text if text.isascii() else "".join(_ascii_twin(c) for c in text)


@cache
def _ascii_twin(char: str) -> str:
    digit = unicodedata.decimal(char, None)
    if digit is not None:
        return str(digit)
    if "\uff01" <= char <= "\uff5e":  # full-width ASCII
        return chr(ord(char) - 0xFEE0)
    category = unicodedata.category(char)
    if category == "Zs":
        return " "
    if category == "Pd" or char == "\u2212":  # dashes, the minus sign
        return "-"
    return char


def join_digit_groups(text: str) -> tuple[str, list[int]]:
    """The text with each run of separators between two digits read as one space, and for
    each of its characters the offset it came from: "4111 . 1111" -> "4111 1111"."""
    joined: list[str] = []
    origin: list[int] = []
    position = 0
    for match in _DIGIT_SEPARATORS.finditer(text):
        if match.group(0) in (" ", "-"):
            continue  # the recognizers read these already
        joined.append(text[position : match.start()])
        origin.extend(range(position, match.start()))
        joined.append(" ")
        origin.append(match.start())
        position = match.end()
    joined.append(text[position:])
    origin.extend(range(position, len(text)))
    return "".join(joined), origin


def replace_spans(text: str, spans: list[Span], placeholders: Placeholders) -> Redaction:
    """Replace spans by placeholders; Presidio's anonymizer resolves overlapping spans."""
    if not spans:
        return Redaction(text)
    from presidio_anonymizer.entities import OperatorConfig
    from presidio_anonymizer.entities import RecognizerResult as AnonymizerResult

    from ragline.guardrails.presidio_engine import anonymizer

    counts: Counter[str] = Counter()
    # Number the values in reading order (the anonymizer works from the end of the text).
    last_end = -1
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if span.start >= last_end and span.entity != DELETED:
            placeholders.for_value(
                LABELS.get(span.entity, span.entity), text[span.start : span.end]
            )
            last_end = span.end

    def operator(entity: str) -> Any:
        if entity == DELETED:
            # ("replace" with an empty new_value would write "<DELETED>".)
            return OperatorConfig("custom", {"lambda": lambda _value: ""})
        label = LABELS.get(entity, entity)

        def placeholder(value: str) -> str:
            counts[label] += 1
            return placeholders.for_value(label, value)

        return OperatorConfig("custom", {"lambda": placeholder})

    results = [AnonymizerResult(s.entity, s.start, s.end, s.score) for s in spans]
    operators: dict[str, Any] = {s.entity: operator(s.entity) for s in spans}
    redacted = anonymizer().anonymize(text=text, analyzer_results=results, operators=operators)
    return Redaction(redacted.text, dict(counts))
