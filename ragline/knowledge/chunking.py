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


def _split_long(unit: str, budget: int, count: TokenCounter) -> list[tuple[str, int]]:
    """Break a unit over budget into sentences, and a sentence over budget into word runs;
    each piece with its token count."""
    size = count(unit)
    if size <= budget:
        return [(unit, size)]
    pieces: list[tuple[str, int]] = []
    for sentence in split_sentences(unit):
        size = count(sentence)
        if size <= budget:
            pieces.append((sentence, size))
        else:
            pieces.extend((run, count(run)) for run in _word_runs(sentence.split(), budget, count))
    return pieces


def _word_runs(words: list[str], budget: int, count: TokenCounter) -> list[str]:
    """The longest runs of whole words within budget, in order (a word over budget alone is
    a run of its own). Each run's end is found by galloping, then bisecting, over exact
    counts of candidate runs: about 2·log2(run length) counts of texts under twice the
    budget, where growing a run a word at a time counted it once per word (quadratic:
    minutes for a corpus of code listings)."""
    runs: list[str] = []
    start = 0
    while start < len(words):
        good, bad, step = start + 1, len(words) + 1, 1  # one word always makes a run
        while good < len(words):
            probe = min(good + step, len(words))
            if count(" ".join(words[start:probe])) > budget:
                bad = probe
                break
            good, step = probe, step * 2
        while bad - good > 1:
            middle = (good + bad) // 2
            if count(" ".join(words[start:middle])) <= budget:
                good = middle
            else:
                bad = middle
        runs.append(" ".join(words[start:good]))
        start = good
    return runs


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
        return _numbered(document, [(whole, count(whole))])
    chunks: list[tuple[str, int]] = []
    for section in _sections(document.text):
        headings = [h for h in section.path if h != document.title]
        header = " > ".join([document.title, *headings])
        header_size = count(header)
        if params.max_tokens - header_size - 1 < 16:
            header = document.title[:80]
            header_size = count(header)
        budget = params.max_tokens - header_size - 1
        units = [u for p in section.paragraphs for u in _split_long(p, budget, count)]
        bodies = _pack(units, budget, params.overlap_tokens, count)
        texts = _texts(header, bodies, count)
        limit = header_size + budget
        if any(len(b) > 1 and size > limit for b, (_, size) in zip(bodies, texts, strict=True)):
            # A body of several units over budget: this tokenizer does not count a joined
            # text as the sum of its parts (WordPiece, MiniLM's, does). Pack again,
            # counting every candidate body whole.
            bodies = _pack(units, budget, params.overlap_tokens, count, exact=True)
            texts = _texts(header, bodies, count)
        chunks.extend(texts)
    return _numbered(document, chunks)


def _texts(header: str, bodies: list[list[str]], count: TokenCounter) -> list[tuple[str, int]]:
    texts = [header + "\n" + "\n".join(body) for body in bodies]
    return [(text, count(text)) for text in texts]


def _pack(
    units: list[tuple[str, int]],
    budget: int,
    overlap_tokens: int,
    count: TokenCounter,
    *,
    exact: bool = False,
) -> list[list[str]]:
    """Consecutive units packed into bodies within budget, each body after the first
    opening with the trailing sentences of the one before (the overlap).

    A body's size is the sum of its parts' counts, where counting the joined body again
    for every unit added made chunking cost a dozen tokenizations of the corpus. The sum
    is exact for a tokenizer that splits on whitespace before anything else; exact=True
    counts every candidate body whole, for one that does not."""
    bodies: list[list[str]] = []
    body: list[str] = []
    used = 0  # the body's size so far

    def over(unit: str, size: int) -> bool:
        if exact:
            return count(" ".join([*body, unit])) > budget
        return used + size > budget

    for unit, size in units:
        if body and over(unit, size):
            bodies.append(body)
            body = _overlap(body, overlap_tokens, count)
            used = count(" ".join(body)) if body else 0
            if body and over(unit, size):
                body, used = [], 0
        body.append(unit)
        used += size
    if body:
        bodies.append(body)
    return bodies


def _numbered(document: Document, chunks: list[tuple[str, int]]) -> list[Chunk]:
    return [
        Chunk(
            chunk_id=f"{document.id}#{index}",
            document_id=document.id,
            index=index,
            text=text,
            token_count=size,
            content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        )
        for index, (text, size) in enumerate(chunks)
    ]


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
