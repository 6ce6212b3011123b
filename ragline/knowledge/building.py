"""Building an index version: read the folder, chunk and embed what changed, write a new
immutable collection, check it (not empty, no large drop in documents, the corpus's smoke
questions) and record its manifest.

A build reuses what the previous version already computed: a document whose content hash
is unchanged keeps its chunks and vectors (no chunking, no embedding), and a changed
document's chunks reuse vectors by chunk hash."""

from __future__ import annotations

import getpass
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ragline import audit
from ragline.audit import SYSTEM, Actor
from ragline.config import Knowledge
from ragline.errors import InvalidInput
from ragline.knowledge.catalog import VersionCatalog, collection_name, version_of
from ragline.knowledge.chunking import Chunk, chunk_document
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.lexical import LexicalEncoder
from ragline.knowledge.smoke import NO_SMOKE_SET, SmokeSet, smoke_set
from ragline.knowledge.sources import Document, read_folder, source_checksum
from ragline.knowledge.store import KnowledgeStore, RetrievalMode
from ragline.models import IndexVersion, utcnow

log = structlog.get_logger("ragline.index")

UPSERT_BATCH = 256

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class _Point:
    payload: dict[str, Any]
    vector: list[float] | None


@dataclass
class _Reusable:
    """What a build may take from its base version."""

    documents: dict[str, tuple[str, list[_Point]]] = field(default_factory=dict)
    vectors: dict[str, list[float]] = field(default_factory=dict)  # by chunk content hash


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


