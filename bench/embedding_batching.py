"""Micro-batching of question embeddings: concurrent embed_one calls, batched or one by one.

    .venv/bin/python bench/embedding_batching.py [--threads 4] [--questions 150] [--rounds 3]

A worker process runs several jobs at once (dramatiq threads) and each embeds its question.
The model encodes one call at a time; with batching on, the caller that gets the model next
encodes every question queued meanwhile in one forward pass. T threads each embed their
share of SciFact's queries, alternately with batching off and on, in one process; prints
questions/s for both and the ratio. bench/queue_throughput.py measures the whole pipeline
both ways.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from scifact_data import scifact_queries  # bench/ is the script's path

from ragline.knowledge.embedder import Embedder


def rate(embedder: Embedder, questions: list[str], threads: int) -> float:
    """Questions per second with `threads` callers embedding one question at a time."""
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(embedder.embed_one, questions))
    return len(questions) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--questions", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    queries = scifact_queries()
    embedder = Embedder("sentence-transformers/all-MiniLM-L6-v2")
    embedder.embed(queries[:16])  # warm-up
    results: dict[bool, list[float]] = {False: [], True: []}
    for round_ in range(args.rounds):
        # Fresh questions each time (nothing cached), the order of the two settings swapped.
        start = round_ * 2 * args.questions
        for offset, batching in enumerate((round_ % 2 == 1, round_ % 2 == 0)):
            batch = queries[start + offset * args.questions :][: args.questions]
            embedder.batching = batching
            results[batching].append(rate(embedder, batch, args.threads))
    off, on = statistics.median(results[False]), statistics.median(results[True])
    print(f"{args.threads} threads, {args.questions} questions x {args.rounds} rounds")
    print(f"one by one:    {off:7.1f} questions/s")
    print(f"micro-batched: {on:7.1f} questions/s")
    print(f"batched / one by one: {on / off:.2f}")


if __name__ == "__main__":
    main()
