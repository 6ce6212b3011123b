"""Qdrant as the knowledge store: a Qdrant server (RAGLINE_QDRANT_URL), or Qdrant local mode
in a folder (RAGLINE_INDEX_ENGINE=qdrant-local); index versions as collections behind an alias.

Qdrant local mode allows one client per path and is not thread-safe, so one QdrantStore
owns the client and serialises every call. A module of its own: importing qdrant-client
costs a process about 90 MB, which processes on the embedded engine need not pay.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient, models

from ragline.errors import IndexNotReady, StoreBusy
from ragline.knowledge.lexical import SparseVector
from ragline.knowledge.store import (
    DENSE,
    FUSED_EXTRA,
    LEXICAL,
    AliasedSearch,
    Passage,
    RetrievalMode,
    cosine,
    fused_order,
    point_id,
)


class QdrantStore(AliasedSearch):
    """A Qdrant server (RAGLINE_QDRANT_URL), or Qdrant local mode in a folder."""

    def __init__(self, client: QdrantClient, remote: bool = False) -> None:
        self._client = client
        self.remote = remote
        self._lock = threading.Lock()
        self._layouts: dict[str, bool] = {}

    def has_lexical(self, collection: str) -> bool:
        return self._named(collection)

    def _named(self, collection: str) -> bool:
        """Whether the collection has named vectors (dense + lexical); collections built
        before hybrid retrieval have one unnamed dense vector. Collections never change."""
        if collection not in self._layouts:
            with self._lock:
                info = self._client.get_collection(collection)
            self._layouts[collection] = isinstance(info.config.params.vectors, dict)
        return self._layouts[collection]

    @classmethod
    def open(
        cls, *, url: str | None = None, path: Path | None = None, api_key: str | None = None
    ) -> QdrantStore:
        if url:
            return cls(QdrantClient(url=url, api_key=api_key, timeout=10), remote=True)
        if path is None:
            raise ValueError("either a Qdrant URL or a local path is required")
        path.mkdir(parents=True, exist_ok=True)
        try:
            return cls(QdrantClient(path=str(path)))
        except RuntimeError as error:
            if "already accessed" in str(error):
                raise StoreBusy(
                    f"the local knowledge store at {path} is open in another process "
                    "(Qdrant local mode allows one); stop the server first or use a Qdrant server"
                ) from None
            raise

    def close(self) -> None:
        with self._lock:
            self._client.close()

    def ping(self) -> None:
        with self._lock:
            self._client.get_collections()

    def collection_names(self) -> list[str]:
        with self._lock:
            return [c.name for c in self._client.get_collections().collections]

    def create_collection(self, name: str, dimension: int) -> None:
        with self._lock:
            self._client.create_collection(
                name,
                vectors_config={
                    DENSE: models.VectorParams(size=dimension, distance=models.Distance.COSINE)
                },
                sparse_vectors_config={
                    LEXICAL: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
            )
            if self.remote:  # local mode has no payload indexes (and warns about them)
                self._client.create_payload_index(
                    name, "allowed_groups", field_schema=models.PayloadSchemaType.KEYWORD
                )

    def points(
        self, collection: str, with_vectors: bool = True, batch: int = 1000
    ) -> Iterator[tuple[dict[str, Any], list[float] | None]]:
        """Every point of a collection as (payload, dense vector), in pages."""
        offset: Any = None
        vectors: Any = [DENSE] if with_vectors and self._named(collection) else with_vectors
        while True:
            with self._lock:
                records, offset = self._client.scroll(
                    collection, limit=batch, offset=offset, with_payload=True, with_vectors=vectors
                )
            for record in records:
                vector: Any = record.vector
                if isinstance(vector, dict):  # named vectors: the dense one
                    vector = vector.get(DENSE)
                yield dict(record.payload or {}), vector if isinstance(vector, list) else None
            if offset is None:
                return

    def delete_collection(self, name: str) -> None:
        with self._lock:
            if self._client.collection_exists(name):
                self._client.delete_collection(name)

    def upsert(
        self,
        collection: str,
        payloads: Sequence[dict[str, Any]],
        vectors: Sequence[Sequence[float]],
        lexical: Sequence[SparseVector] | None = None,
    ) -> None:
        points = []
        for i, (payload, vector) in enumerate(zip(payloads, vectors, strict=True)):
            named: dict[str, Any] = {DENSE: list(vector)}
            if lexical is not None:
                named[LEXICAL] = models.SparseVector(
                    indices=lexical[i].indices, values=lexical[i].values
                )
            points.append(
                models.PointStruct(id=point_id(payload["chunk_id"]), vector=named, payload=payload)
            )
        with self._lock:
            self._client.upsert(collection, points=points, wait=True)

    def seal(self, collection: str) -> None:
        """A built collection is complete (Qdrant indexes as it goes: nothing to do)."""

    def alias_moved(self, alias: str) -> None:
        """The database recorded a promotion (Qdrant's alias moved in point_alias)."""

    def count(self, collection: str) -> int:
        with self._lock:
            return int(self._client.count(collection, exact=True).count)

    def resolve_alias(self, alias: str) -> str | None:
        with self._lock:
            for item in self._client.get_aliases().aliases:
                if item.alias_name == alias:
                    return str(item.collection_name)
        return None

    def point_alias(self, alias: str, collection: str) -> None:
        """Move the alias in one call, so readers see the old or the new version, never none."""
        operations: list[Any] = []
        if self.resolve_alias(alias) is not None:
            operations.append(
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
            )
        operations.append(
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=collection, alias_name=alias)
            )
        )
        with self._lock:
            self._client.update_collection_aliases(change_aliases_operations=operations)

    def search_collection(
        self,
        collection: str,
        vector: Sequence[float],
        limit: int,
        groups: Sequence[str],
        lexical: SparseVector | None = None,
        mode: RetrievalMode = "dense",
    ) -> list[Passage]:
        """Passages ranked by the mode; each passage's score is its cosine similarity to
        the question whatever the mode, so confidence means the same in every mode."""
        if not groups:
            return []
        allowed = models.Filter(
            must=[
                models.FieldCondition(key="allowed_groups", match=models.MatchAny(any=list(groups)))
            ]
        )
        named = self._named(collection)  # before taking the lock below: it takes it too
        if mode != "dense" and not named:
            raise IndexNotReady(
                f"{collection} has no lexical vectors (built by an older ragline): rebuild it"
            )
        if mode != "dense" and lexical is None:
            raise ValueError(f"mode {mode} needs the question's lexical vector")
        dense_query = list(vector)
        sparse_query = (
            models.SparseVector(indices=lexical.indices, values=lexical.values)
            if lexical is not None
            else None
        )
        query: dict[str, Any]
        if mode == "dense":
            query = {"query": dense_query, "using": DENSE if named else None}
        elif mode == "sparse":
            query = {"query": sparse_query, "using": LEXICAL, "with_vectors": [DENSE]}
        else:
            candidates = max(limit * 4, 20)
            query = {
                "prefetch": [
                    models.Prefetch(
                        query=dense_query, using=DENSE, filter=allowed, limit=candidates
                    ),
                    models.Prefetch(
                        query=sparse_query, using=LEXICAL, filter=allowed, limit=candidates
                    ),
                ],
                "query": models.FusionQuery(fusion=models.Fusion.RRF),
                "with_vectors": [DENSE],
            }
        fetched = limit + FUSED_EXTRA if mode == "hybrid" else limit
        with self._lock:
            result = self._client.query_points(
                collection, query_filter=allowed, limit=fetched, with_payload=True, **query
            )
        hits = [
            (
                float(p.score),
                Passage.of(
                    p.payload,
                    float(p.score) if mode == "dense" else cosine(p.vector, dense_query),
                ),
            )
            for p in result.points
            if p.payload is not None
        ]
        if mode == "hybrid":
            return fused_order(hits, limit)
        return [passage for _, passage in hits]
