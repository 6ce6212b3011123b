"""Chunking with the embedding model's own tokenizer (the real MiniLM word pieces)."""

import itertools

from ragline.config import Chunking
from ragline.knowledge.chunking import TokenCounter, _sections, chunk_document, split_sentences
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


def _greedy_reference(document: Document, params: Chunking, count: TokenCounter) -> list[str]:
    """Chunking as it was specified before it was made fast: every packing decision counts
    the joined candidate whole, a long sentence grows a word at a time."""
    chunks: list[str] = []
    for section in _sections(document.text):
        headings = [h for h in section.path if h != document.title]
        header = " > ".join([document.title, *headings])
        budget = params.max_tokens - count(header) - 1
        if budget < 16:
            header, budget = document.title[:80], params.max_tokens - count(document.title[:80]) - 1
        units: list[str] = []
        for paragraph in section.paragraphs:
            if count(paragraph) <= budget:
                units.append(paragraph)
                continue
            for sentence in split_sentences(paragraph):
                if count(sentence) <= budget:
                    units.append(sentence)
                    continue
                run: list[str] = []
                for word in sentence.split():
                    if run and count(" ".join([*run, word])) > budget:
                        units.append(" ".join(run))
                        run = []
                    run.append(word)
                units.append(" ".join(run))
        body: list[str] = []
        for unit in units:
            if body and count(" ".join([*body, unit])) > budget:
                chunks.append(header + "\n" + "\n".join(body))
                tail: list[str] = []
                for sentence in reversed(split_sentences(" ".join(body))):
                    if count(" ".join([sentence, *tail])) > params.overlap_tokens:
                        break
                    tail.insert(0, sentence)
                body = tail
                if body and count(" ".join([*body, unit])) > budget:
                    body = []
            body.append(unit)
        if body:
            chunks.append(header + "\n" + "\n".join(body))
    return chunks


def test_summed_counts_chunk_exactly_as_counting_every_candidate_whole(
    embedder: Embedder,
) -> None:
    # MiniLM's WordPiece splits on whitespace first, so a joined text counts as the sum of
    # its parts: the fast path must give the very chunks (and so content hashes, and so
    # reused vectors) of the exact one, long sentences and overlaps included.
    long_sentence = "Carry over " + " ".join(f"clause{i}" for i in range(300)) + "."
    extra = _doc("# Leave\n\n## Rules\n\n" + long_sentence + " Then a short one. " * 5)
    for params in (Chunking(), Chunking(max_tokens=64, overlap_tokens=16)):
        for document in [*read_folder(HANDBOOK), extra]:
            chunks = chunk_document(document, params, embedder.count_tokens)
            expected = _greedy_reference(document, params, embedder.count_tokens)
            assert [c.text for c in chunks] == expected, document.id


def test_a_tokenizer_that_counts_joins_still_gets_chunks_within_budget() -> None:
    # Each space costs a token here, so summing the parts undercounts a body: the check
    # after packing must catch it and pack again counting whole bodies.
    def count(text: str) -> int:
        return len(text.split()) + text.count(" ") + text.count("\n")

    text = "# Leave\n\n" + "\n\n".join(f"Rule {i} says one two three." for i in range(40))
    params = Chunking(max_tokens=40, overlap_tokens=0)
    chunks = chunk_document(_doc(text), params, count)
    assert len(chunks) > 3
    assert all(count(c.text) <= params.max_tokens for c in chunks)
    bodies = [c.text.split("\n", 1)[1] for c in chunks]
    assert "\n".join(bodies) == "\n".join(f"Rule {i} says one two three." for i in range(40))


def test_a_sentence_of_many_thousand_words_splits_into_the_longest_runs_that_fit() -> None:
    # Growing each run a word at a time counted it once per word: quadratic in a code
    # listing or a table with no full stop. Every run must still be as long as fits.
    counted: list[int] = []

    def count(text: str) -> int:
        counted.append(len(text))
        return len(text.split())

    words = [f"w{i}" for i in range(20_000)]
    text = "# Table\n\n" + " ".join(words)
    params = Chunking(max_tokens=200, overlap_tokens=0)
    chunks = chunk_document(_doc(text, "Table"), params, count)
    bodies = [c.text.split("\n", 1)[1].split() for c in chunks]
    assert [w for body in bodies for w in body] == words
    assert all(len(body) == 198 for body in bodies[:-1])  # 200 - the title - the reserve
    # About 8 characters counted per character of text; a word at a time, about 130.
    assert sum(counted) < 20 * len(text)
