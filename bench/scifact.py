"""Retrieval quality on BEIR SciFact, through ragline's own indexer, store and retriever.

    .venv/bin/python bench/scifact.py [--strategy document|sections] [--modes dense,sparse,hybrid]
                                      [--split test|train] [--data ../shared/eval/scifact]

Builds an index version from corpus.jsonl with the real IndexManager (Qdrant local mode in a
temporary folder), copies it into the embedded engine's sealed shard (the upgrade path:
same vectors, no second embedding), runs every query of the split through
Retriever.retrieve in each mode on both engines and prints nDCG@10 and Recall@10 (binary
relevance, as pytrec_eval/MTEB compute them) side by side; the engines may differ only
where HNSW's approximate search misses a neighbour exhaustive search finds. With
`--strategy document` each abstract is one chunk, `(title + " " + text)` cut at 254 word
pieces, exactly how MTEB embeds it, so dense mode must reproduce the published MTEB figures
for all-MiniLM-L6-v2 (nDCG@10 0.64508, Recall@10 0.78333). With `--strategy sections`
(ragline's default chunking) chunk hits are mapped to documents, each document ranked at its
best chunk. It takes minutes (embedding 5,183 abstracts on 2 cores). Tune on --split train.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from scifact_data import scifact  # bench/ is the script's path

from ragline.config import Chunking, Gate, Knowledge
from ragline.db import make_engine
from ragline.evaluation.dataset import EvalItem, import_beir
from ragline.evaluation.metrics import ndcg_at_k, recall_at_k
from ragline.knowledge.catalog import promoted
from ragline.knowledge.edge_store import EdgeStore
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.local_import import import_local_versions
from ragline.knowledge.qdrant_store import QdrantStore
from ragline.knowledge.store import RetrievalMode
from ragline.knowledge.versions import IndexManager
from ragline.pipeline.retrieve import Retriever
from ragline.schema import create_schema

ALIAS = "scifact"
PUBLISHED = {"ndcg@10": 0.64508, "recall@10": 0.78333}


def documents_in_order(passages: list[str]) -> list[str]:
    """Chunk hits (best first) to documents, each at its best chunk's rank."""
    seen: dict[str, None] = {}
    for document in passages:
        seen.setdefault(document, None)
    return list(seen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", choices=["document", "sections"], default="document")
    parser.add_argument("--modes", default="dense,sparse,hybrid")
    parser.add_argument("--split", choices=["test", "train"], default="test")
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()

    args.data = scifact(args.data)
    items = import_beir(args.data, args.split)
    max_tokens = 254 if args.strategy == "document" else Chunking().max_tokens
    knowledge = Knowledge(
        chunking=Chunking(strategy=args.strategy, max_tokens=max_tokens),
        gate=Gate(smoke_queries=[]),
    )
    embedder = Embedder(knowledge.embedding_model)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        corpus = root / "corpus"
        corpus.mkdir()
        (corpus / "corpus.jsonl").symlink_to((args.data / "corpus.jsonl").resolve())
        engine = make_engine(f"sqlite:///{root / 'manifest.db'}")
        create_schema(engine)
        store = QdrantStore.open(path=root / "qdrant")
        manager = IndexManager(engine, store, embedder, knowledge, alias=ALIAS)
        started = time.perf_counter()
        manifest = manager.build(corpus)
        build_s = time.perf_counter() - started
        manager.promote(manifest.version)
        store.close()
        edge = EdgeStore.open(root / "index", promoted(engine))
        started = time.perf_counter()
        import_local_versions(root / "qdrant", edge)
        copy_s = time.perf_counter() - started
        local = QdrantStore.open(path=root / "qdrant")
        print(
            f"indexed {manifest.document_count} documents as {manifest.chunk_count} chunks "
            f"({args.strategy}) in {build_s:.0f}s (Qdrant local mode), copied into the "
            f"embedded engine in {copy_s:.0f}s; {len(items)} {args.split} queries"
        )
        depth = 10 if args.strategy == "document" else 100
        print(
            f"{'mode':<8} {'nDCG@10 local':>14} {'edge':>8} {'diff':>8}"
            f" {'Recall@10 local':>16} {'edge':>8}"
        )
        for mode in args.modes.split(","):
            on_local = _quality(Retriever(embedder, local, mode=_mode(mode)), items, depth)
            on_edge = _quality(Retriever(embedder, edge, mode=_mode(mode)), items, depth)
            print(
                f"{mode:<8} {on_local[0]:>14.5f} {on_edge[0]:>8.5f} "
                f"{on_edge[0] - on_local[0]:>+8.5f} {on_local[1]:>16.5f} {on_edge[1]:>8.5f}"
            )
        print(
            f"published (MTEB, dense, whole documents, test): nDCG@10 {PUBLISHED['ndcg@10']}, "
            f"Recall@10 {PUBLISHED['recall@10']}; BM25 (BEIR paper) nDCG@10 0.665"
        )
        local.close()
        edge.close()
        engine.dispose()


def _quality(retriever: Retriever, items: list[EvalItem], depth: int) -> tuple[float, float]:
    """Mean nDCG@10 and Recall@10 over the split's queries."""
    ndcg = recall = 0.0
    for item in items:
        retrieval = retriever.retrieve(item.question, ALIAS, depth)
        ranked = documents_in_order([p.document_id for p in retrieval.passages])
        ndcg += ndcg_at_k(ranked, item.relevance, 10)
        recall += recall_at_k(ranked, item.relevance, 10)
    return ndcg / len(items), recall / len(items)


def _mode(name: str) -> RetrievalMode:
    if name not in ("dense", "sparse", "hybrid"):
        raise SystemExit(f"unknown mode {name}")
    return name  # type: ignore[return-value]


if __name__ == "__main__":
    main()
