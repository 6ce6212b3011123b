"""Chunking with the embedding model's own tokenizer (the real MiniLM word pieces)."""

import itertools

from ragline.config import Chunking
from ragline.knowledge.chunking import chunk_document
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.sources import Document, read_folder
from tests.support.environment import HANDBOOK


def _doc(text: str, title: str = "Leave") -> Document:
    return Document(id="hr/leave", source="hr/leave.md", title=title, text=text, content_hash="h")


def test_no_chunk_of_the_handbook_exceeds_the_budget(embedder: Embedder) -> None:
    params = Chunking(max_tokens=120, overlap_tokens=20)
    documents = read_folder(HANDBOOK)
    assert len(documents) == 30
    for document in documents:
        chunks = chunk_document(document, params, embedder.count_tokens)
        assert chunks, document.id
        for chunk in chunks:
            assert chunk.token_count <= params.max_tokens, chunk.chunk_id
            assert chunk.text.startswith(document.title)


def test_a_very_long_paragraph_and_sentence_are_split_within_budget(embedder: Embedder) -> None:
    sentence = "Annual leave " + " ".join(f"rule{i}" for i in range(400)) + "."
    text = "# Leave\n\n## Carry over\n\n" + sentence + " Short closing sentence here."
    params = Chunking(max_tokens=64, overlap_tokens=8)
    chunks = chunk_document(_doc(text), params, embedder.count_tokens)
    assert len(chunks) > 5
    assert all(c.token_count <= 64 for c in chunks)
    joined = " ".join(c.text for c in chunks)
    assert "rule0" in joined and "rule399" in joined and "closing sentence" in joined


def test_sections_keep_their_heading_path_and_never_mix(embedder: Embedder) -> None:
    text = (
        "# Leave\n\n## Annual leave\n\nEmployees get 25 days.\n\n"
        "## Sick leave\n\nCall your manager before 10:00.\n"
    )
    chunks = chunk_document(_doc(text), Chunking(), embedder.count_tokens)
    assert [c.text for c in chunks] == [
        "Leave > Annual leave\nEmployees get 25 days.",
        "Leave > Sick leave\nCall your manager before 10:00.",
    ]
    assert [c.chunk_id for c in chunks] == ["hr/leave#0", "hr/leave#1"]


def test_overlap_repeats_the_tail_of_the_previous_chunk(embedder: Embedder) -> None:
    paragraphs = [f"Paragraph {i} says that rule {i} applies to everyone." for i in range(30)]
    text = "## Rules\n\n" + "\n\n".join(paragraphs)
    chunks = chunk_document(
        _doc(text), Chunking(max_tokens=60, overlap_tokens=20), embedder.count_tokens
    )
    assert len(chunks) > 2
    for previous, current in itertools.pairwise(chunks):
        last_sentence = previous.text.splitlines()[-1]
        assert last_sentence in current.text


def test_chunk_ids_and_hashes_are_stable(embedder: Embedder) -> None:
    text = "## A\n\nOne fact.\n\n## B\n\nAnother fact."
    first = chunk_document(_doc(text), Chunking(), embedder.count_tokens)
    second = chunk_document(_doc(text), Chunking(), embedder.count_tokens)
    assert [(c.chunk_id, c.content_hash) for c in first] == [
        (c.chunk_id, c.content_hash) for c in second
    ]
