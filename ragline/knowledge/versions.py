"""Index versions: build a new collection kb_v{N} with a manifest row, promote it behind the
alias. A build that fails never touches the alias."""

from __future__ import annotations

import getpass
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import structlog
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ragline.config import Knowledge
from ragline.errors import InvalidInput, NotFound
from ragline.knowledge.chunking import Chunk, chunk_document
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.sources import Document, read_folder, source_checksum
from ragline.knowledge.store import KnowledgeStore
from ragline.models import IndexVersion, utcnow

log = structlog.get_logger("ragline.index")

UPSERT_BATCH = 256


def collection_name(version: int) -> str:
    return f"kb_v{version}"


def version_of(collection: str) -> int | None:
    prefix = "kb_v"
    if collection.startswith(prefix) and collection[len(prefix) :].isdigit():
        return int(collection[len(prefix) :])
    return None


@dataclass(frozen=True)
class VersionListing:
    manifest: IndexVersion
    active: bool


class IndexManager:
    def __init__(
        self,
        engine: Engine,
        store: KnowledgeStore,
        embedder: Embedder | None,
        knowledge: Knowledge,
        alias: str,
    ) -> None:
        """Listing and promoting need no embedder; building does (load it only then)."""
        self.engine = engine
        self.store = store
        self.embedder = embedder
        self.knowledge = knowledge
        self.alias = alias

    @property
    def _embedder(self) -> Embedder:
        if self.embedder is None:
            raise RuntimeError("this IndexManager was built without an embedder")
        return self.embedder

    def active_version(self) -> int | None:
        collection = self.store.resolve_alias(self.alias)
        return version_of(collection) if collection else None

    def get(self, version: int) -> IndexVersion:
        with Session(self.engine, expire_on_commit=False) as session:
            manifest = session.get(IndexVersion, version)
        if manifest is None:
            raise NotFound(f"index version {version} does not exist")
        return manifest

    def list_versions(self) -> list[VersionListing]:
        active = self.active_version()
        with Session(self.engine, expire_on_commit=False) as session:
            rows = session.exec(select(IndexVersion).order_by(col(IndexVersion.version)))
            return [VersionListing(m, m.version == active) for m in rows]

    def unchanged_since_active(self, folder: Path) -> IndexVersion | None:
        """The active version if it was built from exactly these files with these settings."""
        active = self.active_version()
        if active is None:
            return None
        try:
            manifest = self.get(active)
        except NotFound:
            return None
        documents = read_folder(folder)
        same = (
            manifest.status == "ready"
            and manifest.source_checksum == source_checksum(documents)
            and manifest.embedding_model == self.knowledge.embedding_model
            and manifest.chunker == self.knowledge.chunking.model_dump()
        )
        return manifest if same else None

    def build(self, folder: Path) -> IndexVersion:
        started = time.perf_counter()
        documents = read_folder(folder)
        if not documents:
            raise InvalidInput(f"{folder} holds no .md or .txt documents")
        manifest = self._start_manifest(folder, documents)
        collection = manifest.collection
        log.info("index_build_started", version=manifest.version, documents=len(documents))
        embedder = self._embedder
        try:
            self.store.create_collection(collection, embedder.dimension)
            chunks = [
                (doc, chunk)
                for doc in documents
                for chunk in chunk_document(doc, self.knowledge.chunking, embedder.count_tokens)
            ]
            for start in range(0, len(chunks), UPSERT_BATCH):
                batch = chunks[start : start + UPSERT_BATCH]
                vectors = embedder.embed([chunk.text for _, chunk in batch])
                self.store.upsert(
                    collection, [_payload(doc, chunk) for doc, chunk in batch], vectors.tolist()
                )
        except BaseException as error:
            self._fail(manifest, error)
            raise
        return self._finish(manifest, chunks, started)

    def _start_manifest(self, folder: Path, documents: list[Document]) -> IndexVersion:
        existing = {v for c in self.store.collection_names() if (v := version_of(c)) is not None}
        with Session(self.engine, expire_on_commit=False) as session:
            last = session.exec(select(func.max(IndexVersion.version))).one()
            version = max([last or 0, *existing]) + 1
            manifest = IndexVersion(
                version=version,
                collection=collection_name(version),
                status="building",
                source=str(folder.resolve()),
                source_checksum=source_checksum(documents),
                document_count=len(documents),
                embedding_model=self._embedder.name,
                embedding_dim=self._embedder.dimension,
                chunker=self.knowledge.chunking.model_dump(),
                built_by=f"{getpass.getuser()}@{socket.gethostname()}",
            )
            session.add(manifest)
            session.commit()
        return manifest

    def _finish(
        self, manifest: IndexVersion, chunks: list[tuple[Document, Chunk]], started: float
    ) -> IndexVersion:
        with Session(self.engine, expire_on_commit=False) as session:
            row = session.get(IndexVersion, manifest.version)
            assert row is not None
            row.status = "ready"
            row.chunk_count = len(chunks)
            row.token_count = sum(chunk.token_count for _, chunk in chunks)
            row.finished_at = utcnow()
            row.duration_ms = round((time.perf_counter() - started) * 1000, 1)
            session.add(row)
            session.commit()
            session.refresh(row)
        log.info(
            "index_build_finished",
            version=row.version,
            chunks=row.chunk_count,
            latency_ms=row.duration_ms,
        )
        return row

    def _fail(self, manifest: IndexVersion, error: BaseException) -> None:
        with Session(self.engine) as session:
            row = session.get(IndexVersion, manifest.version)
            if row is not None:
                row.status = "failed"
                row.error = f"{type(error).__name__}: {error}"[:2000]
                row.finished_at = utcnow()
                session.add(row)
                session.commit()
        log.error("index_build_failed", version=manifest.version, error=type(error).__name__)

    def promote(self, version: int) -> IndexVersion:
        manifest = self.get(version)
        if manifest.status != "ready":
            raise InvalidInput(f"index version {version} is {manifest.status}, not ready")
        if manifest.collection not in self.store.collection_names():
            raise InvalidInput(f"collection {manifest.collection} is missing from the store")
        self.store.point_alias(self.alias, manifest.collection)
        with Session(self.engine, expire_on_commit=False) as session:
            row = session.get(IndexVersion, version)
            assert row is not None
            row.promoted_at = utcnow()
            session.add(row)
            session.commit()
            session.refresh(row)
        log.info("index_promoted", version=version, alias=self.alias)
        return row


def _payload(document: Document, chunk: Chunk) -> dict[str, object]:
    return {
        "chunk_id": chunk.chunk_id,
        "document_id": document.id,
        "chunk_index": chunk.index,
        "title": document.title,
        "source": document.source,
        "text": chunk.text,
        "content_hash": chunk.content_hash,
        "allowed_groups": list(document.allowed_groups),
        "tags": list(document.tags),
    }
