"""Indexing speed, measured against its own baselines in one run.

    .venv/bin/python bench/indexing.py [--documents 800] [--data ../shared/eval/scifact]

1. A full build through the real indexer (read, chunk, embed, weigh terms, upsert into
   Qdrant local mode, check) against a bare SentenceTransformer.encode of the very same
   chunk texts with the same batch size: chunks/s of each and their ratio (target >= 0.9).
2. The same corpus rebuilt unchanged (every vector reused) against the full build: the
   speed-up (target >= 20).
The corpus is the first N SciFact abstracts written out as Markdown files (so the default
section chunker runs); prints absolute times only for context, the ratios are the result.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from scifact_data import scifact  # bench/ is the script's path

from ragline.config import Gate, Knowledge
from ragline.db import make_engine
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.qdrant_store import QdrantStore
from ragline.knowledge.versions import IndexManager
from ragline.schema import create_schema


def write_corpus(source: Path, target: Path, limit: int) -> None:
    with source.open() as handle:
        for number, line in enumerate(handle):
            if number >= limit:
                break
            document = json.loads(line)
            (target / f"{document['_id']}.md").write_text(
                f"# {document['title']}\n\n{document['text']}\n", encoding="utf-8"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=800)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    knowledge = Knowledge(gate=Gate(smoke_queries=[]))
    embedder = Embedder(knowledge.embedding_model)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        corpus = root / "corpus"
        corpus.mkdir()
        write_corpus(scifact(args.data) / "corpus.jsonl", corpus, args.documents)
        engine = make_engine(f"sqlite:///{root / 'manifest.db'}")
        create_schema(engine)
        store = QdrantStore.open(path=root / "qdrant")
        manager = IndexManager(engine, store, embedder, knowledge, alias="bench")

        started = time.perf_counter()
        full = manager.build(corpus)
        full_s = time.perf_counter() - started
        manager.promote(full.version)
        texts = [
            payload["text"] for payload, _ in store.points(full.collection, with_vectors=False)
        ]

        started = time.perf_counter()
        embedder.embed(texts)  # the same batch size as the indexer's (Embedder.embed default)
        encode_s = time.perf_counter() - started

        started = time.perf_counter()
        unchanged = manager.build(corpus)
        unchanged_s = time.perf_counter() - started

        chunks = full.chunk_count
        print(f"{args.documents} documents, {chunks} chunks")
        print(f"full build      {full_s:7.1f}s  {chunks / full_s:7.1f} chunks/s")
        print(f"bare encode     {encode_s:7.1f}s  {chunks / encode_s:7.1f} chunks/s")
        print(f"indexer / bare encode throughput: {encode_s / full_s:.2f} (target >= 0.9)")
        print(
            f"unchanged rebuild {unchanged_s:5.1f}s  ({unchanged.reused_chunks} of "
            f"{unchanged.chunk_count} chunks reused)"
        )
        print(f"full / unchanged rebuild: {full_s / unchanged_s:.1f}x (target >= 20)")
        store.close()
        engine.dispose()


if __name__ == "__main__":
    main()
