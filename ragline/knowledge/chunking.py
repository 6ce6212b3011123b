"""Structure-aware, token-bounded chunking.

Sections follow Markdown headings; paragraphs are packed into chunks up to a token budget
counted with the embedding model's own tokenizer, because MiniLM silently truncates at
256 word pieces. Every chunk starts with its document title and heading path, which both
gives the passage context in a prompt and helps retrieval.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ragline.config import Chunking
from ragline.knowledge.sources import Document

TokenCounter = Callable[[str], int]
Truncator = Callable[[str, int], str]  # (text, max word pieces) -> the text's longest prefix

_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    document_id: str
    index: int
    text: str
    token_count: int
    content_hash: str


@dataclass(frozen=True)
class _Section:
    path: tuple[str, ...]
    paragraphs: list[str]


def _sections(text: str) -> Iterator[_Section]:
    path: list[tuple[int, str]] = []
    paragraphs: list[str] = []
    current: list[str] = []

    def flush_paragraph() -> None:
        if current:
            paragraphs.append(" ".join(line.strip() for line in current).strip())
            current.clear()

    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            flush_paragraph()
            if paragraphs:
                yield _Section(tuple(t for _, t in path), list(paragraphs))
                paragraphs.clear()
            level = len(heading.group(1))
            path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, heading.group(2))]
        elif not line.strip():
            flush_paragraph()
        elif line.lstrip().startswith(("- ", "* ", "+ ")) or re.match(r"^\s*\d+[.)]\s", line):
            # A list item is its own unit so that a long list splits between items.
            flush_paragraph()
            current.append(line)
            flush_paragraph()
        else:
            current.append(line)
    flush_paragraph()
    if paragraphs:
        yield _Section(tuple(t for _, t in path), list(paragraphs))


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def passage_sentences(text: str, min_words: int = 4) -> list[str]:
    """The content sentences of a chunk, in order: without its "title > heading" first
    line, list bullets, table rules and fragments under min_words words. The extractive
    provider answers with these and grounding compares answers against them (the same
    strings, so their embeddings are computed once)."""
    body = text.split("\n", 1)[1] if "\n" in text else text
    sentences: list[str] = []
    for line in body.splitlines():
        line = line.strip().lstrip("-*+ ").strip()
        if set(line) <= set("|-: "):  # a table rule or an empty line
            continue
        sentences.extend(s for s in split_sentences(line) if len(s.split()) >= min_words)
    return sentences


def _split_long(unit: str, budget: int, count: TokenCounter) -> list[str]:
    """Break a unit over budget into sentences, and a sentence over budget into word runs."""
    if count(unit) <= budget:
        return [unit]
    pieces: list[str] = []
    for sentence in split_sentences(unit):
        if count(sentence) <= budget:
            pieces.append(sentence)
            continue
        words, run = sentence.split(), list[str]()
        for word in words:
            if run and count(" ".join([*run, word])) > budget:
                pieces.append(" ".join(run))
                run = []
            run.append(word)
        if run:
            pieces.append(" ".join(run))
    return pieces


def chunk_document(
    document: Document,
    params: Chunking,
    count: TokenCounter,
    truncate: Truncator | None = None,
) -> list[Chunk]:
    if params.strategy == "document":
        if truncate is None:
            raise ValueError("the document strategy needs a truncator")
        whole = truncate(f"{document.title} {document.text}".strip(), params.max_tokens)
        return _numbered(document, [whole], count)
    chunks: list[str] = []
    for section in _sections(document.text):
        headings = [h for h in section.path if h != document.title]
        header = " > ".join([document.title, *headings])
        budget = params.max_tokens - count(header) - 1
        if budget < 16:
            header, budget = document.title[:80], params.max_tokens - count(document.title[:80]) - 1
        units = [u for p in section.paragraphs for u in _split_long(p, budget, count)]
        body: list[str] = []
        for unit in units:
            if body and count(" ".join([*body, unit])) > budget:
                chunks.append(header + "\n" + "\n".join(body))
                body = _overlap(body, params.overlap_tokens, count)
                if body and count(" ".join([*body, unit])) > budget:
                    body = []
            body.append(unit)
        if body:
            chunks.append(header + "\n" + "\n".join(body))
    return _numbered(document, chunks, count)


def _numbered(document: Document, chunks: list[str], count: TokenCounter) -> list[Chunk]:
    result = []
    for index, text in enumerate(chunks):
        result.append(
            Chunk(
                chunk_id=f"{document.id}#{index}",
                document_id=document.id,
                index=index,
                text=text,
                token_count=count(text),
                content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            )
        )
    return result


def _overlap(body: list[str], overlap_tokens: int, count: TokenCounter) -> list[str]:
    """The trailing sentences of the previous chunk that fit in the overlap budget."""
    if overlap_tokens <= 0:
        return []
    tail: list[str] = []
    for sentence in reversed(split_sentences(" ".join(body))):
        if count(" ".join([sentence, *tail])) > overlap_tokens:
            break
        tail.insert(0, sentence)
    return tail
