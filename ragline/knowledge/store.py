"""The knowledge store's interface: passages, index versions as collections behind an
alias, and what every engine shares (point ids, tie-breaking of fused results). The engines:
EdgeStore (knowledge.edge_store, embedded) and QdrantStore (knowledge.qdrant_store, a Qdrant
server or Qdrant local mode)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from ragline.errors import IndexNotReady
from ragline.knowledge.lexical import SparseVector

POINT_NAMESPACE = uuid.UUID("6f1c9a52-4b7e-4f0e-9a53-2d4f7a0c9e11")
FUSED_EXTRA = 10  # hybrid hits fetched past the limit, so ties at the cut are ours to break
DENSE = "dense"
LEXICAL = "lexical"
RetrievalMode = Literal["dense", "sparse", "hybrid"]


def point_id(chunk_id: str) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, chunk_id))


@dataclass(frozen=True)
class Passage:
    chunk_id: str
    document_id: str
    title: str
    source: str
    text: str
    score: float
    groups: tuple[str, ...] = ()  # its document's allowed_groups

    @classmethod
    def of(cls, payload: dict[str, Any], score: float) -> Passage:
        """A stored chunk's payload as a passage."""
        return cls(
            chunk_id=str(payload["chunk_id"]),
            document_id=str(payload["document_id"]),
            title=str(payload.get("title", "")),
            source=str(payload.get("source", "")),
            text=str(payload["text"]),
            score=score,
            groups=tuple(str(g) for g in payload.get("allowed_groups", ())),
        )


class KnowledgeStore(Protocol):
    """What the indexer, the retriever and the evaluations need of a vector store: index
    versions as collections behind an alias. EdgeStore (ragline/knowledge/edge_store.py, the
    embedded default) and QdrantStore (a Qdrant server, or local mode with
    RAGLINE_INDEX_ENGINE=qdrant-local) provide it."""

    remote: bool

    def close(self) -> None: ...
    def ping(self) -> None: ...
    def collection_names(self) -> list[str]: ...
    def has_lexical(self, collection: str) -> bool: ...
    def create_collection(self, name: str, dimension: int) -> None: ...
    def upsert(
        self,
        collection: str,
        payloads: Sequence[dict[str, Any]],
        vectors: Sequence[Sequence[float]],
        lexical: Sequence[SparseVector] | None = None,
    ) -> None: ...
    def seal(self, collection: str) -> None: ...
    def delete_collection(self, name: str) -> None: ...
    def count(self, collection: str) -> int: ...
    def points(
        self, collection: str, with_vectors: bool = True, batch: int = 1000
    ) -> Iterator[tuple[dict[str, Any], list[float] | None]]: ...
    def resolve_alias(self, alias: str) -> str | None: ...
    def point_alias(self, alias: str, collection: str) -> None: ...
    def alias_moved(self, alias: str) -> None: ...
    def search(
        self,
        alias: str,
        vector: Sequence[float],
        limit: int,
        groups: Sequence[str],
        lexical: SparseVector | None = None,
        mode: RetrievalMode = "dense",
    ) -> tuple[str, list[Passage]]: ...
    def search_collection(
        self,
        collection: str,
        vector: Sequence[float],
        limit: int,
        groups: Sequence[str],
        lexical: SparseVector | None = None,
        mode: RetrievalMode = "dense",
    ) -> list[Passage]: ...


class AliasedSearch:
    """`search` for a store that can resolve an alias and search a collection."""

    def resolve_alias(self, alias: str) -> str | None:
        raise NotImplementedError

    def search_collection(
        self,
        collection: str,
        vector: Sequence[float],
        limit: int,
        groups: Sequence[str],
        lexical: SparseVector | None = None,
        mode: RetrievalMode = "dense",
    ) -> list[Passage]:
        raise NotImplementedError

    def search(
        self,
        alias: str,
        vector: Sequence[float],
        limit: int,
        groups: Sequence[str],
        lexical: SparseVector | None = None,
        mode: RetrievalMode = "dense",
    ) -> tuple[str, list[Passage]]:
        """Query the collection behind the alias; return (collection, passages best first).

        Only chunks whose allowed_groups meet the caller's groups can match: the filter is
        part of the query (and of each prefetch), so a restricted passage never comes back
        to be filtered later. The alias is resolved first and the collection queried by
        name, so the version recorded on the job is the one that answered even if a
        promotion happens meanwhile.
        """
        collection = self.resolve_alias(alias)
        if collection is None:
            raise IndexNotReady(f"no index version is promoted behind '{alias}'")
        return collection, self.search_collection(
            collection, vector, limit, groups, lexical=lexical, mode=mode
        )


def fused_order(hits: list[tuple[float, Passage]], limit: int) -> list[Passage]:
    """The best `limit` of (fused score, passage) pairs. Reciprocal-rank fusion ties often
    (ranks 1 and 3 score as 3 and 1): a tie goes to the passage closer to the question (its
    cosine), then to the lower chunk id, so that every engine ranks alike and the order
    never depends on how an engine happened to break it. Callers fetch more than `limit`
    (FUSED_EXTRA) so a tie at the cut is decided the same way."""
    hits.sort(key=lambda hit: (-hit[0], -hit[1].score, hit[1].chunk_id))
    return [passage for _, passage in hits[:limit]]


def cosine(vector: Any, query: list[float]) -> float:
    if isinstance(vector, dict):
        vector = vector.get(DENSE)
    if not isinstance(vector, list) or not vector:
        return 0.0
    a, b = np.asarray(vector, dtype=np.float32), np.asarray(query, dtype=np.float32)
    return float(a @ b / ((np.linalg.norm(a) * np.linalg.norm(b)) or 1.0))
