"""Retrieval at 10k, 100k and 1M chunks: the embedded engine (qdrant-edge, EdgeStore) and
Qdrant local mode (QdrantStore, up to --local-max: at 1M one filtered query takes it tens of
seconds) side by side in one run, through ragline's own stores.

    .venv/bin/python bench/retrieval_engines.py [--sizes 10000,100000,1000000] [--queries 200]
                                                [--local-max 100000] [--local-queries 30]

For each size: build time (upsert + seal), the first query's time (the edge engine opens
the version then, checking every file against its seal), then p50/p95 query latency for
dense, sparse and hybrid retrieval. ragline filters every query by the caller's document
groups: the plain columns use a group every chunk has, "+filter" one that 20% of the
chunks have. Then recall@10 of dense retrieval against exact search (numpy over every
permitted vector).
The chunks are synthetic: 384-d vectors around 300 topics, BM25-weighted sparse vectors over
a Zipf vocabulary, payloads shaped like ragline's (600 characters of text, title, source,
groups). Questions are a chunk's vector plus as much noise again, so they are near a topic
but never a copy of a chunk. Latencies vary by machine; compare the two engines' columns.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ragline.knowledge.edge_store import EdgeStore
from ragline.knowledge.lexical import SparseVector
from ragline.knowledge.qdrant_store import QdrantStore
from ragline.knowledge.store import KnowledgeStore, RetrievalMode

DIM = 384
TOPICS = 300
VOCABULARY = 50_000
BATCH = 1_000
COLLECTION = "kb_v1"
ALIAS = "bench"
EVERYONE = ["staff"]
FILTERED = ["hr"]  # held by 20% of the chunks
WORDS = (
    "policy leave salary contract onboarding benefit payroll holiday expense travel security "
    "laptop access password manager review pension overtime training refund invoice customer"
).split()
TERMS = np.array([zlib.crc32(f"term{t}".encode()) for t in range(VOCABULARY)], dtype=np.int64)
ZIPF = 1.0 / np.arange(1, VOCABULARY + 1) ** 1.05
ZIPF /= ZIPF.sum()


def chunks(start: int, count: int, centres: np.ndarray) -> tuple[list[dict], np.ndarray, list]:
    rng = np.random.default_rng(start)
    topics = rng.integers(0, TOPICS, count)
    vectors = centres[topics] + rng.standard_normal((count, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    payloads, lexical = [], []
    for j in range(count):
        i = start + j
        terms = np.unique(rng.choice(VOCABULARY, size=int(rng.integers(22, 38)), p=ZIPF))
        tf = rng.integers(1, 4, size=len(terms)).astype(np.float32)
        weights = tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * float(tf.sum()) / 60.0))
        order = np.argsort(TERMS[terms])
        lexical.append(SparseVector(TERMS[terms][order].tolist(), weights[order].tolist()))
        draw = rng.random()
        groups = (
            ["staff", "hr"] if draw < 0.2 else ["staff", "finance"] if draw < 0.35 else ["staff"]
        )
        text = " ".join(WORDS[k] for k in rng.integers(0, len(WORDS), 100))[:600]
        payloads.append(
            {
                "chunk_id": f"doc{i // 8}#{i % 8}",
                "document_id": f"doc{i // 8}",
                "title": f"Document {i // 8}",
                "source": f"docs/{i // 8}.md",
                "text": text,
                "allowed_groups": groups,
            }
        )
    return payloads, vectors, lexical


def build(
    store: KnowledgeStore, size: int, centres: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Seconds to build; every vector and whether its chunk holds the filtered group."""
    vectors, restricted = [], []
    started = time.perf_counter()
    store.create_collection(COLLECTION, DIM)
    for start in range(0, size, BATCH):
        payloads, batch, lexical = chunks(start, min(BATCH, size - start), centres)
        store.upsert(COLLECTION, payloads, batch.tolist(), lexical=lexical)
        vectors.append(batch)
        restricted.extend("hr" in p["allowed_groups"] for p in payloads)
    store.seal(COLLECTION)
    seconds = time.perf_counter() - started
    return seconds, np.vstack(vectors), np.array(restricted)


