"""The evidence a reviewer reads on an item page: each draft sentence linked to the passage
sentence that supports it (or marked as unsupported), each passage's text with those
sentences highlighted and linked back, and PII placeholders shown as placeholders.

Everything is escaped first and marked up after, so a document holding `<script>` shows as
text; the markup added is ours alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

# A placeholder as the redactor writes it, once escaped: &lt;EMAIL_1&gt;.
_PLACEHOLDER = re.compile(r"&lt;([A-Z][A-Z0-9_]*_\d+)&gt;")


def placeholders(text: str) -> Markup:
    """The text escaped, each `<TYPE_n>` placeholder shown as such."""
    return Markup(  # noqa: S704 (built from escaped text and our own tags only)
        _PLACEHOLDER.sub(
            r'<span class="pii" title="redacted: the value is not stored">&lt;\1&gt;</span>',
            str(escape(text)),
        )
    )


@dataclass
class DraftSentence:
    number: int  # 1-based, the anchor #draft-<number>
    text: str
    support: float
    supported: bool
    passage: int | None  # the supporting sentence's passage (1-based)
    evidence_found: bool  # whether that sentence was found in the passage's text

    @property
    def anchor(self) -> str:
        return f"draft-{self.number}"

    @property
    def evidence_anchor(self) -> str:
        return f"evidence-{self.number}"


@dataclass
class PassageView:
    number: int
    title: str
    document_id: str
    score: float
    text: Markup
    supports: list[int] = field(default_factory=list)  # draft sentence numbers


@dataclass
class Evidence:
    sentences: list[DraftSentence]
    passages: list[PassageView]

    @property
    def unsupported(self) -> int:
        return sum(1 for s in self.sentences if not s.supported)


def evidence(passages: list[dict[str, Any]], grounding: list[dict[str, Any]]) -> Evidence:
    """passages: the job's (number order, with `text`); grounding: the job's
    confidence_inputs["sentences"] (`text`, `support`, `supported`, and for jobs answered
    since the evidence was recorded, `evidence` and `passage`)."""
    marks: dict[int, list[tuple[str, int]]] = {}
    sentences: list[DraftSentence] = []
    for number, row in enumerate(grounding, 1):
        passage = row.get("passage")
        quote = str(row.get("evidence") or "")
        text = _text_of(passages, passage)
        found = bool(quote) and quote in text
        if found and isinstance(passage, int) and row.get("supported"):
            marks.setdefault(passage, []).append((quote, number))
        sentences.append(
            DraftSentence(
                number=number,
                text=str(row.get("text", "")),
                support=float(row.get("support", 0.0)),
                supported=bool(row.get("supported")),
                passage=passage if isinstance(passage, int) else None,
                evidence_found=found,
            )
        )
    views = []
    for number, passage in enumerate(passages, 1):
        quotes = marks.get(number, [])
        views.append(
            PassageView(
                number=number,
                title=str(passage.get("title") or passage.get("document_id") or ""),
                document_id=str(passage.get("document_id", "")),
                score=float(passage.get("score") or 0.0),
                text=_highlight(str(passage.get("text") or ""), quotes),
                supports=sorted({n for _, n in quotes}),
            )
        )
    return Evidence(sentences, views)


def _text_of(passages: list[dict[str, Any]], number: object) -> str:
    if not isinstance(number, int) or not 1 <= number <= len(passages):
        return ""
    return str(passages[number - 1].get("text") or "")


def _highlight(text: str, quotes: list[tuple[str, int]]) -> Markup:
    """The passage text with each supporting sentence in a <mark> linked to its draft
    sentence; a sentence supporting several draft sentences is marked once, linking all."""
    spans: dict[tuple[int, int], list[int]] = {}
    for quote, number in quotes:
        start = text.find(quote)
        if start >= 0:
            spans.setdefault((start, start + len(quote)), []).append(number)
    out: list[str] = []
    position = 0
    for (start, end), numbers in sorted(spans.items()):
        if start < position:  # overlapping sentences: keep the first
            continue
        out.append(str(placeholders(text[position:start])))
        links = " ".join(f'<a href="#draft-{n}">{n}</a>' for n in numbers)
        first = numbers[0]
        out.append(
            f'<mark id="evidence-{first}" data-supports="{" ".join(map(str, numbers))}">'
            f"{placeholders(text[start:end])}<sup>{links}</sup></mark>"
        )
        for n in numbers[1:]:
            out.append(f'<span id="evidence-{n}"></span>')
        position = end
    out.append(str(placeholders(text[position:])))
    return Markup("".join(out))  # noqa: S704 (escaped text and our own tags only)