class IndexBuilder(VersionCatalog):
    def __init__(
        self,
        engine: Engine,
        store: KnowledgeStore,
        embedder: Embedder | None,
        knowledge: Knowledge,
        alias: str,
        retrieval_mode: RetrievalMode = "dense",
        load_embedder: Callable[[], Embedder] | None = None,
    ) -> None:
        """Without an embedder, load_embedder loads it the first time a build needs it
        (a command that only lists does not pay for the model). The smoke evaluation
        retrieves the way the pipeline will (retrieval_mode)."""
        super().__init__(engine, store, knowledge, alias)
        self.embedder = embedder
        self._load_embedder = load_embedder
        self.retrieval_mode = retrieval_mode
        self.lexical = LexicalEncoder()

    @property
    def _embedder(self) -> Embedder:
        if self.embedder is None and self._load_embedder is not None:
            self.embedder = self._load_embedder()
        if self.embedder is None:
            raise RuntimeError("this index was opened without an embedder")
        return self.embedder

    # -- building ------------------------------------------------------------------------------

    def build(
        self,
        folder: Path,
        progress: Progress = _no_progress,
        smoke: Path | None = None,
        actor: Actor = SYSTEM,
    ) -> IndexVersion:
        """A new version from `folder`, checked with the corpus's smoke set (`smoke`, else
        the folder's smoke.yaml, else the configured questions)."""
        started = time.perf_counter()
        documents = read_folder(folder)
        if not documents:
            raise InvalidInput(f"{folder} holds no documents ragline can read")
        questions = smoke_set(folder, smoke, self.knowledge.gate.smoke_queries)
        embedder = self._embedder
        base = self._base_version()
        manifest = self._start_manifest(folder, documents, base, actor)
        log.info(
            "index_build_started",
            version=manifest.version,
            documents=len(documents),
            base_version=base.version if base else None,
        )
        try:
            self.store.create_collection(manifest.collection, embedder.dimension)
            points = self._plan(documents, self._reusable(base), progress)
            reused = sum(1 for p in points if p.vector is not None)
            self._write(manifest.collection, points, progress)
            self.store.seal(manifest.collection)
            counts = {
                "chunk_count": len(points),
                "token_count": sum(int(p.payload.get("token_count", 0)) for p in points),
                "reused_chunks": reused,
                "embedded_chunks": len(points) - reused,
            }
            progress("checks", 0, 1)
            checks = self._check(manifest.collection, documents, len(points), questions)
            progress("checks", 1, 1)
        except BaseException as error:  # Ctrl-C included: the version is marked failed
            self._fail(manifest, error)
            raise
        return self._finish(manifest, counts, checks, started)

    def _base_version(self) -> IndexVersion | None:
        """The version to reuse from: the active one, else the newest ready one, if it was
        embedded with the same model."""
        candidates: list[IndexVersion] = []
        active = self.active_version()
        with Session(self.engine, expire_on_commit=False) as session:
            if active is not None and (row := session.get(IndexVersion, active)) is not None:
                candidates.append(row)
            candidates += session.exec(
                select(IndexVersion)
                .where(col(IndexVersion.status) == "ready")
                .order_by(col(IndexVersion.version).desc())
            )
        names = set(self.store.collection_names())
        for candidate in candidates:
            if (
                candidate.status == "ready"
                and candidate.collection in names
                and candidate.embedding_model == self.knowledge.embedding_model
                and candidate.embedding_dim == self._embedder.dimension
            ):
                return candidate
        return None

    def _reusable(self, base: IndexVersion | None) -> _Reusable:
        reusable = _Reusable()
        if base is None:
            return reusable
        same_chunker = base.chunker == self.knowledge.chunking.model_dump()
        for payload, vector in self.store.points(base.collection):
            if vector is None:
                continue
            reusable.vectors[str(payload.get("content_hash"))] = vector
            if same_chunker:
                doc_id = str(payload["document_id"])
                doc_hash = str(payload.get("document_hash", ""))
                entry = reusable.documents.setdefault(doc_id, (doc_hash, []))
                entry[1].append(_Point(payload, vector))
        return reusable

    def _plan(
        self, documents: list[Document], reusable: _Reusable, progress: Progress
    ) -> list[_Point]:
        """Every point of the new version; those without a vector still need embedding."""
        count, truncate = self._embedder.count_tokens, self._embedder.truncate
        points: list[_Point] = []
        for done, document in enumerate(documents, start=1):
            previous = reusable.documents.get(document.id)
            if previous is not None and previous[0] == document.content_hash:
                kept = sorted(previous[1], key=lambda p: int(p.payload.get("chunk_index", 0)))
                points += [_Point(dict(p.payload), p.vector) for p in kept]
            else:
                for chunk in chunk_document(document, self.knowledge.chunking, count, truncate):
                    points.append(
                        _Point(_payload(document, chunk), reusable.vectors.get(chunk.content_hash))
                    )
            progress("documents", done, len(documents))
        return points

    def _write(self, collection: str, points: list[_Point], progress: Progress) -> None:
        """Embed what has no vector yet, weigh every chunk's terms (BM25 needs this
        version's average chunk length, so lexical vectors are never reused) and upsert, in
        batches."""
        embedder = self._embedder
        terms = [len(self.lexical.terms(p.payload["text"])) for p in points]
        average_length = sum(terms) / len(terms) if terms else 1.0
        for start in range(0, len(points), UPSERT_BATCH):
            batch = points[start : start + UPSERT_BATCH]
            missing = [p for p in batch if p.vector is None]
            if missing:
                vectors = embedder.embed([p.payload["text"] for p in missing])
                for point, vector in zip(missing, vectors.tolist(), strict=True):
                    point.vector = vector
            self.store.upsert(
                collection,
                [p.payload for p in batch],
                [p.vector for p in batch if p.vector is not None],
                lexical=[self.lexical.document(p.payload["text"], average_length) for p in batch],
            )
            progress("chunks", start + len(batch), len(points))

    def _check(
        self, collection: str, documents: list[Document], chunks: int, questions: SmokeSet
    ) -> dict[str, Any]:
        failures: list[str] = []
        if chunks == 0:
            failures.append("empty: the version has no chunks")
        drop = self._document_drop(documents, failures)
        smoke = self._smoke(collection, questions, failures)
        return {
            "passed": not failures,
            "failures": failures,
            "document_drop": round(drop["drop"], 4),
            "corpus": drop["corpus"],
            "smoke": smoke,
        }

    def _document_drop(self, documents: list[Document], failures: list[str]) -> dict[str, Any]:
        """How many documents this build lost against the active version, when both are
        versions of one corpus: at least half of this build's documents are in the active
        one. A first build of another corpus is not a drop."""
        gate = self.knowledge.gate
        active = self.active_version()
        if active is None:
            return {"drop": 0.0, "corpus": "first version"}
        manifest = self.get(active)
        ids = {d.id for d in documents}
        shared = len(ids & self._documents(manifest).keys())
        if shared * 2 < len(ids):
            return {
                "drop": 0.0,
                "corpus": f"new corpus: {shared} of its {len(ids)} documents are in the "
                f"active v{active}, so the document-drop check does not apply",
            }
        before = manifest.document_count
        drop = max(0.0, (before - len(ids)) / before) if before else 0.0
        if drop > gate.max_document_drop:
            failures.append(
                f"document count dropped {drop:.0%} (from {before} to {len(ids)}); "
                f"the gate allows {gate.max_document_drop:.0%}"
            )
        return {"drop": drop, "corpus": f"same corpus as the active v{active}"}

    def _smoke(self, collection: str, questions: SmokeSet, failures: list[str]) -> dict[str, Any]:
        gate = self.knowledge.gate
        if not questions.queries:
            return {"queries": 0, "skipped": NO_SMOKE_SET}
        missed = []
        for query in questions.queries:
            vector = self._embedder.embed_one(query.question).tolist()
            found = self.store.search_collection(
                collection,
                vector,
                gate.smoke_top_k,
                query.groups,
                lexical=self.lexical.query(query.question),
                mode=self.retrieval_mode,
            )
            if not {p.document_id for p in found} & set(query.expected_documents):
                missed.append(query.question)
        hit_rate = 1 - len(missed) / len(questions.queries)
        if hit_rate < gate.smoke_min_hit_rate:
            failures.append(
                f"smoke evaluation hit rate {hit_rate:.0%} is below "
                f"{gate.smoke_min_hit_rate:.0%} (missed: {'; '.join(missed)})"
            )
        return {
            "queries": len(questions.queries),
            "source": questions.source,
            "hit_rate": round(hit_rate, 4),
            "missed": missed,
        }

    def _start_manifest(
        self, folder: Path, documents: list[Document], base: IndexVersion | None, actor: Actor
    ) -> IndexVersion:
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
                embedding_model=self.knowledge.embedding_model,
                embedding_dim=self._embedder.dimension,
                chunker=self.knowledge.chunking.model_dump(),
                base_version=base.version if base else None,
                # Who asked: the key over the API, the OS user at the command line.
                built_by=actor.label[:255]
                if actor != SYSTEM
                else f"{getpass.getuser()}@{socket.gethostname()}",
            )
            session.add(manifest)
            audit.append(
                session,
                actor,
                "index.build",
                f"index:{version}",
                after={
                    "documents": len(documents),
                    "source_checksum": manifest.source_checksum,
                    "base_version": manifest.base_version,
                },
            )
            session.commit()
        return manifest

    def _finish(
        self,
        manifest: IndexVersion,
        counts: dict[str, int],
        checks: dict[str, Any],
        started: float,
    ) -> IndexVersion:
        with Session(self.engine, expire_on_commit=False) as session:
            row = session.get(IndexVersion, manifest.version)
            assert row is not None
            for name, value in counts.items():
                setattr(row, name, value)
            row.checks = checks
            row.status = "ready"
            row.finished_at = utcnow()
            row.duration_ms = round((time.perf_counter() - started) * 1000, 1)
            session.add(row)
            session.commit()
            session.refresh(row)
        log.info(
            "index_build_finished",
            version=row.version,
            chunks=row.chunk_count,
            reused_chunks=row.reused_chunks,
            checks_passed=checks["passed"],
            latency_ms=row.duration_ms,
        )
        return row

    def _fail(self, manifest: IndexVersion, error: BaseException) -> None:
        reason = "interrupted" if isinstance(error, KeyboardInterrupt) else type(error).__name__
        with Session(self.engine) as session:
            row = session.get(IndexVersion, manifest.version)
            if row is not None:
                row.status = "failed"
                row.error = f"{reason}: {error}"[:2000]
                row.finished_at = utcnow()
                session.add(row)
                session.commit()
        log.error("index_build_failed", version=manifest.version, error=reason)


def _payload(document: Document, chunk: Chunk) -> dict[str, Any]:
    return {
        "chunk_id": chunk.chunk_id,
        "document_id": document.id,
        "document_hash": document.content_hash,
        "chunk_index": chunk.index,
        "title": document.title,
        "source": document.source,
        "text": chunk.text,
        "content_hash": chunk.content_hash,
        "token_count": chunk.token_count,
        "allowed_groups": list(document.allowed_groups),
        "tags": list(document.tags),
    }