def questions(vectors: np.ndarray, count: int) -> list[tuple[list[float], SparseVector]]:
    rng = np.random.default_rng(99)
    picked = vectors[rng.integers(0, len(vectors), count)]
    noisy = picked + rng.standard_normal(picked.shape).astype(np.float32) / np.sqrt(DIM)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    asked = []
    for vector in noisy:
        terms = np.unique(rng.choice(VOCABULARY, size=int(rng.integers(4, 8)), p=ZIPF))
        asked.append(
            (vector.tolist(), SparseVector(sorted(TERMS[terms].tolist()), [1.0] * len(terms)))
        )
    return asked


def timed(search: Callable[[], object], count: int) -> tuple[float, float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        search()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


def measure(
    store: KnowledgeStore, asked: list, vectors: np.ndarray, restricted: np.ndarray
) -> dict:
    row: dict[str, object] = {}
    for mode in ("dense", "sparse", "hybrid"):
        for label, groups in (("", EVERYONE), (" +filter", FILTERED)):
            queue = iter(asked * 2)

            def one(
                mode: RetrievalMode = mode, groups: list[str] = groups, queue: Any = queue
            ) -> object:
                vector, lexical = next(queue)
                return store.search_collection(COLLECTION, vector, 10, groups, lexical, mode)

            if not row:  # the first query opens the version (edge: checks it against its seal)
                started = time.perf_counter()
                one()
                row["open"] = time.perf_counter() - started
            one()
            row[f"{mode}{label}"] = timed(one, len(asked))
    for label, groups, mask in (("", EVERYONE, None), (" +filter", FILTERED, restricted)):
        hits = 0
        for vector, _ in asked:
            scores = vectors @ np.asarray(vector, dtype=np.float32)
            if mask is not None:
                scores = np.where(mask, scores, -np.inf)
            exact = {int(i) for i in np.argsort(-scores)[:10]}
            found = store.search_collection(COLLECTION, vector, 10, groups)
            hits += len(exact & {_index(p.chunk_id) for p in found})
        row[f"recall@10{label}"] = hits / (10 * len(asked))
    return row


def _index(chunk_id: str) -> int:
    document, part = chunk_id.removeprefix("doc").split("#")
    return int(document) * 8 + int(part)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--local-max", type=int, default=100_000, help="largest size for local mode"
    )
    parser.add_argument("--local-queries", type=int, default=30)
    args = parser.parse_args()
    centres = np.random.default_rng(12345).standard_normal((TOPICS, DIM)).astype(np.float32)
    columns = [f"{m}{f}" for m in ("dense", "sparse", "hybrid") for f in ("", " +filter")]
    print("p50 / p95 ms per query; build in seconds; recall@10 of dense against exact search")
    for size in (int(s) for s in args.sizes.split(",")):
        engines: list[tuple[str, Callable[[Path], KnowledgeStore], int]] = [
            ("edge", lambda root: EdgeStore.open(root, lambda alias: COLLECTION), args.queries)
        ]
        if size <= args.local_max:
            engines.append(
                ("qdrant local", lambda root: QdrantStore.open(path=root), args.local_queries)
            )
        for name, opener, count in engines:
            with tempfile.TemporaryDirectory() as folder:
                store = opener(Path(folder))
                seconds, vectors, restricted = build(store, size, centres)
                row = measure(store, questions(vectors, count), vectors, restricted)
                store.close()
            cells = "  ".join(f"{c} {row[c][0]:.1f}/{row[c][1]:.1f}" for c in columns)  # type: ignore[index]
            print(
                f"{size:>9,} {name:<12} build {seconds:7.1f}s  open {row['open']:.2f}s  {cells}  "
                f"recall {row['recall@10']:.3f} / filtered {row['recall@10 +filter']:.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
