"""Retrieval: embed the question, query the collection behind the approved alias."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ragline.knowledge.embedder import Embedder, Vectors
from ragline.knowledge.lexical import LexicalEncoder
from ragline.knowledge.store import KnowledgeStore, Passage, RetrievalMode


@dataclass(frozen=True)
class Retrieval:
    index_version: str
    passages: list[Passage]
    question_vector: Vectors


class Retriever:
    def __init__(
        self, embedder: Embedder, store: KnowledgeStore, mode: RetrievalMode = "dense"
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.mode = mode
        self.lexical = LexicalEncoder()

    def retrieve(
        self,
        question: str,
        alias: str,
        top_k: int,
        groups: Sequence[str] = ("everyone",),
        vector: Vectors | None = None,
        collection: str | None = None,
    ) -> Retrieval:
        """Passages the caller's document groups may see, best first (by self.mode).
        vector: the question's embedding when the caller has it already; collection: a
        given index version instead of the alias's (replays and evaluations)."""
        if vector is None:
            vector = self.embedder.embed_one(question)
        lexical = self.lexical.query(question) if self.mode != "dense" else None
        if collection is not None:
            passages = self.store.search_collection(
                collection, vector.tolist(), top_k, groups, lexical=lexical, mode=self.mode
            )
        else:
            collection, passages = self.store.search(
                alias, vector.tolist(), top_k, groups, lexical=lexical, mode=self.mode
            )
        return Retrieval(index_version=collection, passages=passages, question_vector=vector)
