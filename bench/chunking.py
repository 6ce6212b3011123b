"""Chunking cost against the least it could be: one tokenization of every document.

    .venv/bin/python bench/chunking.py [FOLDER ...]

Reads the folders as the indexer does (default: examples/handbook, plus a generated
listing of 200 lines with no full stop, the case that was quadratic), chunks every document
with the default settings and MiniLM's own tokenizer, and prints both times and their
ratio. Chunking counts each paragraph, each sentence of a paragraph over budget and each
chunk once, so the ratio stays a small constant whatever the documents look like; before,
a long sentence grew a word at a time and every unit added counted the whole body again
(measured on 4,884 Linux, Python and PostgreSQL manual pages: 11.9x, now 3.1x).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ragline.config import Chunking
from ragline.knowledge.chunking import chunk_document
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.sources import Document, read_folder

REPO = Path(__file__).resolve().parent.parent


def listing() -> Document:
    lines = [f"    register_{i} = read_word(base + 0x{i:04x}) | mask_{i % 7}" for i in range(200)]
    text = "# Registers\n\n" + " ".join(lines)
    return Document(
        id="listing", source="listing.md", title="Registers", text=text, content_hash=""
    )


def main() -> None:
    folders = [Path(a) for a in sys.argv[1:]] or [REPO / "examples" / "handbook"]
    documents = [d for folder in folders for d in read_folder(folder)] + [listing()]
    count = Embedder("all-MiniLM-L6-v2").count_tokens
    for document in documents[:3]:  # warm-up
        chunk_document(document, Chunking(), count)

    started = time.perf_counter()
    chunks = sum(len(chunk_document(d, Chunking(), count)) for d in documents)
    chunking = time.perf_counter() - started
    started = time.perf_counter()
    for document in documents:
        count(document.text)
    baseline = time.perf_counter() - started
    print(f"{len(documents)} documents, {chunks} chunks")
    print(f"chunking {chunking:.2f} s, one tokenization of every text {baseline:.2f} s")
    print(f"chunking / one tokenization: {chunking / baseline:.1f}x")


if __name__ == "__main__":
    main()
