"""Concurrent question embeddings are micro-batched: each caller still gets its own text's
vector, the batches really form under concurrency, and a text the model cannot encode fails
only its own caller."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import pytest

from ragline.knowledge.embedder import Embedder

QUESTIONS = [f"How many days of leave does employee number {n} get?" for n in range(48)]


@contextmanager
def batch_sizes(embedder: Embedder) -> Iterator[list[int]]:
    """The size of every forward pass the embedder makes meanwhile (the real encode runs)."""
    sizes: list[int] = []
    encode = embedder._encode

    def recording(texts: list[str], batch_size: int) -> np.ndarray:
        sizes.append(len(texts))
        return encode(texts, batch_size)

    embedder._encode = recording  # type: ignore[method-assign]
    try:
        yield sizes
    finally:
        del embedder._encode


def test_each_concurrent_caller_gets_its_own_vector(embedder: Embedder) -> None:
    alone = {q: embedder.embed([q])[0] for q in QUESTIONS}
    with batch_sizes(embedder) as sizes, ThreadPoolExecutor(8) as pool:
        got = list(pool.map(embedder.embed_one, QUESTIONS))
    for question, vector in zip(QUESTIONS, got, strict=True):
        np.testing.assert_allclose(vector, alone[question], atol=1e-5)
    assert sum(sizes) == len(QUESTIONS)  # every question encoded exactly once
    assert max(sizes) > 1, sizes  # eight callers at once: some shared a forward pass


def test_a_text_the_model_cannot_encode_fails_only_its_own_caller(embedder: Embedder) -> None:
    started = threading.Barrier(4)
    texts: list[object] = [*QUESTIONS[:3], None]  # None: the tokenizer raises

    def call(text: object) -> str:
        started.wait()
        try:
            embedder.embed_one(text)  # type: ignore[arg-type]
        except Exception as error:
            return type(error).__name__
        return "ok"

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(call, texts))
    assert outcomes[:3] == ["ok"] * 3 and outcomes[3] != "ok", outcomes
    assert embedder._pending == []  # nothing left behind for the next caller


def test_without_batching_one_by_one_is_the_same(embedder: Embedder) -> None:
    embedder.batching = False
    try:
        vector = embedder.embed_one(QUESTIONS[0])
    finally:
        embedder.batching = True
    np.testing.assert_allclose(vector, embedder.embed_one(QUESTIONS[0]), atol=1e-5)


@pytest.mark.parametrize("threads", [1, 3])
def test_a_caller_alone_is_not_delayed_into_a_batch(embedder: Embedder, threads: int) -> None:
    with batch_sizes(embedder) as sizes:
        for question in QUESTIONS[:threads]:
            embedder.embed_one(question)  # one after another: never a queue
    assert sizes == [1] * threads
